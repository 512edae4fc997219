"""A host's WinRM settings: checked before any connection, described without secrets, and
turned into pywinrm's ``Protocol`` (authentication, message encryption, certificate trust)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast, get_args

from winrm.exceptions import WinRMError
from winrm.protocol import Protocol

from orchestrator.errors import InputError
from orchestrator.inventory.model import Host
from orchestrator.transports.winrm_errors import short

Auth = Literal["ntlm", "kerberos", "credssp", "basic", "certificate"]
Scheme = Literal["https", "http"]
AUTHS: tuple[Auth, ...] = get_args(Auth)
# The longest a single Receive may be held by the host. Short enough that a deadline is noticed
# soon after it passes, long enough not to poll a busy host.
OPERATION_TIMEOUT_S = 20
# How much longer than the operation timeout an HTTP answer may take before the host is
# considered gone: network and the host's own processing.
READ_MARGIN_S = 5


@dataclass(frozen=True)
class CheckedSettings:
    """The checked connection settings of one host (no secret in here)."""

    auth: Auth
    scheme: Scheme
    cert_validation: bool
    ca_trust_path: str | None
    endpoint: str  # the WS-Man URL
    cert_pem: str | None = None  # auth certificate: the client certificate and its key
    cert_key_pem: str | None = None


def settings(host: Host) -> CheckedSettings:
    """The host's WinRM settings, or InputError naming what is wrong and why."""
    w = host.winrm
    label = f"host {host.name!r}"
    if w.scheme not in get_args(Scheme):
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
        _check_certificate(host, label)
    if w.auth in ("kerberos", "credssp"):
        _require_extra(w.auth, label, _why_kerberos(host))
    if w.auth not in ("kerberos", "certificate") and host.password is None:
        raise InputError(
            f"{label}: winrm auth {w.auth} needs a password; give the host password_env, "
            "password_file or password_prompt"
        )
    if w.auth not in ("kerberos", "certificate") and not host.user:
        raise InputError(f"{label}: winrm auth {w.auth} needs a user")
    return CheckedSettings(
        auth=w.auth,
        scheme=cast(Scheme, w.scheme),
        cert_validation=w.cert_validation,
        ca_trust_path=w.ca_trust_path,
        endpoint=f"{w.scheme}://{_url_host(host.address)}:{host.port}/wsman",
        cert_pem=_full(w.cert_pem),
        cert_key_pem=_full(w.cert_key_pem),
    )


def _full(path: str | None) -> str | None:
    return None if path is None else str(Path(path).expanduser())


def _why_kerberos(host: Host) -> str:
    """Why Kerberos was chosen when the inventory did not name it (Ansible's UPN rule)."""
    if "winrm.auth" in host.given or not host.user or "@" not in host.user:
        return ""
    return (
        f" (chosen because the login {host.user!r} is a user principal name and no transport "
        "is set, as Ansible does; or set ansible_winrm_transport: ntlm)"
    )


def _require_extra(auth: str, label: str, why: str = "") -> None:
    import winrm.transport as wt

    present = wt.HAVE_KERBEROS if auth == "kerberos" else wt.HAVE_CREDSSP
    if not present:
        raise InputError(
            f"{label}: winrm auth {auth} needs an optional dependency that is not installed: "
            f"pip install 'kremove[{auth}]'{why}"
        )


def _check_certificate(host: Host, label: str) -> None:
    """Client certificate auth: over https, with a certificate and a key only the operator can
    read (as ssh demands of a private key)."""
    w = host.winrm
    if w.scheme != "https":
        raise InputError(f"{label}: winrm auth certificate is TLS client authentication; use https")
    for what, path in (("cert_pem", w.cert_pem), ("cert_key_pem", w.cert_key_pem)):
        if not path:
            raise InputError(
                f"{label}: winrm auth certificate needs {what} (ansible_winrm_{what}: PATH)"
            )
        full = Path(path).expanduser()
        try:
            mode = os.stat(full).st_mode & 0o777
        except OSError as exc:
            raise InputError(f"{label}: {what} {full}: {exc.strerror}") from None
        if what == "cert_key_pem" and mode & 0o077 and os.name != "nt":
            raise InputError(
                f"{label}: {what} {full}: other users can read or change it "
                f"(mode {mode:04o}); chmod 600 {full}"
            )


def insecure(host: Host) -> bool:
    """True when the inventory turned certificate validation off for this HTTPS host."""
    return host.winrm.scheme == "https" and not host.winrm.cert_validation


def describe(host: Host) -> str:
    """How kremove reaches the host, for plan output and the ledger (never a secret)."""
    w = host.winrm
    where = f"winrm {w.scheme}://{host.address}:{host.port} auth={w.auth}"
    if w.auth == "certificate":
        where += f" (client certificate {w.cert_pem})"
    if w.scheme == "http":
        return f"{where}, messages encrypted by {w.auth}"
    if not w.cert_validation:
        return f"{where}, CERTIFICATE VALIDATION OFF (inventory cert_validation: false)"
    return f"{where}, certificate validated against {w.ca_trust_path or 'the system CA store'}"


def make_protocol(s: CheckedSettings, host: Host, password: str | None) -> Protocol:
    """pywinrm's Protocol for these settings; InputError for what pywinrm itself refuses."""
    encryption = "always" if s.scheme == "http" else "auto"
    if s.auth == "basic":
        encryption = "never"
    try:
        return Protocol(
            s.endpoint,
            transport=s.auth,
            username=None if s.auth == "certificate" else host.user,
            password=None if s.auth == "certificate" else password,
            cert_pem=s.cert_pem,
            cert_key_pem=s.cert_key_pem,
            server_cert_validation="validate" if s.cert_validation else "ignore",
            # None: only the named CA file (or the system store), never REQUESTS_CA_BUNDLE.
            ca_trust_path=s.ca_trust_path if s.ca_trust_path else None,  # type: ignore[arg-type]
            read_timeout_sec=OPERATION_TIMEOUT_S + READ_MARGIN_S,
            operation_timeout_sec=OPERATION_TIMEOUT_S,
            message_encryption=encryption,  # type: ignore[arg-type]
            proxy=None,
        )
    except WinRMError as exc:
        raise InputError(f"host {host.name!r}: {short(exc)}") from None


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address and not address.startswith("[") else address
