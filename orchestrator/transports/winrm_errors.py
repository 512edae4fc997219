"""What a failed WS-Man request means, as kremove's typed errors with a reason a user can act on.

pywinrm, requests, urllib3 and the guard beneath them each fail in their own way; one mapping
here turns them into unreachable, authentication, host-key (TLS trust) and transport errors.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import requests
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMError,
    WinRMTransportError,
    WSManFaultError,
)

from orchestrator.errors import AuthError, HostKeyError, TransportError, UnreachableError
from orchestrator.transports.winrm_guard import RefusedAnswer


def failure(
    exc: Exception,
    where: str,
    doing: str,
    *,
    auth: str,
    user: str | None,
    read_timeout: float | None,
    trust: str | None,
) -> Exception:
    """The typed error for a request that failed before the deadline; ``exc`` itself when it is
    none of the known kinds (a bug of kremove's: shown as it is). ``trust`` is the CA file the
    certificate was checked against (None: the system store)."""
    if isinstance(exc, RefusedAnswer):
        return TransportError(f"{where}: answer refused while trying to {doing}: {exc}")
    if isinstance(exc, InvalidCredentialsError):
        return AuthError(
            f"{where}: the credentials were rejected (HTTP 401, winrm auth {auth}, user {user!r})"
        )
    if isinstance(exc, PermissionError):  # requests_ntlm: no NTLM challenge came back
        return AuthError(f"{where}: NTLM authentication failed: {short(exc)}")
    unreachable = _network_failure(exc, where, doing, read_timeout, trust)
    if unreachable is not None:
        return unreachable
    if isinstance(exc, WSManFaultError):
        return TransportError(
            f"{where}: WS-Man fault (HTTP {exc.code}) while trying to {doing}: "
            f"{short_text(exc.reason)}"
            + (f" [code {exc.wsman_fault_code}]" if exc.wsman_fault_code else "")
        )
    if isinstance(exc, WinRMTransportError):
        return TransportError(
            f"{where}: HTTP {exc.code} from the WinRM service while trying to {doing}"
            + (f": {short_text(exc.response_text)}" if exc.response_text else "")
        )
    # requests' own ValueErrors (e.g. InvalidURL) are among these too: checked before them
    if isinstance(exc, (ET.ParseError, StopIteration, KeyError, ValueError, TypeError)):
        return TransportError(
            f"{where}: malformed WS-Man answer while trying to {doing}: {short(exc)}"
        )
    if isinstance(exc, WinRMError):
        return TransportError(f"{where}: {short(exc)} while trying to {doing}")
    if isinstance(exc, requests.exceptions.RequestException):
        return TransportError(f"{where}: HTTP failure while trying to {doing}: {short(exc)}")
    return exc


def _network_failure(
    exc: Exception, where: str, doing: str, read_timeout: float | None, trust: str | None
) -> Exception | None:
    """The error for a failure to reach the host or to trust it, None for any other failure."""
    if isinstance(exc, requests.exceptions.SSLError):
        return _tls_error(exc, where, trust)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return UnreachableError(f"{where}: no answer to the TCP connection")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return UnreachableError(
            f"{where}: no answer within {read_timeout}s while trying to {doing}"
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        return UnreachableError(f"{where}: {connection_reason(exc)}")
    return None


def _tls_error(exc: Exception, where: str, trust: str | None) -> TransportError:
    text = connection_reason(exc)
    if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate verify failed" in str(exc):
        # The WinRM counterpart of an SSH host key that does not match: hostkey_rejected.
        return HostKeyError(
            f"{where}: TLS certificate verification failed ({text}); it was checked "
            f"against {trust or 'the system CA store'}: give the host's CA in ca_trust_path, "
            "or set cert_validation: false only if you accept an unverified host"
        )
    return UnreachableError(f"{where}: TLS handshake failed: {text}")


def is_timeout(exc: Exception) -> bool:
    """A requests timeout: at the deadline, the watchdog's doing rather than the host's."""
    return isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout))


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


def connection_reason(exc: BaseException) -> str:
    """Why a connection failed: refused, unresolved, or urllib3's innermost reason."""
    known = _refused_or_dns(exc)
    if known:
        return known
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "no answer to the TCP connection"
    text = str(exc)
    # urllib3 wraps the reason deep inside its message; keep its last, most specific part.
    inner = _innermost(exc)
    return short(inner) if inner is not None else short_text(text)


def _innermost(exc: BaseException) -> BaseException | None:
    seen: set[int] = set()
    cur: BaseException | None = exc
    last: BaseException | None = None
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        last = cur
        cur = cur.__cause__ or _first_arg_exc(cur)
    return last


def short(exc: BaseException) -> str:
    """The first line of an exception's text (at most 200 characters), else its type's name."""
    return short_text(str(exc)) or type(exc).__name__


def short_text(text: Any) -> str:
    """The first line of a text or bytes answer, at most 200 characters."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = str(text).strip()
    return text.splitlines()[0][:200] if text else ""
