"""Ansible's connection variables (``ansible_host``, ``ansible_port`` …) as kremove settings.

Shared by the INI and YAML loaders. Variables not listed here, unknown ``ansible_*`` ones included,
stay free vars (a vaulted one is kept encrypted and never opened). Passwords are references
(ansible_secrets.py); a vaulted connection setting is decrypted when the file is read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.errors import InventoryError
from orchestrator.inventory.ansible_secrets import (
    LOOKUP,
    UNINSTALL_PASSWORD,
    is_uninstall_password,
    secret_ref,
)
from orchestrator.inventory.model import WSMAN, UninstallPassword
from orchestrator.inventory.raw import Layer, Origin, Owner, Value
from orchestrator.inventory.settings import (
    CHECKS,
    EVERY_PRODUCT,
    UNINSTALL,
    as_text,
    put,
    uninstall_password,
)
from orchestrator.inventory.ssh_args import VARIABLES as SSH_ARGS
from orchestrator.inventory.ssh_args import SshArgs, SshArgsError, parse
from orchestrator.inventory.templating import HostVars, Templated, is_template
from orchestrator.inventory.vault import VaultedVar, VaultError, keyring

SETTINGS = {
    "ansible_host": "address",
    "ansible_ssh_host": "address",
    "ansible_port": "port",
    "ansible_ssh_port": "port",
    "ansible_winrm_port": "port",
    "ansible_user": "user",
    "ansible_ssh_user": "user",
    "ansible_winrm_user": "user",
    "ansible_connection": "transport",
    "ansible_ssh_private_key_file": "key_file",
    "ansible_private_key_file": "key_file",
    "ansible_become": "become.enabled",
    "ansible_become_user": "become.user",
    "ansible_become_method": "become.method",
    "ansible_winrm_transport": "winrm.auth",
    "ansible_winrm_scheme": "winrm.scheme",
    "ansible_winrm_ca_trust_path": "winrm.ca_trust_path",
    "ansible_winrm_cert_pem": "winrm.cert_pem",
    "ansible_winrm_cert_key_pem": "winrm.cert_key_pem",
    "ansible_shell_type": "shell_type",
    # ansible_connection=psrp: the same WS-Man endpoint and settings as WinRM
    "ansible_psrp_host": "address",
    "ansible_psrp_port": "port",
    "ansible_psrp_user": "user",
    "ansible_psrp_protocol": "winrm.scheme",
    "ansible_psrp_auth": "winrm.auth",
    "ansible_psrp_cert_trust_path": "winrm.ca_trust_path",
    "ansible_psrp_ca_cert": "winrm.ca_trust_path",
    "ansible_psrp_certificate_pem": "winrm.cert_pem",
    "ansible_psrp_certificate_key_pem": "winrm.cert_key_pem",
}
# Password variables → the setting whose reference they give.
PASSWORDS = {
    "ansible_password": "password",
    "ansible_ssh_pass": "password",
    "ansible_ssh_password": "password",
    "ansible_winrm_password": "password",
    "ansible_winrm_pass": "password",
    "ansible_become_pass": "become.password",
    "ansible_become_password": "become.password",
    "ansible_sudo_pass": "become.password",
}
PLAINTEXT_SECRETS = frozenset(PASSWORDS)
# Free vars kremove reads itself: a vaulted one is decrypted like a connection setting.
READ_VARS = frozenset({"kaspersky_login"})
CERT_VALIDATION = "ansible_winrm_server_cert_validation"
CERT_VALIDATIONS = frozenset({CERT_VALIDATION, "ansible_psrp_cert_validation"})
# psrp's default auth, Kerberos where it can be used, else NTLM: kremove's own rule for an
# unset auth (a UPN login means Kerberos), so it is left unset.
NEGOTIATE = ("ansible_psrp_auth", "negotiate")
SECRET_SETTINGS = frozenset({"password", "become.password", "key_passphrase"})
WINRM_HTTP_PORT = 5985


def ansible_layer(entries: dict[str, Value], owner: Owner) -> Layer:
    """Connection settings and free vars from one host's or group's Ansible variables."""
    layer = Layer()
    for key, entry in entries.items():
        if _variable_reference(entry):  # {{ var }}: evaluated with the host's vars (resolve.py)
            setting = _setting_of(key)
            if setting is not None:
                templated = Templated(entry.value.strip(), key, owner.label)
                layer.settings[setting] = Value(templated, entry.origin)
                continue
        if key in PASSWORDS:
            layer.settings[PASSWORDS[key]] = Value(secret_ref(entry, owner, key), entry.origin)
        elif is_uninstall_password(key):
            ref = secret_ref(entry, owner, key)
            uninstall_password(layer, _product(key), ref, entry.origin, owner)
        elif (key, str(entry.value).strip().lower()) == NEGOTIATE:
            continue
        elif key in SETTINGS:
            value = opened(entry, owner, key)
            if is_template(value):  # a vaulted template: evaluated like a written one
                templated = Templated(value.strip(), key, owner.label)
                layer.settings[SETTINGS[key]] = Value(templated, entry.origin)
            else:
                put(layer, SETTINGS[key], value, entry.origin, owner, key)
        elif key in CERT_VALIDATIONS:
            value = _cert_validation(opened(entry, owner, key), entry.origin, owner, key)
            layer.settings["winrm.cert_validation"] = Value(value, entry.origin)
        elif key in READ_VARS:
            layer.vars[key] = Value(opened(entry, owner, key), entry.origin)
        elif isinstance(entry.value, VaultedVar):
            layer.vars[key] = Value(VaultedVar(entry.value.vault, key), entry.origin)
        else:
            layer.vars[key] = entry
    return layer


def _variable_reference(entry: Value) -> bool:
    """A template to evaluate later: any ``{{ }}``/``{% %}`` but the plain env/file lookup of a
    password, which ansible_secrets.py reads as it is written."""
    value = entry.value
    return is_template(value) and LOOKUP.fullmatch(value.strip()) is None


def _product(key: str) -> str:
    """kremove_uninstall_password[_<product id, - as _>] -> the product id, or ``*``."""
    product = key.removeprefix(UNINSTALL_PASSWORD).removeprefix("_").replace("_", "-")
    return product or EVERY_PRODUCT


def _setting_of(key: str) -> str | None:
    """The canonical setting an Ansible variable gives, None for a free var."""
    if key in PASSWORDS:
        return PASSWORDS[key]
    if is_uninstall_password(key):
        return UNINSTALL + _product(key)
    if key in CERT_VALIDATIONS:
        return "winrm.cert_validation"
    return SETTINGS.get(key)


def opened(entry: Value, owner: Owner, key: str) -> Any:
    """The value of a setting kremove uses; a vaulted one is decrypted now (as Ansible allows),
    which needs a vault password. Such a value is a setting, shown like any other."""
    if not isinstance(entry.value, VaultedVar):
        return entry.value
    try:
        plain = keyring().open(entry.value.vault)
    except VaultError as exc:
        raise owner.error(f"vault value: {exc}", entry.origin, key) from None
    try:
        return plain.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise owner.error("decrypted, the vault value is not UTF-8", entry.origin, key) from None


def _cert_validation(value: Any, origin: Origin, owner: Owner, key: str) -> bool:
    def fail(message: str) -> InventoryError:
        return owner.error(message, origin, key)

    word = as_text(value, fail).lower()
    if word not in ("validate", "ignore"):
        raise fail("expected validate or ignore")
    return word == "validate"


def connection(
    host: str, groups: Sequence[str], settings: dict[str, Value], free: dict[str, Value]
) -> tuple[dict[str, Value], dict[str, Value], dict[str, Value], list[str]]:
    """What a host's merged variables mean to Ansible: templates evaluated with the host's vars,
    the jump its ssh arguments name, and the WinRM scheme and auth Ansible's rules imply where
    the inventory wrote none. Returns the settings, the free vars, the implied settings (not
    written, so not ``given``) and warnings for what is not followed."""
    owner = Owner("host", host)
    magic = {
        "inventory_hostname": host,
        "inventory_hostname_short": host.split(".", 1)[0],
        "group_names": sorted(name for name in groups if name != "all") or ["ungrouped"],
    }
    hostvars = HostVars(host, _by_ansible_name(settings, free), magic)
    settings = {key: _evaluated(hostvars, key, value, owner) for key, value in settings.items()}
    for key in READ_VARS & free.keys():
        free[key] = Value(hostvars.text(free[key], key), free[key].origin)
    implied: dict[str, Value] = {}
    warnings: list[str] = []
    transport = settings["transport"].value if "transport" in settings else "ssh"
    if transport == "ssh":
        jump = _ssh_args(hostvars, settings, free, owner, warnings)
        if jump is not None:
            implied["proxy_jump"] = jump
    elif transport in WSMAN:
        implied.update(_winrm_implied(settings))
    return settings, free, implied, warnings


def _by_ansible_name(settings: Mapping[str, Value], free: Mapping[str, Value]) -> dict[str, Value]:
    """The host's variables as a template names them: free vars and settings by every Ansible
    name that gives them (a setting written in kremove YAML too)."""
    names: dict[str, Value] = {}
    for table in (SETTINGS, PASSWORDS):
        for name, key in table.items():
            if key in settings:
                names[name] = settings[key]
    return {**names, **free}


def _evaluated(hostvars: HostVars, key: str, value: Value, owner: Owner) -> Value:
    templated = value.value
    if not isinstance(templated, Templated):
        return value
    if key in SECRET_SETTINGS or key.startswith(UNINSTALL):
        ref = hostvars.setting(value, secret=True)
        if key.startswith(UNINSTALL):
            return Value(UninstallPassword(ref, templated.owner, str(value.origin)), value.origin)
        return Value(ref, value.origin)
    plain = hostvars.setting(value, secret=False)
    if templated.var in CERT_VALIDATIONS:
        return Value(_cert_validation(plain, value.origin, owner, templated.var), value.origin)

    def fail(message: str) -> InventoryError:
        return owner.error(message, value.origin, templated.var)

    return Value(CHECKS[key](plain, fail), value.origin)


def _ssh_args(
    hostvars: HostVars,
    settings: Mapping[str, Value],
    free: Mapping[str, Value],
    owner: Owner,
    warnings: list[str],
) -> Value | None:
    """The ProxyJump that ansible_ssh_common_args / _extra_args give, as a setting's Value
    (the first one given wins, as in ssh)."""
    user = settings["user"].value if "user" in settings else None
    found, origin = SshArgs(), None
    for name in (name for name in SSH_ARGS if name in free):
        entry = free[name]
        text = hostvars.text(entry, name)
        if not isinstance(text, str):
            raise owner.error(f"expected text, got {type(text).__name__}", entry.origin, name)
        decided = found.decided
        try:
            parse(text, f"{entry.origin}: {name}", user, found)
        except SshArgsError as exc:
            raise owner.error(str(exc), entry.origin, name) from None
        if found.decided and not decided:
            origin = entry.origin
    warnings.extend(found.warnings)
    if found.proxy_jump is None or origin is None or "jump" in settings:
        return None
    return Value(found.proxy_jump, origin)


def _winrm_implied(settings: Mapping[str, Value]) -> dict[str, Value]:
    """Ansible's rules for what the inventory left out: with no scheme, port 5985 means http;
    with no transport, a UPN login (``svc@CORP.EXAMPLE.COM``) means Kerberos."""
    implied: dict[str, Value] = {}
    port = settings.get("port")
    if "winrm.scheme" not in settings and port is not None and port.value == WINRM_HTTP_PORT:
        implied["winrm.scheme"] = Value("http", port.origin)
    user = settings.get("user")
    if "winrm.auth" not in settings and user is not None and "@" in str(user.value):
        implied["winrm.auth"] = Value("kerberos", user.origin)
    return implied
