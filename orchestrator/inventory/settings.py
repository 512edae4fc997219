"""Connection settings shared by every format: canonical keys and the checks on their values.

Loaders translate their own spelling (``port``, ``ansible_port``, a CSV column) into the canonical
key and call ``put``; the value is checked and typed there, once, with the place it was written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.errors import InventoryError
from orchestrator.inventory.model import PLATFORMS, SecretRef, UninstallPassword
from orchestrator.inventory.raw import Layer, Origin, Owner, Value
from orchestrator.transports import kinds

Fail = Callable[[str], InventoryError]

WINRM_AUTHS = ("ntlm", "kerberos", "credssp", "basic", "certificate")
WINRM_SCHEMES = ("https", "http")
SHELL_TYPES = ("sh", "cmd", "powershell")
BECOME_METHODS = ("sudo", "su", "doas")
TRUE_WORDS = frozenset({"true", "yes", "on", "y", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "n", "0"})
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Uninstall passwords are settings keyed by product: "uninstall_password.<product id>", and
# "uninstall_password.*" for every product of the host that has no reference of its own.
UNINSTALL = "uninstall_password."
EVERY_PRODUCT = "*"
PRODUCT_ID = re.compile(r"[a-z0-9][a-z0-9-]*\Z")  # as the catalog requires (catalog_guards.py)

INLINE_SECRET = (
    "inline passwords are not accepted; reference it with password_env: VAR, "
    "password_file: PATH or password_prompt: true"
)


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def as_text(value: Any, fail: Fail) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise fail(f"expected text, got {type(value).__name__} {show(value)}")
    text = str(value).strip()
    if not text:
        raise fail("must not be empty")
    return text


def as_bool(value: Any, fail: Fail) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise fail(f"expected true or false, got {show(value)}")


def as_port(value: Any, fail: Fail) -> int:
    port: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        port = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        port = int(value.strip())
    if port is None or not 1 <= port <= 65535:
        raise fail(f"port must be a whole number from 1 to 65535, got {show(value)}")
    return port


Check = Callable[[Any, Fail], Any]


def _choice(what: str, choices: tuple[str, ...], aliases: Mapping[str, str] | None = None) -> Check:
    def check(value: Any, fail: Fail) -> str:
        word = as_text(value, fail).lower()
        word = (aliases or {}).get(word, word)
        if word not in choices:
            raise fail(f"unknown {what} {show(value)}; use one of: {', '.join(choices)}")
        return word

    return check


WINRM_AUTH_ALIASES = {"plaintext": "basic", "ssl": "basic"}
WINRM_EXTRAS = ("kerberos", "credssp")  # optional dependencies: kremove[kerberos], [credssp]


def winrm_auth(value: Any, fail: Fail) -> str:
    """One authentication, or Ansible's list of them to try (``ntlm,kerberos`` or a YAML list):
    the first kremove supports whose optional dependency is installed (else the first it
    supports, whose missing dependency the connection check names)."""
    items = value if isinstance(value, list) else str(value).split(",")
    words = [as_text(item, fail).lower() for item in items if str(item).strip()]
    known = [WINRM_AUTH_ALIASES.get(word, word) for word in words]
    known = [word for word in known if word in WINRM_AUTHS]
    if not known:
        raise fail(f"unknown winrm auth {show(value)}; use one of: {', '.join(WINRM_AUTHS)}")
    if len(known) > 1:
        usable = [word for word in known if word not in WINRM_EXTRAS or _installed(word)]
        return (usable or known)[0]
    return known[0]


def _installed(auth: str) -> bool:
    import winrm.transport

    return bool(
        winrm.transport.HAVE_KERBEROS if auth == "kerberos" else winrm.transport.HAVE_CREDSSP
    )


# Transport names and their other spellings (Ansible's paramiko, smart) come from the table of
# transports; plaintext and ssl are pywinrm's names for Basic authentication.
CHECKS: Mapping[str, Check] = {
    "address": as_text,
    "port": as_port,
    "transport": lambda value, fail: _choice("transport", kinds.names(), kinds.aliases())(
        value, fail
    ),
    "platform": _choice("platform", PLATFORMS),
    "user": as_text,
    "key_file": as_text,
    "shell_type": _choice("shell type", SHELL_TYPES),
    "jump": as_text,
    "known_hosts": as_text,
    "become.enabled": as_bool,
    "become.user": as_text,
    "become.method": _choice("become method", BECOME_METHODS),
    "winrm.auth": winrm_auth,
    "winrm.scheme": _choice("winrm scheme", WINRM_SCHEMES),
    "winrm.cert_validation": as_bool,
    "winrm.ca_trust_path": as_text,
    "winrm.cert_pem": as_text,
    "winrm.cert_key_pem": as_text,
}


def put(layer: Layer, key: str, value: Any, origin: Origin, owner: Owner, field: str) -> None:
    """Check ``value`` for the canonical setting ``key`` and store it; ``field`` is as written."""

    def fail(message: str) -> InventoryError:
        return owner.error(message, origin, field)

    layer.settings[key] = Value(CHECKS[key](value, fail), origin)


def secret_ref(kind: str, value: Any, fail: Fail) -> SecretRef | None:
    """A reference from ``*_env``, ``*_file`` or ``*_prompt``; ``*_prompt: false`` clears it."""
    if kind == "env":
        name = as_text(value, fail)
        if not ENV_NAME.match(name):
            raise fail(f"{show(name)} is not an environment variable name")
        return SecretRef(env=name)
    if kind == "file":
        return SecretRef(file=as_text(value, fail))
    return SecretRef(prompt=True) if as_bool(value, fail) else None


def uninstall_password(
    layer: Layer, product: str, ref: SecretRef | None, origin: Origin, owner: Owner
) -> None:
    """Store where ``product``'s uninstall password is found at this level (``*``: any product);
    ``None`` (``*_prompt: false``) says this level gives none."""
    entry = None if ref is None else UninstallPassword(ref, owner.label, str(origin))
    layer.settings[UNINSTALL + product] = Value(entry, origin)


def uninstall_passwords(settings: Mapping[str, Value]) -> dict[str, UninstallPassword]:
    """A host's merged uninstall password references, by product id (``*`` for the default).

    Each product id is its own key, so precedence is per key as for every setting: the host's
    reference beats its groups', whether or not another level names the product itself."""
    return {
        key.removeprefix(UNINSTALL): value.value
        for key, value in settings.items()
        if key.startswith(UNINSTALL) and value.value is not None
    }
