"""WinRM over pywinrm: one cmd shell per host, scripts through temporary .cmd files, our deadlines.

Only pywinrm's low-level ``Protocol`` is used: open a shell, start a command, feed its stdin,
Receive, Signal, Delete. Its ``get_command_output`` is never called, because it retries WS-Man
operation timeouts forever; kremove loops on Receive itself and stops at its own deadline. Every
HTTP request is bounded: the WS-Man OperationTimeout and the HTTP read timeout are recomputed from
the deadline before each request (read timeout > operation timeout, as the server may hold a
Receive for the whole operation timeout).

Beneath pywinrm, ``winrm_guard`` bounds what a host can do to kremove: at the deadline the
watchdog shuts the host's sockets (a host trickling its answer a byte at a time is cut as surely as
a silent one), answers are read up to a cap and never inflated, and an answer declaring a DTD is
refused before any XML parser sees it.

The playbooks render cmd.exe batch scripts of many lines. A script never goes on a command line
(cmd.exe stops at 8191 characters): it is sent as the stdin of ``findstr``, which copies it into a
temporary ``.cmd`` file, run with ``cmd /d /q /c``, then deleted whatever happened. The file is
real, so scripts that read themselves (``%~f0``) work. A script can hold an uninstall password:
one that could not be deleted (the connection broke, the deadline closed the shell) is swept,
with every other ``kremove-*`` file of ``%TEMP%``, by the first script of the next shell and when
the connection closes. ``become`` means nothing here: the login user must be an administrator.
"""

from __future__ import annotations

import contextlib
import logging
import secrets as _random
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import requests
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)
from winrm.protocol import Protocol

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
from orchestrator.transports.base import BoundedOutput, CommandResult, Deadline, Transport
from orchestrator.transports.watchdog import armed
from orchestrator.transports.winrm_guard import HttpGuard, RefusedAnswer, install

AUTHS = ("ntlm", "kerberos", "credssp", "basic", "certificate")
# The longest a single Receive may be held by the host. Short enough that a deadline is noticed
# soon after it passes, long enough not to poll a busy host.
OPERATION_TIMEOUT_S = 20
# How much longer than the operation timeout an HTTP answer may take before the host is
# considered gone: network and the host's own processing.
READ_MARGIN_S = 5
# Script bytes per Send request: well inside WinRM's default MaxEnvelopeSize (150 KiB) once
# base64-encoded and wrapped in SOAP.
SEND_CHUNK = 48 * 1024
# cmd.exe's longest command line; a batch line beyond it is truncated by cmd itself.
CMD_LINE_LIMIT = 8191
# What the script-writing findstr drops: a line nobody writes.
NEVER_MATCHES = "kremove-never-matches-this-line"
# Bounded budget for the cleanup requests after a deadline (Signal, Delete).
CLEANUP_S = 10.0
# kremove's own files in a host's %TEMP%: scripts (some hold the uninstall password) and the
# msiexec logs beside them. A host is worked by one run at a time, so any such file is a leftover.
# (Versions before issue 15 left msiexec's logs in %WINDIR%\Temp: swept too.)
SWEEP = (
    'del /f /q "%TEMP%\\kremove-*.cmd" "%TEMP%\\kremove-*.log" "%WINDIR%\\Temp\\kremove-*.log" '
    ">nul 2>&1"
)

# pywinrm and requests_ntlm warn through logging/warnings only; kremove reports errors itself.
logging.getLogger("winrm").addHandler(logging.NullHandler())

_T = TypeVar("_T")


class WinrmRun:
    """What the WinRM connections of one run share: the secret store."""

    def __init__(self, *, secrets: SecretStore) -> None:
        self.secrets = secrets

    def check(self, host: Host) -> None:
        """Raise InputError for settings that must not or cannot be used, before any connection."""
        settings(host)

    def preflight(self, hosts: Iterable[Host]) -> None:
        for host in hosts:
            if host.transport == "winrm":
                self.check(host)

    def close(self) -> None:
        pass


