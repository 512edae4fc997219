"""SSH over paramiko: one connection per host, verified host keys, deadlines kremove enforces.

The low-level ``paramiko.Transport`` is used directly rather than ``SSHClient``: kremove owns the
socket (so a jump host's channel can stand in for it), the host-key decision (see ``hostkeys``), the
order of authentication methods, and every wait. Each blocking call runs with the watchdog armed;
at the deadline the watchdog closes the socket or channel beneath it and the call returns.
"""

from __future__ import annotations

import logging
import os
import random
import secrets as _random
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import paramiko
from paramiko.ssh_exception import (
    AuthenticationException,
    BadAuthenticationType,
    ChannelException,
    PasswordRequiredException,
    SSHException,
)

from orchestrator.errors import (
    AuthError,
    CommandTimeout,
    HostKeyError,
    InputError,
    TransportError,
    UnreachableError,
)
from orchestrator.inventory.model import Host
from orchestrator.secrets import SecretStore
from orchestrator.transports.base import (
    BoundedOutput,
    CommandResult,
    Deadline,
    Transport,
    become_command,
)
from orchestrator.transports.hostkeys import KnownHosts, fingerprint, known_hosts_name
from orchestrator.transports.sshconfig import Endpoint, Route, SshConfig, route
from orchestrator.transports.watchdog import armed

# sshd drops unauthenticated connections beyond MaxStartups before sending its banner; such a
# drop is retried this many times in all, with jittered exponential backoff from BACKOFF_S.
BANNER_ATTEMPTS = 4
BACKOFF_S = 0.25
# Handshakes in flight through one jump host (its sshd's MaxStartups applies to them too).
JUMP_HANDSHAKES = 8
DEFAULT_IDENTITIES = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")
READ_CHUNK = 65536
# What a server may send as and before its "SSH-" line: OpenSSH's limits (kex.c).
MAX_BANNER_LINE = 8192
MAX_PRE_BANNER_LINES = 1024

# paramiko logs every failed handshake with a traceback; kremove reports each as one line instead.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

PinCallback = Callable[[str, str, str, str], None]  # host label, known_hosts name, type, fp


