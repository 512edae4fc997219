"""SSH over paramiko: one connection per host, verified host keys, deadlines kremove enforces.

The low-level ``paramiko.Transport`` is used directly rather than ``SSHClient``: kremove owns the
socket (so a jump host's channel can stand in for it), the host-key decision (see ``hostkeys``), the
order of authentication methods, and every wait. Each blocking call runs with the watchdog armed;
at the deadline the watchdog closes the socket or channel beneath it and the call returns.

Here: what a run's connections share (``SshPool``: routes, keys, jump hosts) and one host's
connection (``SshTransport``). One login is ``ssh_login``, with the banner guard in
``ssh_banner`` and keys in ``ssh_keys``; one command, through sudo or not, is ``ssh_sudo``.
A Windows host (its OpenSSH server) runs batch scripts as over WinRM: ``ssh_windows``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import paramiko
from paramiko.ssh_exception import SSHException

from orchestrator.errors import CommandTimeout, TransportError, UnreachableError
from orchestrator.inventory.model import Host
from orchestrator.secrets import SecretStore
from orchestrator.transports import ssh_windows
from orchestrator.transports.base import CommandResult, Deadline, Transport
from orchestrator.transports.connector import Note, PoolSetup
from orchestrator.transports.hostkeys import KnownHosts
from orchestrator.transports.ssh_keys import KeyRing, short
from orchestrator.transports.ssh_login import open_connection
from orchestrator.transports.ssh_sudo import Session, password_refused, result, sudo_failure, wrap
from orchestrator.transports.sshconfig import Endpoint, Route, SshConfig, route
from orchestrator.transports.watchdog import armed

__all__ = ["SshPool", "SshTransport", "open_pool"]

# Handshakes in flight through one jump host (its sshd's MaxStartups applies to them too).
JUMP_HANDSHAKES = 8

# paramiko logs every failed handshake with a traceback; kremove reports each as one line instead.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


def open_pool(setup: PoolSetup) -> SshPool:
    state = setup.state_dir if setup.state_dir is not None else Path(".kremove")
    return SshPool(
        secrets=setup.secrets,
        known_hosts=KnownHosts.default(state / "known_hosts"),
        inventory=setup.inventory,
        config=SshConfig.default(),
        accept_new_hostkeys=setup.accept_new_hostkeys,
        notes=setup.notes,
    )


class SshPool:
    """What the SSH connections of one run share: secrets, host keys, keys, jump connections."""

    def __init__(
        self,
        *,
        secrets: SecretStore,
        known_hosts: KnownHosts,
        inventory: Mapping[str, Host],
        config: SshConfig | None = None,
        accept_new_hostkeys: bool = False,
        notes: Callable[[Note], None] | None = None,
    ) -> None:
        self.secrets = secrets
        self.known_hosts = known_hosts
        self.inventory = inventory
        self.config = config if config is not None else SshConfig(None)
        self.accept_new_hostkeys = accept_new_hostkeys
        self.notes: Callable[[Note], None] = notes or (lambda note: None)
        self._lock = threading.Lock()
        self._keys = KeyRing(secrets)
        self._jumps: dict[tuple[tuple[str, int, str], ...], _Jump] = {}
        self._routes: dict[str, Route] = {}

    def route(self, host: Host) -> Route:
        with self._lock:
            if host.name not in self._routes:
                self._routes[host.name] = route(host, self.inventory, self.config)
            return self._routes[host.name]

    def check(self, host: Host) -> None:
        ssh_windows.check(host)

    def ready(self, hosts: Iterable[Host]) -> None:
        """Resolve every route and load every named key now: bad input stops the run up front.
        Jump hosts' own secrets are fetched here when they are not selected themselves."""
        for host in hosts:
            if host.transport != "ssh":
                continue
            r = self.route(host)
            self.secrets.preload([hop.host for hop in r.hops])
            for endpoint in (*r.hops, r.target):
                if endpoint.host.key_file:
                    self.load_key(endpoint, endpoint.host.key_file, required=True)

    def transport(self, host: Host) -> SshTransport:
        return SshTransport(host, self)

    def on_pinned(self, label: str, name: str, key_type: str, fp: str) -> None:
        """A host key pinned on first use (known_hosts had none): the run's record keeps it."""
        detail = {"known_hosts_name": name, "key_type": key_type, "fingerprint": fp}
        self.notes(Note(label, "hostkey_pinned", detail))

    def load_key(self, endpoint: Endpoint, path: str, *, required: bool) -> paramiko.PKey | None:
        """A private key, read once per run; None for a missing optional one (ssh config)."""
        return self._keys.load(endpoint, path, required=required)

    def jump(self, hops: tuple[Endpoint, ...], deadline: Deadline) -> paramiko.Transport:
        """The shared, authenticated connection to the last of ``hops``, opened once per run."""
        entry = self._jump_entry(hops)
        with entry.lock:
            if entry.transport is not None and entry.transport.is_active():
                return entry.transport
            if entry.error is not None:
                raise entry.error
            via = self.jump(hops[:-1], deadline) if len(hops) > 1 else None
            try:
                entry.transport = open_connection(hops[-1], deadline, self, via)
            except TransportError as exc:
                # Every host behind a dead jump host fails the same way, at once.
                error = type(exc)(f"jump host {hops[-1].label!r}: {exc}")
                if not isinstance(exc, CommandTimeout):
                    entry.error = error
                raise error from None
            return entry.transport

    def jump_slot(self, hops: tuple[Endpoint, ...]) -> threading.BoundedSemaphore:
        return self._jump_entry(hops).handshakes

    def _jump_entry(self, hops: tuple[Endpoint, ...]) -> _Jump:
        key = tuple((h.address, h.port, h.user) for h in hops)
        with self._lock:
            return self._jumps.setdefault(key, _Jump())

    def close(self) -> None:
        with self._lock:
            jumps = list(self._jumps.values())
            self._jumps.clear()
        for entry in jumps:
            if entry.transport is not None:
                entry.transport.close()


