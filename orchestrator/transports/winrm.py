"""WinRM over pywinrm: one cmd shell per host, scripts through temporary .cmd files, our deadlines.

Each step's batch script goes through a temporary ``.cmd`` file, written, run and deleted (and
swept when that failed) by ``windows_scripts``, which the SSH transport shares for Windows'
OpenSSH. A command runs as ``cmd.exe /d /q /c LINE`` in the host's shell. ``become`` means
nothing here: the login user must be an administrator.

Here: the connection and the shell's part of the scripts. The settings and authentication are
``winrm_settings``; the shell and its bounded WS-Man requests ``winrm_shell``, with failures
typed in ``winrm_errors``; beneath pywinrm, ``winrm_guard`` bounds what a host can do to kremove
(the watchdog's sockets, capped answers never inflated, DTDs refused).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from orchestrator.errors import TransportError
from orchestrator.inventory.model import Host
from orchestrator.secrets import SecretStore
from orchestrator.transports.base import CommandResult, Deadline, Transport
from orchestrator.transports.connector import PoolSetup
from orchestrator.transports.windows_scripts import Scripts, batch_bytes
from orchestrator.transports.winrm_settings import describe, insecure, make_protocol, settings
from orchestrator.transports.winrm_shell import WinrmShell

__all__ = ["WinrmPool", "WinrmTransport", "describe", "insecure", "open_pool", "settings"]

# pywinrm and requests_ntlm warn through logging/warnings only; kremove reports errors itself.
logging.getLogger("winrm").addHandler(logging.NullHandler())


class WinrmPool:
    """What the WinRM connections of one run share: the secret store."""

    def __init__(self, *, secrets: SecretStore) -> None:
        self.secrets = secrets

    def check(self, host: Host) -> None:
        """Raise InputError for settings that must not or cannot be used, before any connection."""
        settings(host)

    def ready(self, hosts: Iterable[Host]) -> None:
        pass

    def transport(self, host: Host) -> WinrmTransport:
        return WinrmTransport(host, self)

    def close(self) -> None:
        pass


def open_pool(setup: PoolSetup) -> WinrmPool:
    return WinrmPool(secrets=setup.secrets)


class WinrmTransport(Transport):
    name = "winrm"

    def __init__(self, host: Host, run: WinrmPool) -> None:
        super().__init__(host)
        self._run = run
        self._settings = settings(host)
        self._shell = WinrmShell(host, self._settings)
        self._lock = threading.Lock()
        self._scripts = Scripts(host.name)

    @property
    def insecure(self) -> bool:
        return insecure(self.host)

    def describe(self) -> str:
        return describe(self.host)

    def connect(self, deadline: Deadline) -> None:
        password = None
        if self.host.password is not None:
            what = f"host {self.host.name!r} password"
            password = self._run.secrets.get(self.host.password, what).reveal()
        protocol = make_protocol(self._settings, self.host, password)
        self._shell.connect(protocol, deadline)
        self._scripts.new_shell()

    def close(self) -> None:
        if not self._shell.connected:
            return
        self._scripts.close(self)  # e.g. the last step timed out: no next script will sweep
        self._shell.close()

    def run(
        self, command: str, deadline: Deadline, stdin: bytes | None = None, *, become: bool = False
    ) -> CommandResult:
        """Run ``command`` as a cmd.exe batch script; ``stdin`` is not supported (nor needed)."""
        if stdin:
            raise TransportError(
                f"host {self.host.name!r}: the WinRM transport does not feed stdin to scripts"
            )
        script = batch_bytes(command, self.host.name)
        if deadline.expired:  # nothing is started that could not be waited for
            return CommandResult(None, "", "", 0.0, timed_out=True)
        with self._lock:
            return self._scripts.run(self, script, deadline)

    # -- cmd.exe in the shell (windows_scripts.CmdHost) -------------------------------------------

    @property
    def cmd_open(self) -> bool:
        return self._shell.is_open

    def cmd_ready(self, deadline: Deadline) -> None:
        if self._shell.ensure(deadline):  # a new shell: sweep what the last one may have left
            self._scripts.new_shell()

    def cmd_line(self, line: str, deadline: Deadline, stdin: bytes | None = None) -> CommandResult:
        return self._shell.execute(["/d", "/q", "/c", line], deadline, stdin=stdin)

    def cmd_script(self, path: str, deadline: Deadline) -> CommandResult:
        return self.cmd_line(f'""{path}""', deadline)