class SshRun:
    """What the SSH connections of one run share: secrets, host keys, keys, jump connections."""

    def __init__(
        self,
        *,
        secrets: SecretStore,
        known_hosts: KnownHosts,
        inventory: Mapping[str, Host],
        config: SshConfig | None = None,
        accept_new_hostkeys: bool = False,
        on_pinned: PinCallback | None = None,
    ) -> None:
        self.secrets = secrets
        self.known_hosts = known_hosts
        self.inventory = inventory
        self.config = config if config is not None else SshConfig(None)
        self.accept_new_hostkeys = accept_new_hostkeys
        self.on_pinned = on_pinned or (lambda *a: None)
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str], paramiko.PKey | None] = {}
        self._jumps: dict[tuple[tuple[str, int, str], ...], _Jump] = {}
        self._routes: dict[str, Route] = {}

    def route(self, host: Host) -> Route:
        with self._lock:
            if host.name not in self._routes:
                self._routes[host.name] = route(host, self.inventory, self.config)
            return self._routes[host.name]

    def preflight(self, hosts: Iterable[Host]) -> None:
        """Resolve every route and load every named key now: bad input stops the run up front."""
        for host in hosts:
            if host.transport != "ssh":
                continue
            r = self.route(host)
            for endpoint in (*r.hops, r.target):
                if endpoint.host.key_file:
                    self.load_key(endpoint, endpoint.host.key_file, required=True)

    def load_key(self, endpoint: Endpoint, path: str, *, required: bool) -> paramiko.PKey | None:
        """A private key, read once per run; None for a missing optional one (ssh config)."""
        host = endpoint.host
        full = str(Path(path).expanduser())
        ref = host.key_passphrase
        cache_key = (full, repr(ref))
        with self._lock:
            if cache_key in self._keys:
                return self._keys[cache_key]
        what = f"host {host.name!r} key_file {full}"
        exposed = _exposed(full)
        if exposed is not None:
            if required:
                raise InputError(f"{what}: {exposed}")
            raise _UnsafeKey(exposed)
        passphrase = None
        if ref is not None:
            what_secret = f"host {host.name!r} key passphrase"
            passphrase = self.secrets.get(ref, what_secret, kind="key passphrase").reveal().encode()
        key: paramiko.PKey | None
        try:
            key = paramiko.PKey.from_path(full, passphrase)
        except FileNotFoundError:
            if required:
                raise InputError(f"{what}: no such file; fix key_file in the inventory") from None
            key = None
        except (PasswordRequiredException, TypeError) as exc:
            # cryptography says "password-protected" with a TypeError for OpenSSH-format keys.
            if isinstance(exc, TypeError) and "password" not in str(exc):
                raise
            if required:
                raise InputError(
                    f"{what}: the key is encrypted; reference its passphrase with "
                    "key_passphrase_env, key_passphrase_file or key_passphrase_prompt"
                ) from None
            key = None
        except (SSHException, ValueError, OSError) as exc:
            if not required:
                key = None
            elif passphrase is not None:
                raise InputError(f"{what}: cannot be decrypted with the given passphrase") from None
            else:
                raise InputError(f"{what}: not a usable private key ({_short(exc)})") from None
        with self._lock:
            self._keys[cache_key] = key
        return key

    def jump(self, hops: tuple[Endpoint, ...], deadline: Deadline) -> paramiko.Transport:
        """The shared, authenticated connection to the last of ``hops``, opened once per run."""
        key = tuple((h.address, h.port, h.user) for h in hops)
        with self._lock:
            entry = self._jumps.get(key)
            if entry is None:
                entry = self._jumps[key] = _Jump()
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
        key = tuple((h.address, h.port, h.user) for h in hops)
        with self._lock:
            return self._jumps.setdefault(key, _Jump()).handshakes

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