class _Jump:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.transport: paramiko.Transport | None = None
        self.error: TransportError | None = None
        self.handshakes = threading.BoundedSemaphore(JUMP_HANDSHAKES)


class SshTransport(Transport):
    name = "ssh"

    def __init__(self, host: Host, run: SshPool) -> None:
        super().__init__(host)
        self._run = run
        self._conn: paramiko.Transport | None = None
        self._become_password: str | None = None
        # Windows' OpenSSH: steps are batch scripts for cmd.exe, without become.
        self._windows = ssh_windows.WindowsCmd(self) if ssh_windows.is_windows(host) else None

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.is_active()

    def connect(self, deadline: Deadline) -> None:
        r = self._run.route(self.host)
        via = self._run.jump(r.hops, deadline) if r.hops else None
        if via is not None:
            with self._run.jump_slot(r.hops):
                self._conn = open_connection(r.target, deadline, self._run, via)
        else:
            self._conn = open_connection(r.target, deadline, self._run, None)
        if self._windows is not None:
            self._windows.connected()
        become = self.host.become
        if become.enabled and become.password is not None:
            what = f"host {self.host.name!r} sudo password"
            self._become_password = self._run.secrets.get(
                become.password, what, kind="sudo password"
            ).reveal()

    def run(
        self, command: str, deadline: Deadline, stdin: bytes | None = None, *, become: bool = False
    ) -> CommandResult:
        if self._windows is not None:
            return self._windows.run(command, deadline, stdin)
        result = self.exec(command, deadline, stdin, become=become)
        ssh_windows.refuse_cmd_answer(self.host, result)
        return result

    def exec(
        self, command: str, deadline: Deadline, stdin: bytes | None = None, *, become: bool = False
    ) -> CommandResult:
        """``command`` on a channel of its own, as the login shell runs it (through sudo with
        ``become``); what came back, or ``timed_out`` when the deadline closed the channel."""
        conn = self._conn
        if conn is None or not conn.is_active():
            raise UnreachableError(f"host {self.host.name!r}: the SSH connection was lost")
        password = self._become_password
        wrapped = wrap(command, self.host, become=become, with_password=password is not None)
        started = time.monotonic()
        try:
            chan = conn.open_session(timeout=max(0.1, deadline.remaining()))
        except (SSHException, EOFError, OSError) as exc:
            if deadline.expired:
                return CommandResult(None, "", "", time.monotonic() - started, timed_out=True)
            raise UnreachableError(
                f"host {self.host.name!r}: cannot open an SSH session: {short(exc)}"
            ) from None
        session = Session(chan, stdin, wrapped, password)
        fired = self._drain(session, wrapped.command, deadline)
        duration = time.monotonic() - started
        if session.wrong_password:
            raise password_refused(self.host)
        if not session.done and (fired or deadline.expired):
            return result(session, duration, timed_out=True)
        if not session.done and not conn.is_active():
            raise UnreachableError(
                f"host {self.host.name!r}: the SSH connection was lost during a command "
                "(it may or may not have finished there)"
            )
        failure = sudo_failure(self.host, session)
        if failure is not None:
            raise failure
        return result(session, duration)

    def _drain(self, session: Session, command: str, deadline: Deadline) -> bool:
        """Run ``command`` on the session's channel until it ends or the deadline closes it;
        True when the deadline did."""
        chan = session.chan
        with armed(deadline.at, chan.close) as dog:
            try:
                session.start(command)  # on a pseudo-terminal for su / doas with a password
                session.drain()
            except (SSHException, EOFError, OSError) as exc:
                if not dog.fired:
                    raise UnreachableError(
                        f"host {self.host.name!r}: the SSH connection broke during a command: "
                        f"{short(exc)}"
                    ) from None
            finally:
                chan.close()
        return dog.fired

    def close(self) -> None:
        if self._windows is not None and self._conn is not None:
            self._windows.close()  # sweeps a script a deadline may have left there
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
