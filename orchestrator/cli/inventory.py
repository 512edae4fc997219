"""kremove inventory check: load and validate inventories, list the hosts they select."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from orchestrator.cli.options import InventoryOpt, JsonOpt, LimitOpt, vault_options

if TYPE_CHECKING:
    from orchestrator.inventory.ansible_cfg import AnsibleConfig
    from orchestrator.inventory.model import Host, Inventory

app = typer.Typer(
    rich_markup_mode=None,
    help="Validate inventories and show the hosts they select.",
    epilog="Example: kremove inventory check -i inventories/example.ini --limit 'linux:!db*'",
    no_args_is_help=True,
)


@app.command(
    "check",
    epilog="Example: kremove inventory check -i inventories/example.ini --limit 'linux,!db*'",
)
@vault_options
def inventory_check(
    inventory: list[Path] = InventoryOpt,
    limit: str | None = LimitOpt,
    as_json: bool = JsonOpt,
    verbose: bool = typer.Option(
        False,
        "--verbose",
        "-v",
        help="Also list every file read, in order (inventories, group_vars, host_vars), and "
        "the ansible.cfg settings used.",
    ),
) -> None:
    """Load and validate inventories; list the selected hosts with their settings and vars.

    Exits 2 with one line naming the file, line and host or field when an inventory is wrong.
    """
    from orchestrator.cli.console import print_json
    from orchestrator.cli.context import current
    from orchestrator.cli.session import ansible_config, load

    inv, hosts = load(inventory, limit)
    config = ansible_config()
    if as_json:
        print_json({**_document(inv, hosts), **_site_document(inv, config)})
    else:
        _print_table(inv, hosts)
        _print_site(inv, config, verbose or current().verbose)


def _document(inv: Inventory, hosts: Sequence[Host]) -> dict[str, Any]:
    return {
        "sources": list(inv.sources),
        "hosts": [{"name": h.name, **h.settings(), "groups": list(h.groups)} for h in hosts],
        "groups": {
            name: {
                "hosts": list(g.hosts),
                "children": list(g.children),
                "vars": dict(g.vars),
            }
            for name, g in inv.groups.items()
        },
        "counts": _host_counts(hosts),
    }


def _site_document(inv: Inventory, config: AnsibleConfig) -> dict[str, Any]:
    """Every file read or skipped, in order, and the ansible.cfg settings kremove took."""
    return {
        "site": [{"path": f.path, "role": f.role, "name": f.name} for f in inv.site],
        "ansible_cfg": {
            "file": None if config.file is None else str(config.file),
            "settings": {
                name: {"value": s.value, "where": s.where, "as": s.name}
                for name, s in config.settings.items()
            },
        },
    }


def _print_site(inv: Inventory, config: AnsibleConfig, verbose: bool) -> None:
    """One line saying what was read (each file with -v); skipped files always, since Ansible
    passes over some that look like inventories (.ini in a directory) or vars (a typo)."""
    from orchestrator.cli.console import out, safe

    counts: dict[str, int] = {}
    for f in inv.site:
        counts[f.role] = counts.get(f.role, 0) + 1
    shown = ", ".join(f"{n} {role}" for role, n in counts.items() if role != "skipped")
    cfg = f"; ansible.cfg: {config.file}" if config.file else ""
    out.print(f"read {safe(shown)} file(s){safe(cfg)}")
    for f in inv.site:
        if verbose and f.role != "skipped":
            out.print(f"  {f.role:<10} {safe(f.path)}" + (f"  ({safe(f.name)})" if f.name else ""))
        elif f.role == "skipped":
            out.print(f"  [yellow]skipped[/]    {safe(f.path)}: {safe(f.name)}")
    if verbose:
        for name, setting in config.settings.items():
            out.print(f"  setting    {name} = {safe(setting.value)}  ({safe(setting.label)})")


def _print_table(inv: Inventory, hosts: Sequence[Host]) -> None:
    from rich.table import Table

    from orchestrator.cli.console import out, safe

    table = Table(
        title=f"{len(hosts)} of {len(inv.hosts)} hosts from {safe(', '.join(inv.sources))}",
        title_justify="left",
    )
    for column in ("host", "address", "transport", "platform", "user", "become", "groups", "vars"):
        table.add_column(column, overflow="fold")
    for h in hosts:
        become = f"sudo→{h.become.user}" if h.become.enabled else ""
        address = h.address if h.transport == "local" else f"{h.address}:{h.port}"
        row = (
            h.name,
            address,
            h.transport,
            h.platform or "?",
            h.user or "",
            become,
            ",".join(h.groups),
            _compact_vars(h.vars),
        )
        table.add_row(*map(safe, row))
    out.print(table)
    counts = _host_counts(hosts)
    out.print(
        "  ".join(f"{k}: {v}" for k, v in counts["transport"].items())
        + "  |  "
        + "  ".join(f"{k}: {v}" for k, v in counts["platform"].items())
    )


def _host_counts(hosts: Sequence[Host]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {"transport": {}, "platform": {}}
    for h in hosts:
        counts["transport"][h.transport] = counts["transport"].get(h.transport, 0) + 1
        p = h.platform or "unknown"
        counts["platform"][p] = counts["platform"].get(p, 0) + 1
    return counts


def _compact_vars(variables: Mapping[str, Any]) -> str:
    return " ".join(
        f"{k}={json.dumps(v, default=str) if not isinstance(v, str) else v}"
        for k, v in sorted(dict(variables).items())
    )
