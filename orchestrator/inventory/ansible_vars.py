"""Ansible's connection variables (``ansible_host``, ``ansible_port`` …) as kremove settings.

Shared by the INI and YAML loaders. Variables not listed here, unknown ``ansible_*`` ones included,
stay free vars. Plaintext passwords are refused without repeating them.
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import InventoryError
from orchestrator.inventory.raw import Layer, Origin, Owner, Value
from orchestrator.inventory.settings import as_text, put

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
PLAINTEXT_SECRETS = frozenset(
    {
        "ansible_password",
        "ansible_ssh_pass",
        "ansible_ssh_password",
        "ansible_become_pass",
        "ansible_become_password",
        "ansible_sudo_pass",
        "ansible_winrm_password",
    }
)
REFUSED = (
    "plaintext passwords are not accepted; remove it and reference the password with "
    "password_env: VAR in a kremove inventory (or enter it when prompted with --ask-pass)"
)
CERT_VALIDATION = "ansible_winrm_server_cert_validation"


def ansible_layer(entries: dict[str, Value], owner: Owner) -> Layer:
    """Connection settings and free vars from one host's or group's Ansible variables."""
    layer = Layer()
    for key, entry in entries.items():
        if key in PLAINTEXT_SECRETS:
            raise owner.error(REFUSED, entry.origin, key)
        if key in SETTINGS:
            put(layer, SETTINGS[key], entry.value, entry.origin, owner, key)
        elif key == CERT_VALIDATION:
            layer.settings["winrm.cert_validation"] = Value(
                _cert_validation(entry.value, entry.origin, owner), entry.origin
            )
        else:
            layer.vars[key] = entry
    return layer


def _cert_validation(value: Any, origin: Origin, owner: Owner) -> bool:
    def fail(message: str) -> InventoryError:
        return owner.error(message, origin, CERT_VALIDATION)

    word = as_text(value, fail).lower()
    if word not in ("validate", "ignore"):
        raise fail("expected validate or ignore")
    return word == "validate"
