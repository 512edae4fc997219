"""Ansible's secret variables as references, never as plaintext.

A password variable (``ansible_password``, ``ansible_become_password``, the uninstall passwords …)
is accepted as ``{{ lookup('env', 'VAR') }}``, ``{{ lookup('file', 'PATH') }}`` or an Ansible Vault
value (``!vault |``, decrypted only when the secret is used). kremove evaluates no other template:
any other ``{{ }}`` or ``{% %}`` in such a variable is an error, and so is plaintext, whose value
is never repeated.
"""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.inventory.model import SecretRef
from orchestrator.inventory.raw import Owner, Value
from orchestrator.inventory.settings import ENV_NAME, show
from orchestrator.inventory.vault import HEADER, VaultedVar, problem

UNINSTALL_PASSWORD = "kremove_uninstall_password"

# {{ lookup('env', 'VAR') }}: either quote, any spacing, Jinja's -}} trimming, the plugin's
# full name (ansible.builtin.env).
LOOKUP = re.compile(
    r"""\{\{-?\s*lookup\s*\(\s*
        (?P<q1>['"])(?:ansible\.builtin\.)?(?P<kind>env|file)(?P=q1)\s*,\s*
        (?P<q2>['"])(?P<arg>[^'"\\{}]+)(?P=q2)\s*
    \)\s*-?\}\}""",
    re.VERBOSE,
)
TEMPLATED = (
    "only {{ lookup('env', 'VAR') }}, {{ lookup('file', 'PATH') }} or a !vault value is "
    "accepted here; kremove evaluates no other template (lookups, filters, variables)"
)
PLAINTEXT = (
    "plaintext passwords are not accepted; remove it and give {{ lookup('env', 'VAR') }}, "
    "{{ lookup('file', 'PATH') }} or an ansible-vault encrypted value (!vault)"
)
INI_VAULT = (
    "Ansible INI cannot hold a vault value (Ansible does not decrypt it there either); "
    "move the variable into a YAML inventory as !vault |"
)


def is_uninstall_password(key: str) -> bool:
    """``kremove_uninstall_password`` and ``kremove_uninstall_password_<product id, - as _>``."""
    return key == UNINSTALL_PASSWORD or key.startswith(UNINSTALL_PASSWORD + "_")


def secret_ref(entry: Value, owner: Owner, key: str) -> SecretRef:
    """The reference one Ansible secret variable gives, or an InventoryError of one line naming
    the file, line and variable (never the value)."""
    value = entry.value
    if isinstance(value, VaultedVar):
        wrong = problem(value.vault)
        if wrong is not None:
            raise owner.error(
                f"!vault value is not usable Ansible Vault text ({wrong}); "
                "encrypt it again with ansible-vault encrypt_string",
                entry.origin,
                key,
            )
        return SecretRef(vault=value.vault)
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        match = LOOKUP.fullmatch(value.strip())
        if match is None:
            raise owner.error(TEMPLATED, entry.origin, key)
        if match["kind"] == "file":
            return SecretRef(file=lookup_path(match["arg"]))
        if not ENV_NAME.match(match["arg"]):
            raise owner.error(
                f"{show(match['arg'])} is not an environment variable name", entry.origin, key
            )
        return SecretRef(env=match["arg"])
    if isinstance(value, str) and value.lstrip().startswith(HEADER):
        raise owner.error(INI_VAULT, entry.origin, key)
    raise owner.error(PLAINTEXT, entry.origin, key)


def lookup_path(name: str) -> str:
    """Where Ansible's ``lookup('file', name)`` finds the file when no playbook is involved, as
    for ad-hoc ``ansible``: absolute or ``~`` paths as given; a relative one in ``files/`` under
    the current directory, else in the current directory (not the inventory's directory)."""
    if name.startswith("~") or Path(name).is_absolute():
        return str(Path(name).expanduser())
    here = Path.cwd()
    candidates = [here / name] if name.split("/")[0] == "files" else [here / "files" / name]
    candidates.append(here / name)
    return str(next((path for path in candidates if path.exists()), candidates[-1]))
