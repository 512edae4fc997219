"""Transports: how kremove reaches a host; a ``Connector`` makes the one a host entry names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.errors import InputError
from orchestrator.inventory.model import Host
from orchestrator.transports.base import CommandResult, Deadline, Transport
from orchestrator.transports.local import LocalTransport

if TYPE_CHECKING:  # paramiko and pywinrm cost ~0.3 s to import: only runs that need them pay it
    from orchestrator.transports.ssh import SshPool
    from orchestrator.transports.winrm import WinrmPool

__all__ = ["CommandResult", "Connector", "Deadline", "Transport"]

_SUPPORTED = ("local", "ssh", "winrm")


class Connector:
    """Makes each host's transport for one run and owns what their connections share."""

    def __init__(self, ssh: SshPool | None = None, winrm: WinrmPool | None = None) -> None:
        self.ssh = ssh
        self.winrm = winrm

    def check(self, host: Host) -> None:
        """Raise InputError now for a host this run could not reach with any transport."""
        if host.transport not in _SUPPORTED:
            raise InputError(
                f"host {host.name!r} ({host.source}): transport {host.transport!r} is not supported"
                f" by this kremove yet (supported: {', '.join(_SUPPORTED)}); --limit it out for now"
            )
        if host.transport == "ssh" and self.ssh is None:
            raise InputError(f"host {host.name!r}: SSH is not set up for this run")
        if host.transport == "winrm":
            if self.winrm is None:
                raise InputError(f"host {host.name!r}: WinRM is not set up for this run")
            self.winrm.check(host)

    def for_host(self, host: Host) -> Transport:
        self.check(host)
        if host.transport == "ssh":
            from orchestrator.transports.ssh import SshTransport

            assert self.ssh is not None
            return SshTransport(host, self.ssh)
        if host.transport == "winrm":
            from orchestrator.transports.winrm import WinrmTransport

            assert self.winrm is not None
            return WinrmTransport(host, self.winrm)
        return LocalTransport(host)

    def close(self) -> None:
        if self.ssh is not None:
            self.ssh.close()
        if self.winrm is not None:
            self.winrm.close()