class SSHTransport(Transport):
    name = "ssh"

    def __init__(self, host: Host, run: SshRun) -> None:
        super().__init__(host)
        self._run = run
        self._conn: paramiko.Transport | None = None
        self._become_password: str | None = None

    def connect(self, deadline: Deadline) -> None:
        r = self._run.route(self.host)
        via = self._run.jump(r.hops, deadline) if r.hops else None
        if via is not None:
            with self._run.jump_slot(r.hops):
                self._conn = open_connection(r.target, deadline, self._run, via)
        else:
            self._conn = open_connection(r.target, deadline, self._run, None)
        become = self.host.become
        if become.enabled and become.password is not None:
            what = f"host {self.host.name!r} sudo password"
            self._become_password = self._run.secrets.get(
                become.password, what, kind="sudo password"
            ).reveal()

    def run(
        self, command: str, deadline: Deadline, stdin: bytes | None = None, *, become: bool = False
    ) -> CommandResult:
        conn = self._conn
        if conn is None or not conn.is_active():
            raise UnreachableError(f"host {self.host.name!r}: the SSH connection was lost")
        marker = prompt = None
        if become and self.host.become.enabled:
            token = _random.token_hex(8)
            marker = f"kremove-become-{token}"
            if self._become_password is not None:
                prompt = f"[kremove-sudo-{token}]"
            command = become_command(command, self.host.become.user, prompt=prompt, marker=marker)
        started = time.monotonic()
        try:
            chan = conn.open_session(timeout=max(0.1, deadline.remaining()))
        except (SSHException, EOFError, OSError) as exc:
            if deadline.expired:
                return CommandResult(None, "", "", time.monotonic() - started, timed_out=True)
            raise UnreachableError(
                f"host {self.host.name!r}: cannot open an SSH session: {_short(exc)}"
            ) from None
        session = _Session(chan, stdin, marker, prompt, self._become_password)
        with armed(deadline.at, chan.close) as dog:
            try:
                chan.exec_command(command)
                session.drain()
            except (SSHException, EOFError, OSError) as exc:
                if not dog.fired:
                    raise UnreachableError(
                        f"host {self.host.name!r}: the SSH connection broke during a command: "
                        f"{_short(exc)}"
                    ) from None
            finally:
                chan.close()
        duration = time.monotonic() - started
        if session.wrong_password:
            raise AuthError(
                f"host {self.host.name!r}: sudo refused the become password "
                f"(as {self.host.become.user}); check the inventory's become password reference"
            )
        if not session.done and (dog.fired or deadline.expired):
            return CommandResult(
                None,
                session.out.text(),
                session.err.text(),
                duration,
                timed_out=True,
                truncated=session.truncated,
            )
        if not session.done and not conn.is_active():
            raise UnreachableError(
                f"host {self.host.name!r}: the SSH connection was lost during a command "
                "(it may or may not have finished there)"
            )
        if marker is not None and not session.became:
            detail = _last_line(session.err.text())
            raise AuthError(
                f"host {self.host.name!r}: sudo to {self.host.become.user} failed"
                + (f": {detail}" if detail else "")
                + (
                    "; give the host a become password reference, or NOPASSWD sudo"
                    if "password is required" in detail
                    else ""
                )
            )
        return CommandResult(
            session.exit_code,
            session.out.text(),
            session.err.text(),
            duration,
            truncated=session.truncated,
        )

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class _Session:
    """Drains one channel's stdout and stderr together, answering sudo's prompt on the way."""

    def __init__(
        self,
        chan: paramiko.Channel,
        stdin: bytes | None,
        marker: str | None,
        prompt: str | None,
        password: str | None,
    ) -> None:
        self.chan = chan
        self.stdin = stdin or b""
        self.marker = marker.encode() + b"\n" if marker else None
        self.prompt = prompt.encode() if prompt else None
        self.password = password
        self.out = BoundedOutput()
        self.err = BoundedOutput()
        self.became = marker is None
        self.wrong_password = False
        self.done = False
        self.exit_code: int | None = None
        self._pre_out = bytearray()  # stdout before the become marker
        self._pre_err = bytearray()  # stderr before it: where sudo's prompt appears
        self._prompts_answered = 0

    @property
    def truncated(self) -> bool:
        return bool(self.out.dropped or self.err.dropped)

    def drain(self) -> None:
        chan = self.chan
        if self.became:
            self._send_stdin()
        selector = selectors.DefaultSelector()
        selector.register(chan.fileno(), selectors.EVENT_READ)
        try:
            while True:
                self._read_ready()
                if self.wrong_password:
                    return
                if chan.closed or (chan.eof_received and chan.exit_status_ready()):
                    self._read_ready()
                    break
                selector.select(timeout=1.0)
        finally:
            selector.close()
        # paramiko reports -1 when no exit status came (closed, or killed by a signal).
        if chan.exit_status_ready() and chan.recv_exit_status() != -1:
            self.done = True
            self.exit_code = chan.recv_exit_status()
        if not self.became:
            # The command never started: what sudo said is the error output.
            self.err.feed(bytes(self._pre_err))
            self.out.feed(bytes(self._pre_out))

    def _read_ready(self) -> None:
        chan = self.chan
        while chan.recv_stderr_ready():
            data = chan.recv_stderr(READ_CHUNK)
            if self.became:
                self.err.feed(data)
            else:
                self._pre_err += data
                self._answer_prompt()
        while chan.recv_ready():
            data = chan.recv(READ_CHUNK)
            if not data:
                break
            if self.became:
                self.out.feed(data)
            else:
                self._pre_out += data
                self._check_marker()

    def _answer_prompt(self) -> None:
        if self.prompt is None or self.password is None:
            return
        seen = self._pre_err.count(self.prompt)
        if seen > self._prompts_answered:
            if self._prompts_answered >= 1:
                self.wrong_password = True  # asked again: the password was refused
                return
            self._prompts_answered += 1
            self.chan.sendall((self.password + "\n").encode())

    def _check_marker(self) -> None:
        assert self.marker is not None
        at = self._pre_out.find(self.marker)
        if at < 0:
            return
        self.became = True
        self.out.feed(bytes(self._pre_out[at + len(self.marker) :]))
        leftover = bytes(self._pre_err)
        if self.prompt is not None:
            leftover = leftover.replace(self.prompt, b"")
        self.err.feed(leftover)
        self._pre_out.clear()
        self._pre_err.clear()
        self._send_stdin()

    def _send_stdin(self) -> None:
        if self.stdin:
            self.chan.sendall(self.stdin)
        self.chan.shutdown_write()


