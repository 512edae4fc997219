"""Ansible's connection variables (``ansible_host``, ``ansible_port`` …) as kremove settings.

Shared by the INI and YAML loaders. Variables not listed here, unknown ``ansible_*`` ones included,
stay free vars (a vaulted one is kept encrypted and never opened). Passwords are references
(ansible_secrets.py); a vaulted connection setting is decrypted when the file is read.
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import InventoryError
from orchestrator.inventory.ansible_secrets import (
    UNINSTALL_PASSWORD,
    is_uninstall_password,
    secret_ref,
)
from orchestrator.inventory.raw import Layer, Origin, Owner, Value
from orchestrator.inventory.settings import EVERY_PRODUCT, as_text, put, uninstall_password
from orchestrator.inventory.vault import VaultedVar, VaultError, keyring

SETTINGS = {
    "ansible_host": "address",
    "ansible_ssh_host": "address",
    "ansible_port": "port",
    "ansible_ssh_port": "port",
    "ansible_user": "user",
    "ansible_ssh_user": "user",
    "ansible_connection": "transport",
    "ansible_ssh_private_key_file": "key_file",
    "ansible_private_key_file": "key_file",
    "ansible_become": "become.enabled",
    "ansible_become_user": "become.user",
    "ansible_become_method": "become.method",
    "ansible_winrm_transport": "winrm.auth",
    "ansible_winrm_scheme": "winrm.scheme",
    "ansible_winrm_ca_trust_path": "winrm.ca_trust_path",
    "ansible_shell_type": "shell_type",
}
# Password variables → the setting whose reference they give.
PASSWORDS = {
    "ansible_password": "password",
    "ansible_ssh_pass": "password",
    "ansible_ssh_password": "password",
    "ansible_winrm_password": "password",
    "ansible_become_pass": "become.password",
    "ansible_become_password": "become.password",
    "ansible_sudo_pass": "become.password",
}
PLAINTEXT_SECRETS = frozenset(PASSWORDS)
# Free vars kremove reads itself: a vaulted one is decrypted like a connection setting.
READ_VARS = frozenset({"kaspersky_login"})
CERT_VALIDATION = "ansible_winrm_server_cert_validation"
TEMPLATED_SETTING = (
    "kremove evaluates no templates in connection settings; give the value itself "
    "(or encrypt it with ansible-vault encrypt_string)"
)


def ansible_layer(entries: dict[str, Value], owner: Owner) -> Layer:
    """Connection settings and free vars from one host's or group's Ansible variables."""
    layer = Layer()
    for key, entry in entries.items():
        if key in PASSWORDS:
            layer.settings[PASSWORDS[key]] = Value(secret_ref(entry, owner, key), entry.origin)
        elif is_uninstall_password(key):  # kremove_uninstall_password[_<product id, - as _>]
            product = key.removeprefix(UNINSTALL_PASSWORD).removeprefix("_").replace("_", "-")
            ref = secret_ref(entry, owner, key)
            uninstall_password(layer, product or EVERY_PRODUCT, ref, entry.origin, owner)
        elif key in SETTINGS:
            value = opened(entry, owner, key)
            if isinstance(value, str) and ("{{" in value or "{%" in value):
                raise owner.error(TEMPLATED_SETTING, entry.origin, key)
            put(layer, SETTINGS[key], value, entry.origin, owner, key)
        elif key == CERT_VALIDATION:
            value = _cert_validation(opened(entry, owner, key), entry.origin, owner)
            layer.settings["winrm.cert_validation"] = Value(value, entry.origin)
        elif key in READ_VARS:
            layer.vars[key] = Value(opened(entry, owner, key), entry.origin)
        elif isinstance(entry.value, VaultedVar):
            layer.vars[key] = Value(VaultedVar(entry.value.vault, key), entry.origin)
        else:
            layer.vars[key] = entry
    return layer


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


def _cert_validation(value: Any, origin: Origin, owner: Owner) -> bool:
    def fail(message: str) -> InventoryError:
        return owner.error(message, origin, CERT_VALIDATION)

    word = as_text(value, fail).lower()
    if word not in ("validate", "ignore"):
        raise fail("expected validate or ignore")
    return word == "validate"
