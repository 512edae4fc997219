"""Protected Windows hosts whose uninstall passwords differ per host and product (issue 17).

What separate Kaspersky policies per administration group make of a fleet: ``start_protected``
starts two protected_kes hosts (and any other kinds asked for) where

- ``w001-protected_kes`` (group ``branch_a``) has one password for KES and the Network Agent;
- ``w002-protected_kes`` (group ``branch_b``) has another for KES and a third for its agent.

A wrong or missing password fails that product's msiexec with 1603, as on a real host. Each
password is in an environment variable (``ProtectedFleet.env``, with the fleet's own), ready to
be referenced by an inventory; every value and its Network Agent form are in ``fleet.secrets``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .fleet import UNINSTALL_PASSWORD_SHAPE, WinrmFleet, host_names, parse_kinds

HOST_A = "w001-protected_kes"
HOST_B = "w002-protected_kes"
# host -> product id -> the variable holding its password
VARIABLES = {
    HOST_A: {"kes-windows": "BRANCH_A_UNINSTALL_PW", "klnagent": "BRANCH_A_UNINSTALL_PW"},
    HOST_B: {"kes-windows": "BRANCH_B_KES_PW", "klnagent": "BRANCH_B_AGENT_PW"},
}
GROUPS = {HOST_A: "branch_a", HOST_B: "branch_b"}


@dataclass(frozen=True)
class ProtectedFleet:
    fleet: WinrmFleet
    env: dict[str, str]  # the fleet's variables and one per uninstall password

    def password(self, host: str, product: str) -> str:
        """The uninstall password ``host`` wants for catalog product ``product``."""
        return self.env[VARIABLES[host][product]]

    def write_inventory(self, path: Path, **kwargs: Any) -> Path:
        """The fleet's kremove YAML with the two groups and their references: branch_a one
        default (uninstall_password_env), branch_b one per product (uninstall_passwords)."""
        self.fleet.write_inventory(path, **kwargs)
        doc = yaml.safe_load(path.read_text())
        groups = doc.setdefault("groups", {})
        groups["branch_a"] = {
            "hosts": [HOST_A],
            "uninstall_password_env": VARIABLES[HOST_A]["kes-windows"],
        }
        groups["branch_b"] = {
            "hosts": [HOST_B],
            "uninstall_passwords": {
                product: {"env": variable} for product, variable in VARIABLES[HOST_B].items()
            },
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path


def start_protected(
    workdir: Path, others: Mapping[str, int] | None = None, **start: Any
) -> ProtectedFleet:
    """Start the two protected hosts first, then ``others`` (kinds and counts); ``start`` goes
    to ``WinrmFleet.start`` (``keep_running``, ``timeout``)."""
    kinds = {"protected_kes": 2, **(others or {})}
    assert host_names(parse_kinds(kinds))[:2] == [HOST_A, HOST_B]
    values = {
        variable: UNINSTALL_PASSWORD_SHAPE + secrets.token_hex(6)
        for own in VARIABLES.values()
        for variable in own.values()
    }
    own = {
        host: {"kes": values[products["kes-windows"]], "klnagent": values[products["klnagent"]]}
        for host, products in VARIABLES.items()
    }
    fleet = WinrmFleet.start(workdir, kinds, uninstall_passwords=own, **start)
    return ProtectedFleet(fleet, {**fleet.env, **values})