def open_connection(
    endpoint: Endpoint, deadline: Deadline, run: SshRun, via: paramiko.Transport | None
) -> paramiko.Transport:
    """Connect, verify the host key and authenticate; retries sshd's pre-banner drops."""
    delay = BACKOFF_S
    for attempt in range(1, BANNER_ATTEMPTS + 1):
        sock = _open_socket(endpoint, deadline, via)
        try:
            return _handshake(sock, endpoint, deadline, run)
        except _BannerDropped:
            if attempt == BANNER_ATTEMPTS or deadline.remaining() < delay * 2:
                raise UnreachableError(
                    f"{endpoint.where}: the server closed the connection before its SSH banner, "
                    f"{attempt} times (sshd MaxStartups?)"
                ) from None
            time.sleep(random.uniform(delay / 2, delay * 1.5))
            delay *= 2
    raise AssertionError("unreachable")


class _BannerDropped(Exception):
    pass


def _open_socket(
    endpoint: Endpoint, deadline: Deadline, via: paramiko.Transport | None
) -> socket.socket | paramiko.Channel:
    where = f"{endpoint.address}:{endpoint.port}"
    if via is not None:
        try:
            return via.open_channel(
                "direct-tcpip",
                (endpoint.address, endpoint.port),
                ("127.0.0.1", 0),
                timeout=max(0.1, deadline.remaining()),
            )
        except ChannelException as exc:
            raise UnreachableError(
                f"{where}: the jump host could not connect to it ({exc.text})"
            ) from None
        except (SSHException, EOFError, OSError) as exc:
            if deadline.expired:
                raise CommandTimeout(f"{where}: no channel through the jump host in time") from None
            raise UnreachableError(f"{where}: through the jump host: {_short(exc)}") from None
    try:
        return socket.create_connection(
            (endpoint.address, endpoint.port), timeout=max(0.1, deadline.remaining())
        )
    except TimeoutError:
        raise UnreachableError(f"{where}: no answer to the TCP connection") from None
    except ConnectionRefusedError:
        raise UnreachableError(f"{where}: connection refused (is sshd running there?)") from None
    except socket.gaierror as exc:
        raise UnreachableError(f"{where}: cannot resolve the address ({exc.strerror})") from None
    except OSError as exc:
        raise UnreachableError(f"{where}: {exc.strerror or exc}") from None


def _handshake(
    sock: socket.socket | paramiko.Channel, endpoint: Endpoint, deadline: Deadline, run: SshRun
) -> paramiko.Transport:
    where = endpoint.where
    guard = _BannerGuard(sock)
    t = paramiko.Transport(guard)
    remaining = max(0.1, deadline.remaining())
    t.banner_timeout = t.handshake_timeout = t.auth_timeout = remaining
    name = known_hosts_name(endpoint.address, endpoint.port)
    options = t.get_security_options()
    options.key_types = run.known_hosts.preferred_algorithms(
        name, endpoint.known_hosts, options.key_types
    )
    started = time.monotonic()
    ok = False
    with armed(deadline.at, t.close) as dog:
        try:
            negotiated = threading.Event()
            t.start_client(event=negotiated)
            negotiated.wait(remaining + 1.0)
            if guard.problem is not None:
                raise TransportError(f"{where}: {guard.problem}")
            if dog.fired or not negotiated.is_set():
                raise CommandTimeout(f"{where}: no SSH handshake within {remaining:.0f}s")
            if not t.is_active():
                if not guard.done and guard.lines:
                    raise TransportError(
                        f"{where}: the server sent text but no SSH banner (SSH-2.0-...); "
                        "is this an SSH port?"
                    )
                raise _negotiation_error(t.get_exception(), where, time.monotonic() - started)
            _verify(t.get_remote_server_key(), name, endpoint, run)
            _authenticate(t, endpoint, run)
            ok = True
            return t
        except (AuthenticationException, SSHException, EOFError, OSError) as exc:
            if dog.fired or deadline.expired:
                raise CommandTimeout(f"{where}: SSH login did not finish in time") from None
            if isinstance(exc, AuthenticationException) and t.is_active():
                raise AuthError(f"{where}: {_short(exc)}") from None
            raise UnreachableError(f"{where}: connection lost in login: {_short(exc)}") from None
        finally:
            if not ok:
                t.close()