class _Settings:
    """The checked connection settings of one host (no secret in here)."""

    def __init__(self, host: Host) -> None:
        w = host.winrm
        self.auth = w.auth
        self.scheme = w.scheme
        self.cert_validation = w.cert_validation
        self.ca_trust_path = w.ca_trust_path
        self.endpoint = f"{w.scheme}://{_url_host(host.address)}:{host.port}/wsman"


def settings(host: Host) -> _Settings:
    """The host's WinRM settings, or InputError naming what is wrong and why."""
    w = host.winrm
    label = f"host {host.name!r}"
    if w.scheme not in ("https", "http"):
        raise InputError(f"{label}: winrm scheme {w.scheme!r} is neither https nor http")
    if w.auth not in AUTHS:
        raise InputError(f"{label}: winrm auth {w.auth!r} is not one of {', '.join(AUTHS)}")
    if w.auth == "basic" and w.scheme == "http":
        raise InputError(
            f"{label}: Basic authentication over plain HTTP is refused: it would send the "
            "password in clear text and the session unencrypted; use https, or ntlm (which "
            "encrypts its messages over http)"
        )
    if w.auth == "certificate":
        raise InputError(
            f"{label}: winrm auth 'certificate' needs a client certificate and key, which the "
            "inventory cannot name yet; use ntlm, kerberos, credssp or basic over https"
        )
    if w.auth == "kerberos":
        _require_extra("kerberos", label)
    if w.auth == "credssp":
        _require_extra("credssp", label)
    if w.auth != "kerberos" and host.password is None:
        raise InputError(
            f"{label}: winrm auth {w.auth} needs a password; give the host password_env, "
            "password_file or password_prompt"
        )
    if w.auth != "kerberos" and not host.user:
        raise InputError(f"{label}: winrm auth {w.auth} needs a user")
    return _Settings(host)


def _require_extra(auth: str, label: str) -> None:
    import winrm.transport as wt

    present = wt.HAVE_KERBEROS if auth == "kerberos" else wt.HAVE_CREDSSP
    if not present:
        raise InputError(
            f"{label}: winrm auth {auth} needs an optional dependency that is not installed: "
            f"pip install 'kremove[{auth}]'"
        )


def insecure(host: Host) -> bool:
    """True when the inventory turned certificate validation off for this HTTPS host."""
    return host.winrm.scheme == "https" and not host.winrm.cert_validation


def describe(host: Host) -> str:
    """How kremove reaches the host, for plan output and the ledger (never a secret)."""
    w = host.winrm
    where = f"winrm {w.scheme}://{host.address}:{host.port} auth={w.auth}"
    if w.scheme == "http":
        return f"{where}, messages encrypted by {w.auth}"
    if not w.cert_validation:
        return f"{where}, CERTIFICATE VALIDATION OFF (inventory cert_validation: false)"
    return f"{where}, certificate validated against {w.ca_trust_path or 'the system CA store'}"


