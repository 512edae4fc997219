"""One SSH login: the socket (direct or through a jump host), the handshake behind the banner
guard, the host-key verdict, and authentication in kremove's order.

Every wait runs with the watchdog armed; at the deadline it closes the socket or channel
beneath the call, which then returns.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from typing import Protocol

import paramiko
from paramiko.ssh_exception import (
    AuthenticationException,
    BadAuthenticationType,
    ChannelException,
    SSHException,
)

from orchestrator.errors import (
    AuthError,
    CommandTimeout,
    HostKeyError,
    TransportError,
    UnreachableError,
)
from orchestrator.secrets import SecretStore
from orchestrator.transports.base import Deadline
from orchestrator.transports.hostkeys import KnownHosts, fingerprint, known_hosts_name
from orchestrator.transports.ssh_banner import BannerGuard
from orchestrator.transports.ssh_keys import UnsafeKey, short
from orchestrator.transports.sshconfig import Endpoint
from orchestrator.transports.watchdog import armed

# sshd drops unauthenticated connections beyond MaxStartups before sending its banner; such a
# drop is retried this many times in all, with jittered exponential backoff from BACKOFF_S.
BANNER_ATTEMPTS = 4
BACKOFF_S = 0.25
DEFAULT_IDENTITIES = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")


class LoginContext(Protocol):
    """What a login uses of the run (``SshPool``): secrets, host keys, private keys."""

    secrets: SecretStore
    known_hosts: KnownHosts
    accept_new_hostkeys: bool

    def on_pinned(self, label: str, name: str, key_type: str, fp: str) -> None: ...

    def load_key(
        self, endpoint: Endpoint, path: str, *, required: bool
    ) -> paramiko.PKey | None: ...


def open_connection(
    endpoint: Endpoint, deadline: Deadline, run: LoginContext, via: paramiko.Transport | None
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
            raise UnreachableError(f"{where}: through the jump host: {short(exc)}") from None
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
    sock: socket.socket | paramiko.Channel,
    endpoint: Endpoint,
    deadline: Deadline,
    run: LoginContext,
) -> paramiko.Transport:
    where = endpoint.where
    guard = BannerGuard(sock)
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
            _Login(t, endpoint, run).authenticate()
            ok = True
            return t
        except (AuthenticationException, SSHException, EOFError, OSError) as exc:
            if dog.fired or deadline.expired:
                raise CommandTimeout(f"{where}: SSH login did not finish in time") from None
            if isinstance(exc, AuthenticationException) and t.is_active():
                raise AuthError(f"{where}: {short(exc)}") from None
            raise UnreachableError(f"{where}: connection lost in login: {short(exc)}") from None
        finally:
            if not ok:
                t.close()


def _negotiation_error(exc: BaseException | None, where: str, elapsed: float) -> Exception:
    text = short(exc) if exc is not None else "negotiation failed"
    if "protocol banner" in text:
        return _BannerDropped()
    if isinstance(exc, EOFError | ConnectionResetError) or exc is None:
        return UnreachableError(f"{where}: the server closed the connection during the handshake")
    if "Incompatible" in text or "no acceptable" in text.lower() or "Indecipherable" in text:
        return TransportError(f"{where}: SSH negotiation failed: {text}")
    return UnreachableError(f"{where}: SSH handshake failed: {text}")


def _verify(key: paramiko.PKey, name: str, endpoint: Endpoint, run: LoginContext) -> None:
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


class _Login:
    """Authentication on one negotiated connection, remembering what was tried for the error."""

    def __init__(self, t: paramiko.Transport, endpoint: Endpoint, run: LoginContext) -> None:
        self.t = t
        self.endpoint = endpoint
        self.run = run
        self.tried: list[str] = []
        self.allowed: list[str] | None = None

    def authenticate(self) -> None:
        """Keys the inventory (or ssh config) names, then a password; else agent and defaults."""
        if self._named_keys() or self._password():
            return
        # like ssh: the agent and default identities only when nothing names a key or password
        unnamed = not self.endpoint.key_files and self.endpoint.host.password is None
        if unnamed and (self._agent_keys() or self._default_keys()):
            return
        self._lost_connection()
        if not self.tried:
            raise AuthError(
                f"{self.endpoint.where}: no credentials to try; give the host key_file, "
                "password_env, password_file or password_prompt"
            )
        accepted = f"; the server accepts: {', '.join(self.allowed)}" if self.allowed else ""
        raise AuthError(
            f"{self.endpoint.where}: authentication failed (tried {', '.join(self.tried)})"
            + accepted
        )

    def _named_keys(self) -> bool:
        named = bool(self.endpoint.host.key_file)  # by the inventory: checked up front
        for path in self.endpoint.key_files:
            if named:
                key = self.run.load_key(self.endpoint, path, required=True)
            else:
                key = self._optional_key(path)
            if key is not None and self._try_key(key, f"key {path}"):
                return True
        return False

    def _password(self) -> bool:
        host = self.endpoint.host
        if host.password is None:
            return False
        password = self.run.secrets.get(host.password, f"host {host.name!r} password").reveal()
        if _password_login(self.t, self.endpoint.user, password):
            return True
        self.tried.append("password")
        return False

    def _agent_keys(self) -> bool:
        agent = paramiko.Agent()
        try:
            return any(self._try_key(key, "ssh-agent key") for key in agent.get_keys())
        finally:
            agent.close()

    def _default_keys(self) -> bool:
        for path in DEFAULT_IDENTITIES:
            key = self._optional_key(path)
            if key is not None and self._try_key(key, f"key {path}"):
                return True
        return False

    def _try_key(self, key: paramiko.PKey, label: str) -> bool:
        if self.allowed is not None and "publickey" not in self.allowed:
            return False
        try:
            self.t.auth_publickey(self.endpoint.user, key)
            return True
        except BadAuthenticationType as exc:
            self.allowed = list(exc.allowed_types)
        except AuthenticationException:
            self._lost_connection()
        self.tried.append(label)
        return False

    def _lost_connection(self) -> None:
        """A refusal and a dropped connection look alike to paramiko; tell them apart."""
        if not self.t.is_active():
            raise UnreachableError(f"{self.endpoint.where}: the connection was lost during login")

    def _optional_key(self, path: str) -> paramiko.PKey | None:
        try:
            return self.run.load_key(self.endpoint, path, required=False)
        except UnsafeKey as exc:
            self.tried.append(f"key {path} (not used: {exc})")
            return None


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
