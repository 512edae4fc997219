"""A host's WinRM settings: checked before any connection, described without secrets, and
turned into pywinrm's ``Protocol`` (authentication, message encryption, certificate trust)."""

from __future__ import annotations

from dataclasses import dataclass
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
        raise InputError(
            f"{label}: winrm auth 'certificate' needs a client certificate and key, which the "
            "inventory cannot name yet; use ntlm, kerberos, credssp or basic over https"
        )
    if w.auth in ("kerberos", "credssp"):
        _require_extra(w.auth, label)
    if w.auth != "kerberos" and host.password is None:
        raise InputError(
            f"{label}: winrm auth {w.auth} needs a password; give the host password_env, "
            "password_file or password_prompt"
        )
    if w.auth != "kerberos" and not host.user:
        raise InputError(f"{label}: winrm auth {w.auth} needs a user")
    return CheckedSettings(
        auth=cast(Auth, w.auth),
        scheme=cast(Scheme, w.scheme),
        cert_validation=w.cert_validation,
        ca_trust_path=w.ca_trust_path,
        endpoint=f"{w.scheme}://{_url_host(host.address)}:{host.port}/wsman",
    )


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


def make_protocol(s: CheckedSettings, host: Host, password: str | None) -> Protocol:
    """pywinrm's Protocol for these settings; InputError for what pywinrm itself refuses."""
    encryption = "always" if s.scheme == "http" else "auto"
    if s.auth == "basic":
        encryption = "never"
    try:
        return Protocol(
            s.endpoint,
            transport=s.auth,
            username=host.user,
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
        raise InputError(f"host {host.name!r}: {short(exc)}") from None


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address and not address.startswith("[") else address