class WinRMTransport(Transport):
    name = "winrm"

    def __init__(self, host: Host, run: WinrmRun) -> None:
        super().__init__(host)
        self._run = run
        self._settings = settings(host)
        self._protocol: Protocol | None = None
        self._http: HttpGuard | None = None
        self._shell: str | None = None
        self._lock = threading.Lock()
        # The next script written sweeps kremove's files from %TEMP% first (a new shell: files a
        # broken connection or an earlier run may have left there).
        self._sweep = True
        # A script of ours may still be on the host: closing the connection sweeps once more.
        self._left_behind = False

    @property
    def insecure(self) -> bool:
        return insecure(self.host)

    def describe(self) -> str:
        return describe(self.host)

    # -- connection ----------------------------------------------------------------------------

    def connect(self, deadline: Deadline) -> None:
        s = self._settings
        password = None
        if self.host.password is not None:
            what = f"host {self.host.name!r} password"
            password = self._run.secrets.get(self.host.password, what).reveal()
        encryption = "always" if s.scheme == "http" else "auto"
        if s.auth == "basic":
            encryption = "never"
        try:
            protocol = Protocol(
                s.endpoint,
                transport=s.auth,  # type: ignore[arg-type]
                username=self.host.user,
                password=password,
                server_cert_validation="validate" if s.cert_validation else "ignore",
                # None: only the named CA file (or the system store), never REQUESTS_CA_BUNDLE.
                ca_trust_path=s.ca_trust_path if s.ca_trust_path else None,  # type: ignore[arg-type]
                read_timeout_sec=OPERATION_TIMEOUT_S + READ_MARGIN_S,
                operation_timeout_sec=OPERATION_TIMEOUT_S,
                message_encryption=encryption,  # type: ignore[arg-type]
                proxy=None,
            )
        except WinRMError as exc:
            raise InputError(f"host {self.host.name!r}: {_short(exc)}") from None
        self._http = install(protocol)
        self._protocol = protocol
        self._shell = self._call(deadline, "open a shell", self._open_shell)

    def _open_shell(self, protocol: Protocol) -> str:
        shell = str(protocol.open_shell(codepage=65001, noprofile=True))
        self._sweep = True
        return shell

    def close(self) -> None:
        if self._protocol is None:
            return
        if self._left_behind:  # e.g. the last step timed out: no next script will sweep
            with contextlib.suppress(Exception):  # best effort: the host may be the problem
                cleanup = Deadline.after(CLEANUP_S)
                self._ensure_shell(cleanup)
                if not self._execute(["/d", "/q", "/c", SWEEP], cleanup).timed_out:
                    self._left_behind = False
        protocol, self._protocol = self._protocol, None
        shell, self._shell = self._shell, None
        try:
            if shell is not None:
                self._cleanup(
                    protocol, Deadline.after(CLEANUP_S), [lambda: protocol.close_shell(shell)]
                )
        finally:
            protocol.transport.close_session()

    # -- commands ------------------------------------------------------------------------------

    def run(
        self, command: str, deadline: Deadline, stdin: bytes | None = None, *, become: bool = False
    ) -> CommandResult:
        """Run ``command`` as a cmd.exe batch script; ``stdin`` is not supported (nor needed)."""
        if stdin:
            raise TransportError(
                f"host {self.host.name!r}: the WinRM transport does not feed stdin to scripts"
            )
        script = _batch_bytes(command, self.host.name)
        started = time.monotonic()
        if deadline.expired:  # nothing is started that could not be waited for
            return CommandResult(None, "", "", 0.0, timed_out=True)
        with self._lock:
            self._ensure_shell(deadline)
            path = f"%TEMP%\\kremove-{_random.token_hex(8)}.cmd"
            try:
                result = self._write_and_run(path, script, deadline)
            finally:  # whatever happened: the script may hold the uninstall password
                self._discard(path, deadline)
        if result.timed_out:
            return _timed_out(result, started)
        return CommandResult(
            result.exit_code,
            result.stdout,
            result.stderr,
            time.monotonic() - started,
            truncated=result.truncated,
        )

    def _write_and_run(self, path: str, script: bytes, deadline: Deadline) -> CommandResult:
        write = f'findstr /v /l /x /c:"{NEVER_MATCHES}" > "{path}"'
        if self._sweep:
            write = f"{SWEEP} & {write}"
        written = self._execute(["/d", "/q", "/c", write], deadline, stdin=script)
        if written.timed_out:
            return written
        if self._sweep:
            self._sweep = self._left_behind = False
        if written.exit_code not in (0, 1):  # findstr: 1 = nothing printed (empty script)
            raise TransportError(
                f"host {self.host.name!r}: could not write the script to {path} "
                f"(exit {written.exit_code}): {_last_line(written.stderr or written.stdout)}"
            )
        return self._execute(["/d", "/q", "/c", f'""{path}""'], deadline)

    def _discard(self, path: str, deadline: Deadline) -> None:
        """Delete the script now if the host lets us, else leave it to the next sweep."""
        if self._shell is None or deadline.expired:  # the deadline closed the shell
            self._left_behind = True
            return
        try:
            done = self._execute(
                ["/d", "/q", "/c", f'del /f /q "{path}"'], deadline.sooner(CLEANUP_S)
            )
        except TransportError:  # the connection broke: the step's own error is what matters
            self._left_behind = True
            return
        if done.timed_out:
            self._left_behind = True

    def _ensure_shell(self, deadline: Deadline) -> None:
        if self._protocol is None:
            raise UnreachableError(f"host {self.host.name!r}: not connected")
        if self._shell is None:  # closed after a deadline: a new one for the next step
            self._shell = self._call(deadline, "open a shell", self._open_shell)

    def _execute(
        self, args: list[str], deadline: Deadline, stdin: bytes | None = None
    ) -> CommandResult:
        """Start ``cmd.exe ARGS`` in the shell, feed stdin, Receive until done or the deadline."""
        shell = self._shell
        assert shell is not None
        started = time.monotonic()

        def start(protocol: Protocol) -> str:
            return str(
                protocol.run_command(
                    shell, "cmd.exe", args, console_mode_stdin=stdin is None, skip_cmd_shell=True
                )
            )

        command_id = self._call(deadline, "start a command", start)
        out, err = BoundedOutput(), BoundedOutput()
        if stdin is not None:
            chunks = [stdin[i : i + SEND_CHUNK] for i in range(0, len(stdin), SEND_CHUNK)] or [b""]
            for n, chunk in enumerate(chunks):
                last = n == len(chunks) - 1

                def send(protocol: Protocol, chunk: bytes = chunk, last: bool = last) -> None:
                    protocol.send_command_input(shell, command_id, chunk, end=last)

                try:
                    self._call(deadline, "send the script", send, timeout_ok=True)
                except _Expired:
                    return self._terminate(command_id, out, err, started)
        while True:
            if deadline.expired:
                return self._terminate(command_id, out, err, started)

            def receive(protocol: Protocol) -> tuple[bytes, bytes, int, bool]:
                return protocol.get_command_output_raw(shell, command_id)

            try:
                got = self._call(deadline, "read output", receive, timeout_ok=True, poll=True)
            except _OperationTimeout:
                continue
            except _Expired:
                return self._terminate(command_id, out, err, started)
            stdout, stderr, code, done = got
            out.feed(stdout)
            err.feed(stderr)
            if done:
                # Done without an exit code should not happen; pywinrm reports it as -1.
                return CommandResult(
                    code,
                    out.text(),
                    err.text(),
                    time.monotonic() - started,
                    truncated=bool(out.dropped or err.dropped),
                )

    def _terminate(
        self, command_id: str, out: BoundedOutput, err: BoundedOutput, started: float
    ) -> CommandResult:
        """The deadline passed: Signal terminate, close the shell, report a timeout."""
        protocol, shell = self._protocol, self._shell
        self._shell = None
        if protocol is not None and shell is not None:
            self._cleanup(
                protocol,
                Deadline.after(CLEANUP_S),
                [
                    lambda: protocol.cleanup_command(shell, command_id),
                    lambda: protocol.close_shell(shell, close_session=False),
                ],
            )
        return CommandResult(
            None,
            out.text(),
            err.text(),
            time.monotonic() - started,
            timed_out=True,
            truncated=bool(out.dropped or err.dropped),
        )

    def _cleanup(
        self, protocol: Protocol, deadline: Deadline, steps: list[Callable[[], object]]
    ) -> None:
        """Best-effort requests after a deadline, each cut at ``deadline`` like any other."""
        for step in steps:
            try:
                self._bound(protocol, deadline)
                with armed(deadline.at, self._cut):
                    step()
            except Exception:  # the host may be the reason for the timeout
                pass

    def _cut(self) -> None:
        if self._http is not None:
            self._http.cut()

    # -- one bounded request -------------------------------------------------------------------

    def _bound(self, protocol: Protocol, deadline: Deadline, *, poll: bool = False) -> None:
        """Fit the next request into ``deadline``: WS-Man OperationTimeout and HTTP read timeout.

        A Receive (``poll``) is held by the host up to its OperationTimeout; any other request
        is answered at once, so its read timeout is simply what is left. These are what a host
        that behaves meets; the watchdog cuts one that does not at the deadline itself.
        """
        remaining = deadline.remaining()
        operation = max(1, min(OPERATION_TIMEOUT_S, int(remaining) - 1))
        protocol.operation_timeout_sec = operation
        if poll:
            read = operation + READ_MARGIN_S
        else:
            read = max(operation + 1, min(OPERATION_TIMEOUT_S, int(remaining) + 1))
        protocol.transport.read_timeout_sec = read

    def _call(
        self,
        deadline: Deadline,
        doing: str,
        request: Callable[[Protocol], _T],
        *,
        timeout_ok: bool = False,
        poll: bool = False,
    ) -> _T:
        """One WS-Man request, cut at the deadline, with every failure mapped to a typed error.

        With ``timeout_ok`` a deadline reached during the request raises ``_Expired`` (the
        caller then terminates the command) instead of CommandTimeout.
        """
        protocol = self._protocol
        if protocol is None:
            raise UnreachableError(f"host {self.host.name!r}: not connected")
        where = f"host {self.host.name!r} ({self.host.address}:{self.host.port})"
        self._bound(protocol, deadline, poll=poll)
        dog = armed(deadline.at, self._cut)
        try:
            with dog:
                return request(protocol)
        except Exception as exc:
            if dog.fired or (deadline.expired and _is_timeout(exc)):
                if timeout_ok:
                    raise _Expired() from None
                raise CommandTimeout(
                    f"{where}: no answer in time while trying to {doing}"
                ) from None
            raise self._failure(exc, where, doing, protocol, poll) from None

    def _failure(
        self, exc: Exception, where: str, doing: str, protocol: Protocol, poll: bool
    ) -> Exception:
        """The typed error (or the Receive loop's signal) for a request that failed in time."""
        if isinstance(exc, WinRMOperationTimeoutError):
            if poll:
                return _OperationTimeout()
            return TransportError(f"{where}: WS-Man operation timeout while trying to {doing}")
        if isinstance(exc, RefusedAnswer):
            return TransportError(f"{where}: answer refused while trying to {doing}: {exc}")
        if isinstance(exc, InvalidCredentialsError):
            return AuthError(
                f"{where}: the credentials were rejected (HTTP 401, winrm auth "
                f"{self._settings.auth}, user {self.host.user!r})"
            )
        if isinstance(exc, PermissionError):  # requests_ntlm: no NTLM challenge came back
            return AuthError(f"{where}: NTLM authentication failed: {_short(exc)}")
        if isinstance(exc, requests.exceptions.SSLError):
            return self._tls_error(where, exc)
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return UnreachableError(f"{where}: no answer to the TCP connection")
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return UnreachableError(
                f"{where}: no answer within {protocol.transport.read_timeout_sec}s while trying "
                f"to {doing}"
            )
        if isinstance(exc, requests.exceptions.ConnectionError):
            return UnreachableError(f"{where}: {_connection_reason(exc)}")
        if isinstance(exc, WSManFaultError):
            return TransportError(
                f"{where}: WS-Man fault (HTTP {exc.code}) while trying to {doing}: "
                f"{_short_text(exc.reason)}"
                + (f" [code {exc.wsman_fault_code}]" if exc.wsman_fault_code else "")
            )
        if isinstance(exc, WinRMTransportError):
            return TransportError(
                f"{where}: HTTP {exc.code} from the WinRM service while trying to {doing}"
                + (f": {_short_text(exc.response_text)}" if exc.response_text else "")
            )
        if isinstance(exc, (ET.ParseError, StopIteration, KeyError, ValueError, TypeError)):
            return TransportError(
                f"{where}: malformed WS-Man answer while trying to {doing}: {_short(exc)}"
            )
        if isinstance(exc, WinRMError):
            return TransportError(f"{where}: {_short(exc)} while trying to {doing}")
        if isinstance(exc, requests.exceptions.RequestException):
            return TransportError(f"{where}: HTTP failure while trying to {doing}: {_short(exc)}")
        return exc  # a bug of kremove's: shown as it is

    def _tls_error(self, where: str, exc: Exception) -> TransportError:
        text = _connection_reason(exc)
        s = self._settings
        if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate verify failed" in str(exc):
            trust = s.ca_trust_path or "the system CA store"
            # The WinRM counterpart of an SSH host key that does not match: hostkey_rejected.
            return HostKeyError(
                f"{where}: TLS certificate verification failed ({text}); it was checked "
                f"against {trust}: give the host's CA in ca_trust_path, or set "
                "cert_validation: false only if you accept an unverified host"
            )
        return UnreachableError(f"{where}: TLS handshake failed: {text}")