class _BannerRefused(Exception):
    pass


class _BannerGuard:
    """Stands for the socket, and until the server's "SSH-" line has passed, refuses a line
    longer than MAX_BANNER_LINE or more than MAX_PRE_BANNER_LINES lines before it.

    paramiko reads the banner 128 bytes at a time into an ever longer buffer that it copies and
    searches on each step: an endless line holds the interpreter lock longer and longer, slowing
    every other host's thread, until this host's deadline."""

    def __init__(self, sock: socket.socket | paramiko.Channel) -> None:
        self._sock = sock
        self.problem: str | None = None
        self.done = False
        self.lines = 0  # complete lines before the banner
        self._length = 0  # of the line being received
        self._head = b""  # its first four bytes

    def recv(self, size: int) -> bytes:
        data: bytes = self._sock.recv(size)
        if not self.done:
            self.done = self._inspect(data)
        return data

    def _inspect(self, data: bytes) -> bool:
        """Count ``data`` against the limits; True once the banner line has ended."""
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            stop = len(data) if end < 0 else end
            self._head += data[start : min(stop, start + 4 - len(self._head))]
            self._length += stop - start
            if self._length > MAX_BANNER_LINE:
                self._refuse(
                    f"a line longer than {MAX_BANNER_LINE} bytes where its SSH banner is due"
                )
            if end < 0:
                return False
            if self._head.startswith(b"SSH-"):
                return True
            self.lines += 1
            if self.lines > MAX_PRE_BANNER_LINES:
                self._refuse(f"more than {MAX_PRE_BANNER_LINES} lines before its SSH banner")
            self._length, self._head, start = 0, b"", end + 1
        return False

    def _refuse(self, what: str) -> NoReturn:
        self.problem = f"the server sent {what}; is this an SSH port?"
        raise _BannerRefused(self.problem)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _negotiation_error(exc: BaseException | None, where: str, elapsed: float) -> Exception:
    text = _short(exc) if exc is not None else "negotiation failed"
    if "protocol banner" in text:
        return _BannerDropped()
    if isinstance(exc, EOFError | ConnectionResetError) or exc is None:
        return UnreachableError(f"{where}: the server closed the connection during the handshake")
    if "Incompatible" in text or "no acceptable" in text.lower() or "Indecipherable" in text:
        return TransportError(f"{where}: SSH negotiation failed: {text}")
    return UnreachableError(f"{where}: SSH handshake failed: {text}")


