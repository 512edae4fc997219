"""kremove inventory check: load and validate inventories, list the hosts they select."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from orchestrator.cli.options import (
    AskVaultPassOpt,
    InventoryOpt,
    JsonOpt,
    LimitOpt,
    VaultIdOpt,
    VaultPasswordFileOpt,
)

if TYPE_CHECKING:
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
def inventory_check(
    inventory: list[Path] = InventoryOpt,
    limit: str | None = LimitOpt,
    vault_password_file: list[Path] = VaultPasswordFileOpt,
    ask_vault_pass: bool = AskVaultPassOpt,
    vault_id: list[str] = VaultIdOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Load and validate inventories; list the selected hosts with their settings and vars.

    Exits 2 with one line naming the file, line and host or field when an inventory is wrong.
    """
    from orchestrator.cli.console import print_json
    from orchestrator.cli.session import load, open_vaults

    open_vaults(vault_password_file, ask_vault_pass, vault_id)
    inv, hosts = load(inventory, limit)
    if as_json:
        print_json(_document(inv, hosts))
    else:
        _print_table(inv, hosts)


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