class _Expired(Exception):
    """The deadline passed during a request."""


class _OperationTimeout(Exception):
    """A Receive that the host ended with its operation-timeout fault: nothing new yet."""


def _is_timeout(exc: Exception) -> bool:
    return isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout))


def _timed_out(result: CommandResult, started: float) -> CommandResult:
    return CommandResult(
        None,
        result.stdout,
        result.stderr,
        time.monotonic() - started,
        timed_out=True,
        truncated=result.truncated,
    )


def _batch_bytes(script: str, host_name: str) -> bytes:
    """The script as a batch file: UTF-8, CRLF lines (cmd.exe mis-parses labels after LF only)."""
    lines = script.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, 1):
        if len(line.encode("utf-8")) > CMD_LINE_LIMIT:
            raise TransportError(
                f"host {host_name!r}: line {number} of the script is longer than cmd.exe's "
                f"{CMD_LINE_LIMIT}-character limit"
            )
        if line == NEVER_MATCHES:
            raise TransportError(f"host {host_name!r}: line {number} of the script is reserved")
    return "".join(f"{line}\r\n" for line in lines).encode("utf-8")


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


def _refused_or_dns(exc: BaseException) -> str | None:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ConnectionRefusedError):
            return "connection refused (is the WinRM service listening on that port?)"
        name = type(cur).__name__
        if name == "NameResolutionError" or "Name or service not known" in str(cur):
            return "cannot resolve the address"
        cur = cur.__cause__ or cur.__context__ or _first_arg_exc(cur)
    return None


def _first_arg_exc(exc: BaseException) -> BaseException | None:
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, BaseException):
            return arg
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, BaseException) else None


def _connection_reason(exc: BaseException) -> str:
    known = _refused_or_dns(exc)
    if known:
        return known
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "no answer to the TCP connection"
    text = str(exc)
    # urllib3 wraps the reason deep inside its message; keep its last, most specific part.
    inner = _innermost(exc)
    return _short(inner) if inner is not None else _short_text(text)


def _innermost(exc: BaseException) -> BaseException | None:
    seen: set[int] = set()
    cur: BaseException | None = exc
    last: BaseException | None = None
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        last = cur
        cur = cur.__cause__ or _first_arg_exc(cur)
    return last


def _short(exc: BaseException) -> str:
    return _short_text(str(exc)) or type(exc).__name__


def _short_text(text: Any) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = str(text).strip()
    return text.splitlines()[0][:200] if text else ""


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "no output"