def _verify(key: paramiko.PKey, name: str, endpoint: Endpoint, run: SshRun) -> None:
    verdict = run.known_hosts.check(name, key, endpoint.known_hosts)
    offered = f"{key.get_name()} {fingerprint(key)}"
    label = f"host {endpoint.label!r}"
    if verdict.state == "known":
        return
    if verdict.state == "revoked":
        raise HostKeyError(f"{label}: its host key {offered} is revoked ({verdict.origin})")
    if verdict.state == "changed":
        raise HostKeyError(
            f"{label}: HOST KEY CHANGED for {name}: expected {' or '.join(verdict.expected)} "
            f"({verdict.origin}), offered {offered}; if the host was reinstalled, verify the new "
            "key out of band and replace the old line"
        )
    if not run.accept_new_hostkeys:
        raise HostKeyError(
            f"{label}: host key {offered} for {name} is not known; verify it, then add it to "
            "known_hosts or rerun with --accept-new-hostkeys to pin it"
        )
    try:
        run.known_hosts.pin(name, key)
    except OSError as exc:
        raise HostKeyError(f"{label}: cannot pin its host key: {exc}") from None
    run.on_pinned(endpoint.label, name, key.get_name(), fingerprint(key))


def _authenticate(t: paramiko.Transport, endpoint: Endpoint, run: SshRun) -> None:
    """Keys the inventory (or ssh config) names, then a password; else the agent and defaults."""
    host = endpoint.host
    user = endpoint.user
    tried: list[str] = []
    allowed: list[str] | None = None

    def try_key(key: paramiko.PKey, label: str) -> bool:
        nonlocal allowed
        if allowed is not None and "publickey" not in allowed:
            return False
        try:
            t.auth_publickey(user, key)
            return True
        except BadAuthenticationType as exc:
            allowed = list(exc.allowed_types)
        except AuthenticationException:
            lost_connection()
        tried.append(label)
        return False

    def lost_connection() -> None:
        """A refusal and a dropped connection look alike to paramiko; tell them apart."""
        if not t.is_active():
            raise UnreachableError(f"{endpoint.where}: the connection was lost during login")

    def optional_key(path: str) -> paramiko.PKey | None:
        try:
            return run.load_key(endpoint, path, required=False)
        except _UnsafeKey as exc:
            tried.append(f"key {path} (not used: {exc})")
            return None

    named = bool(host.key_file)  # by the inventory: checked up front, a problem is an error
    for path in endpoint.key_files:
        key = run.load_key(endpoint, path, required=True) if named else optional_key(path)
        if key is not None and try_key(key, f"key {path}"):
            return
    password = None
    if host.password is not None:
        password = run.secrets.get(host.password, f"host {host.name!r} password").reveal()
        if _password_login(t, user, password):
            return
        tried.append("password")
    if not endpoint.key_files and password is None:
        agent = paramiko.Agent()
        try:
            for key in agent.get_keys():
                if try_key(key, "ssh-agent key"):
                    return
        finally:
            agent.close()
        for path in DEFAULT_IDENTITIES:
            key = optional_key(path)
            if key is not None and try_key(key, f"key {path}"):
                return
    lost_connection()
    if not tried:
        raise AuthError(
            f"{endpoint.where}: no credentials to try; give the host key_file, password_env, "
            "password_file or password_prompt"
        )
    accepted = f"; the server accepts: {', '.join(allowed)}" if allowed else ""
    raise AuthError(f"{endpoint.where}: authentication failed (tried {', '.join(tried)}){accepted}")


class _UnsafeKey(Exception):
    """A key kremove found itself (ssh config, default identity) that others can read: skipped,
    as ssh skips it, and named in the authentication failure."""


def _exposed(path: str) -> str | None:
    """Why ssh would refuse this private key for its permissions ("bad permissions"), or None."""
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError:
        return None  # reading it says what is wrong
    if not mode & 0o077 or os.name == "nt":
        return None
    return f"other users can read or change it (mode {mode:04o}); chmod 600 {path}"


def _password_login(t: paramiko.Transport, user: str, password: str) -> bool:
    try:
        t.auth_password(user, password)
        return True
    except BadAuthenticationType as exc:
        if "keyboard-interactive" not in exc.allowed_types:
            return False
    except AuthenticationException:
        return False

    def answer(title: str, instructions: str, prompts: list[tuple[str, bool]]) -> list[str]:
        return [password for _ in prompts]

    try:
        t.auth_interactive(user, answer)
        return True
    except AuthenticationException:
        return False


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
