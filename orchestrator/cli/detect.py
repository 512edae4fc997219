"""kremove detect: the read-only scan, recorded as a run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from orchestrator.cli.options import (
    AcceptKeysOpt,
    ForksOpt,
    HostTimeoutOpt,
    InventoryOpt,
    JsonOpt,
    LedgerOpt,
    LimitOpt,
    PlaybooksOpt,
    connection_options,
    log_options,
    vault_options,
)

if TYPE_CHECKING:
    from orchestrator.eventlog import LogTargets
    from orchestrator.inventory.overrides import ConnectionDefaults

app = typer.Typer(rich_markup_mode=None)


@app.command(epilog="Example: kremove detect -i inventories/localhost.yml --json")
@connection_options
@log_options
@vault_options
def detect(
    inventory: list[Path] = InventoryOpt,
    limit: str | None = LimitOpt,
    forks: int = ForksOpt,
    host_timeout: float = HostTimeoutOpt,
    playbooks: list[Path] = PlaybooksOpt,
    accept_new_hostkeys: bool = AcceptKeysOpt,
    ledger: Path | None = LedgerOpt,
    as_json: bool = JsonOpt,
    connection: ConnectionDefaults | None = None,
    logs: LogTargets | None = None,
) -> None:
    """Read-only scan: which Kaspersky products are on each host. Recorded as a run in the ledger.

    Exit 0 when every host is clean, 1 when a product was found or a host could not be scanned.
    SSH host keys are checked against ~/.ssh/known_hosts, the inventory's known_hosts and the keys
    kremove pinned (known_hosts beside the ledger).
    """
    from functools import partial

    from orchestrator.cli import session
    from orchestrator.cli.console import print_result
    from orchestrator.engine import runner
    from orchestrator.engine import status as st
    from orchestrator.engine.settings import RunSettings
    from orchestrator.playbook.loader import load_playbooks

    inv, hosts = session.load(inventory, limit, connection)
    content = load_playbooks(playbooks)
    ledger_path = session.ledger_path(ledger)
    secrets, connector = session.connect_setup(inv, hosts, ledger_path, accept_new_hostkeys)
    wiring = session.Wiring(inv, content, secrets, connector, ledger_path, logs=logs)
    settings = RunSettings(
        inventory=tuple(inventory),
        limit=limit,
        playbooks=tuple(playbooks),
        forks=forks,
        host_timeout=host_timeout,
    )
    meta = partial(session.run_meta, hosts, settings)
    with session.recording(wiring, hosts, settings, "detect", meta) as common:
        result = runner.detect(hosts, **common)
        path = common["ledger"].path
    print_result(result, path, as_json)
    raise typer.Exit(
        st.exit_code([o.status for o in result.outcomes], interrupted=result.interrupted)
    )
