"""One run's connections: a pool per transport kind in use, and the transport of each host.

A pool is what one kind's connections of a run share (SSH: host keys, keys, jump connections;
WinRM: the secret store). ``Connector.open`` makes the pools the selected hosts need, through
the table in kinds.py, and checks every host before anything connects; a pool's module is
imported only when a host uses it (paramiko and pywinrm take ~0.3 s to import).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from orchestrator.errors import InputError
from orchestrator.inventory.model import Host
from orchestrator.secrets import SecretStore
from orchestrator.transports import kinds
from orchestrator.transports.base import Transport

__all__ = ["Connector", "Note", "Notes", "Pool", "PoolSetup"]


@dataclass(frozen=True)
class Note:
    """Something a transport learned that the run's record keeps (e.g. a host key pinned)."""

    host: str
    name: str
    detail: Mapping[str, Any]


class Notes:
    """Where transports send their notes; the run listens once its record is open."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Note], None]] = []

    def listen(self, listener: Callable[[Note], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def __call__(self, note: Note) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(note)


@dataclass(frozen=True)
class PoolSetup:
    """What every pool may use: secrets, the whole inventory (jump hosts), where state lives."""

    secrets: SecretStore
    inventory: Mapping[str, Host] = field(default_factory=dict)
    state_dir: Path | None = None  # kremove's own known_hosts lives here
    accept_new_hostkeys: bool = False
    notes: Notes = field(default_factory=Notes)


class Pool(Protocol):
    def check(self, host: Host) -> None:
        """Raise InputError for settings that must not or cannot be used; no secret is read."""

    def ready(self, hosts: Sequence[Host]) -> None:
        """After the secrets are fetched: load keys, resolve routes, fail bad input up front."""

    def transport(self, host: Host) -> Transport: ...

    def close(self) -> None: ...


class Connector:
    """Makes each host's transport for one run and owns the pools they share."""

    def __init__(self, pools: Mapping[str, Pool] | None = None, notes: Notes | None = None):
        self.pools = dict(pools or {})
        self.notes = notes or Notes()

    @classmethod
    def open(cls, setup: PoolSetup, hosts: Sequence[Host]) -> Connector:
        """Every pool the hosts need, every host checked, every secret fetched, before a run
        is recorded: bad input costs nothing on any host."""
        used = [name for name in kinds.KINDS if any(h.transport == name for h in hosts)]
        pools = {name: _open_pool(name, setup) for name in used}
        connector = cls(pools, setup.notes)
        for host in hosts:
            connector.check(host)
        setup.secrets.preload(hosts)
        for pool in pools.values():
            pool.ready(hosts)
        return connector

    def check(self, host: Host) -> None:
        """Raise InputError now for a host this run could not reach."""
        if host.transport not in kinds.KINDS:
            raise InputError(
                f"host {host.name!r} ({host.source}): transport {host.transport!r} is not supported"
                f" by this kremove yet (supported: {', '.join(kinds.names())}); --limit it out "
                "for now"
            )
        pool = self.pools.get(host.transport)
        if pool is None and host.transport != "local":
            label = {"ssh": "SSH", "winrm": "WinRM"}.get(host.transport, host.transport)
            raise InputError(f"host {host.name!r}: {label} is not set up for this run")
        if pool is not None:
            pool.check(host)

    def for_host(self, host: Host) -> Transport:
        self.check(host)
        pool = self.pools.get(host.transport)
        if pool is None:  # local needs nothing shared
            pool = _open_pool(host.transport, PoolSetup(SecretStore(), notes=self.notes))
            self.pools[host.transport] = pool
        return pool.transport(host)

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()


def _open_pool(name: str, setup: PoolSetup) -> Pool:
    module = importlib.import_module(kinds.KINDS[name].module)
    return cast(Pool, module.open_pool(setup))
