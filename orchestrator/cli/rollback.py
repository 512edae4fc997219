"""kremove rollback: the reverse plan of a run (a dry run), or with --yes its execution."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from orchestrator.cli.options import (
    AcceptKeysOpt,
    BatchesOpt,
    ForksOpt,
    HostTimeoutOpt,
    JsonOpt,
    LedgerOpt,
    LimitOpt,
    MaxFailOpt,
    OptionalInventoryOpt,
    PlaybooksOpt,
    TzOpt,
    WindowOpt,
    connection_options,
    log_options,
    vault_options,
)
from orchestrator.errors import InputError

if TYPE_CHECKING:
    from orchestrator.engine.rollback import HostRollback
    from orchestrator.engine.settings import RunSettings
    from orchestrator.eventlog import LogTargets
    from orchestrator.inventory.model import Host, Inventory
    from orchestrator.inventory.overrides import ConnectionDefaults
    from orchestrator.ledger import RunDetail
    from orchestrator.playbook.loader import PlaybookSet

app = typer.Typer(rich_markup_mode=None)

_RunArg = typer.Argument(..., help="The run whose removals to undo (id or prefix).")
_SourceOpt = typer.Option(
    None,
    "--source",
    help="Where the hosts find the exact packages: a directory or share on each host "
    "(package_version_*.deb, {ProductCode}.msi, receipt-version.pkg). Without it, Linux "
    "hosts install the pinned version from their own repositories.",
)
_ExecuteOpt = typer.Option(False, "--yes", "-y", help="Execute the plan (default: show it).")


@app.command(
    "rollback",
    epilog="Example: kremove rollback 20261125T2200 --source /mnt/kaspersky-packages   (a dry "
    "run: the reverse plan); add --yes to execute it as a recorded wave",
)
@connection_options
@log_options
@vault_options
def rollback_command(
    run_id: str = _RunArg,
    inventory: list[Path] | None = OptionalInventoryOpt,
    limit: str | None = LimitOpt,
    source: str | None = _SourceOpt,
    yes: bool = _ExecuteOpt,
    batches: str | None = BatchesOpt,
    max_fail: str | None = MaxFailOpt,
    window: str | None = WindowOpt,
    tz: str | None = TzOpt,
    forks: int = ForksOpt,
    host_timeout: float = HostTimeoutOpt,
    playbooks: list[Path] = PlaybooksOpt,
    accept_new_hostkeys: bool = AcceptKeysOpt,
    ledger: Path | None = LedgerOpt,
    as_json: bool = JsonOpt,
    connection: ConnectionDefaults | None = None,
    logs: LogTargets | None = None,
) -> None:
    """Build the reverse plan of a run from its recorded pre- and post-state: per host, the exact
    products, versions, packages or ProductCodes it removed, and the catalog's reinstall commands.

    Shown as a dry run unless --yes; executed as an ordinary recorded wave, each host then detected
    again to prove what came back ('restored').
    """
    from orchestrator.cli.session import open_existing
    from orchestrator.engine.settings import RunSettings, rollback_settings

    with open_existing(ledger) as book:
        source_run = book.get_run(run_id)
    if source_run.kind != "run":
        raise InputError(f"run {source_run.id} is a {source_run.kind} run; only removals roll back")
    given = RunSettings(
        inventory=tuple(inventory or ()),
        limit=limit,
        playbooks=tuple(playbooks),
        batches=batches,
        max_fail=max_fail,
        window=window,
        tz=tz,
        forks=forks,
        host_timeout=host_timeout,
    )
    settings = rollback_settings(given, source_run)
    inv, selected, content, plans = _reverse_plan(source_run, settings, source, connection)
    if not yes:
        _print_plans(source_run.id, plans, as_json)
        return
    _execute(
        source_run,
        settings,
        inv,
        selected,
        content,
        plans,
        source=source,
        accept_new_hostkeys=accept_new_hostkeys,
        ledger=ledger,
        as_json=as_json,
        logs=logs,
    )


def _reverse_plan(
    source_run: RunDetail,
    settings: RunSettings,
    source: str | None,
    connection: ConnectionDefaults | None = None,
) -> tuple[Inventory | None, list[Host], PlaybookSet, list[HostRollback]]:
    """Per host of the run (those still selected, when there is an inventory), what to reinstall."""
    from orchestrator.cli.session import load
    from orchestrator.engine.prepare import host_platform
    from orchestrator.engine.rollback import plan_rollback
    from orchestrator.playbook.loader import load_playbooks

    content = load_playbooks(list(settings.playbooks))
    inv, selected = (
        load(settings.inventory, settings.limit, connection) if settings.inventory else (None, [])
    )
    names = {h.name for h in selected} if settings.inventory else None
    records = [h for h in source_run.hosts if names is None or h.host in names]
    platforms = {h.name: host_platform(h) for h in selected}
    return inv, selected, content, plan_rollback(records, platforms, content, source)


def _execute(
    source_run: RunDetail,
    settings: RunSettings,
    inv: Inventory | None,
    selected: Sequence[Host],
    content: PlaybookSet,
    plans: Sequence[HostRollback],
    *,
    source: str | None,
    accept_new_hostkeys: bool,
    ledger: Path | None,
    as_json: bool,
    logs: LogTargets | None,
) -> None:
    from orchestrator.cli import session
    from orchestrator.cli.console import print_result
    from orchestrator.engine import runner
    from orchestrator.engine.waves import Window

    if inv is None:
        raise InputError(f"run {source_run.id} does not record its inventory; give it with -i")
    todo = [p for p in plans if p.steps]
    hosts = [h for h in selected if h.name in {p.host for p in todo}]
    if not hosts:
        raise InputError(f"run {source_run.id} removed nothing on the selected hosts")
    wave = runner.WaveSettings(
        batches=settings.batches,
        max_fail=settings.max_fail,
        window=None if settings.window is None else Window.parse(settings.window, settings.tz),
    )
    ledger_path = session.ledger_path(ledger)
    secrets, connector = session.connect_setup(inv, hosts, ledger_path, accept_new_hostkeys)
    meta = session.run_meta(hosts, settings)
    meta["rollback_of"] = source_run.id
    meta["source"] = source
    wiring = session.Wiring(inv, content, secrets, connector, ledger_path, logs=logs)
    restore = {p.host: p.restore() for p in todo}
    with session.recording(wiring, hosts, settings, "rollback", lambda: meta) as common:
        result = runner.rollback(hosts, **common, wave=wave, restore=restore)
        path = common["ledger"].path
    print_result(result, path, as_json)
    raise typer.Exit(session.exit_code(result))


def _print_plans(run_id: str, plans: Sequence[HostRollback], as_json: bool) -> None:
    from orchestrator.cli.console import finding_label, out, plural, print_json, safe, safe_lines

    if as_json:
        print_json({"rollback_of": run_id, "hosts": [p.to_dict() for p in plans]})
        return
    for p in plans:
        if not p.removed:
            continue
        out.print(f"[bold]{safe(p.host)}[/]  was {p.status}")
        for f in p.removed:
            out.print(f"  reinstall  {safe(finding_label(f))}")
        for step in p.steps:
            out.print(f"    $ {safe_lines(step.command.shown)}")
        if p.note:
            out.print(f"  [yellow]note:[/] {safe(p.note)}")
    todo = sum(1 for p in plans if p.steps)
    out.print(
        f"{plural(todo, 'host')} to restore from run {run_id}; nothing was changed. "
        "Execute with --yes."
    )
