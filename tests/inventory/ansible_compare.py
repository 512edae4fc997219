"""kremove's hosts beside what the real ``ansible-inventory --list`` resolves on the same site
(a test-only subprocess: kremove never imports ansible-core): address, port, user, become and
the free vars of every host."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.inventory.model import Inventory

from .ansible_tools import BIN

TRUE = ("true", "yes", "on", "1", "y", "t")


def run_json(
    tool: str, *args: str, cwd: Path, home: Path | None = None, env: Mapping[str, str] | None = None
) -> Any:
    """``tool ARGS`` (ansible-inventory, ansible-config) run in ``cwd``: its JSON output. None of
    the developer's ANSIBLE_* settings reach it; HOME is ``home`` (default ``cwd``)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    full.update(
        {
            "HOME": str(home or cwd),
            "ANSIBLE_HOME": str(cwd / ".ansible"),
            "ANSIBLE_LOCAL_TEMP": str(cwd / ".ansible" / "tmp"),
            "ANSIBLE_NOCOLOR": "1",
            **(env or {}),
        }
    )
    done = subprocess.run(
        [str(BIN / tool), *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def ansible_list(cwd: Path, *args: str, config: Path | None = None) -> dict[str, Any]:
    """``ansible-inventory --list ARGS`` in ``cwd`` with ``config`` as its ansible.cfg (none by
    default, and no ~/.ansible.cfg: HOME is ``cwd``)."""
    env = {"ANSIBLE_CONFIG": str(config or cwd / "no-ansible.cfg")}
    return dict(run_json("ansible-inventory", "--list", *args, cwd=cwd, env=env))


def free(variables: Mapping[str, Any]) -> dict[str, Any]:
    """The vars that are no connection setting (no ansible_* or kremove_* name)."""
    return {k: v for k, v in variables.items() if not k.startswith(("ansible_", "kremove_"))}


def ansible_hosts(listing: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What Ansible would connect with, per host, from ``--list``'s ``_meta.hostvars``."""
    names = _all_hosts(listing)
    hostvars = listing.get("_meta", {}).get("hostvars", {})
    hosts = {}
    for name in names:
        hv = hostvars.get(name, {})
        become = hv.get("ansible_become", False)
        hosts[name] = {
            "address": str(hv.get("ansible_host", name)),
            "port": int(hv.get("ansible_port", 22)),
            "user": hv.get("ansible_user"),
            "become": become if isinstance(become, bool) else str(become).lower() in TRUE,
            "vars": free(hv),
        }
    return hosts


def kremove_hosts(inventory: Inventory) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "address": h.address,
            "port": h.port,
            "user": h.user,
            "become": h.become.enabled,
            "vars": free(h.vars),
        }
        for name, h in inventory.hosts.items()
    }


def _all_hosts(listing: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    todo = ["all"]
    while todo:
        group = listing.get(todo.pop(0), {})
        names += [h for h in group.get("hosts", []) if h not in names]
        todo += group.get("children", [])
    return names


def same_as_ansible(inventory: Inventory, cwd: Path, *args: str, **kwargs: Any) -> None:
    """Every host of ``inventory`` as ``ansible-inventory --list ARGS`` has it, and no other."""
    expected = ansible_hosts(ansible_list(cwd, *args, **kwargs))
    got = kremove_hosts(inventory)
    assert sorted(got) == sorted(expected)
    for name, host in expected.items():
        assert got[name] == host, name
