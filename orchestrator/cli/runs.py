"""kremove runs: list, show, export and prune the runs in the ledger."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from orchestrator.cli.options import JsonOpt, LedgerOpt, RunIdArg

if TYPE_CHECKING:
    from orchestrator.ledger import RunDetail

app = typer.Typer(
    rich_markup_mode=None,
    help="List and show runs recorded in the ledger.",
    epilog="Example: kremove runs list; kremove runs show 20261125T120000",
    no_args_is_help=True,
)


@app.command("list", epilog="Example: kremove runs list --last 5")
def runs_list(
    last: int = typer.Option(
        20, "--last", "-n", min=1, help="How many of the newest runs to list."
    ),
    ledger: Path | None = LedgerOpt,
    as_json: bool = JsonOpt,
) -> None:
    """List the newest runs in the ledger with their host counts."""
    from rich import box
    from rich.table import Table

    from orchestrator.cli.console import out, print_json, safe
    from orchestrator.cli.session import open_existing

    with open_existing(ledger) as book:
        runs = book.list_runs(last)
        path = book.path
    if as_json:
        print_json({"ledger": str(path), "runs": [r.to_dict() for r in runs]})
        return
    if not runs:
        out.print(f"no runs in {path} yet; start with: kremove detect -i inventories/localhost.yml")
        return
    # A run id begins with its start time (UTC), so it doubles as the "started" column.
    table = Table(title=f"runs in {path}", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("run (UTC start)", "kind", "status"):
        table.add_column(column, no_wrap=True)
    for column in ("operator", "hosts", "results"):
        table.add_column(column, overflow="fold")
    for r in runs:
        results = ", ".join(f"{n} {s}" for s, n in sorted(r.counts.items()))
        table.add_row(r.id, r.kind, r.status, safe(r.operator), str(r.hosts_selected), results)
    out.print(table)


@app.command(
    "show", epilog="Example: kremove runs show 20261125T1200 --json   (a unique prefix is enough)"
)
def runs_show(
    run_id: str = RunIdArg,
    ledger: Path | None = LedgerOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show one run: who ran it, each host's result, every step with its command and exit code."""
    from orchestrator.cli.console import out, print_json, safe
    from orchestrator.cli.session import open_existing

    with open_existing(ledger) as book:
        run = book.get_run(run_id)
    if as_json:
        print_json(run.to_dict())
        return
    out.print(f"[bold]run {run.id}[/]  {run.kind}  {run.status}")
    out.print(f"started {run.started}  finished {run.finished or '-'}  by {safe(run.operator)}")
    out.print(f"command {safe(run.command_line)}")
    out.print(f"inventory sha256 {run.inventory_digest}  playbooks {run.playbook_version}")
    _print_tables(run)
    for e in run.events:
        detail = "  ".join(f"{k}={v}" for k, v in e.detail.items())
        out.print(f"event {e.at}  {safe(e.host or '-')}  {e.kind}  {safe(detail)}")


def _print_tables(run: RunDetail) -> None:
    from rich.table import Table

    from orchestrator.cli.console import finding_label, out, safe, safe_lines, styled

    hosts = Table()
    for column in ("host", "status", "findings", "reason"):
        hosts.add_column(column, overflow="fold")
    for h in run.hosts:
        findings = ", ".join(finding_label(f) for f in h.findings)
        hosts.add_row(
            safe(h.host), styled(h.status or "pending"), safe(findings), safe(h.reason or "")
        )
    out.print(hosts)
    steps = Table(title="steps", title_justify="left")
    for column in ("host", "step", "command", "exit", "started"):
        steps.add_column(column, overflow="fold")
    for s in run.steps:
        code = "timeout" if s.timed_out else ("running" if s.finished is None else str(s.exit_code))
        steps.add_row(
            safe(s.host),
            safe(f"{s.step_id} ({s.kind})"),
            safe_lines(s.command),
            code,
            s.started[11:23],
        )
    out.print(steps)


@app.command("export", epilog="Example: kremove runs export 20261125T2200 > run.jsonl")
def runs_export(
    run_id: str = RunIdArg,
    ledger: Path | None = LedgerOpt,
) -> None:
    """Write a run as JSON Lines: the run, then each host, step and event, one object per line."""
    from orchestrator.cli.session import open_existing

    with open_existing(ledger) as book:
        run = book.get_run(run_id)
    doc = run.to_dict()
    lines = [
        {"type": "run", **{k: v for k, v in doc.items() if k not in ("hosts", "steps", "events")}}
    ]
    lines += [{"type": "host", "run": run.id, **h} for h in doc["hosts"]]
    lines += [{"type": "step", "run": run.id, **s} for s in doc["steps"]]
    lines += [{"type": "event", "run": run.id, **e} for e in doc["events"]]
    for line in lines:
        sys.stdout.write(json.dumps(line, default=str) + "\n")


@app.command(
    "prune",
    epilog="Example: kremove runs prune --before 2026-01-01 --archive ledger-2025.jsonl",
)
def runs_prune(
    before: str = typer.Option(
        ..., "--before", help="Prune runs started before this date (YYYY-MM-DD) or run id."
    ),
    archive: Path = typer.Option(
        ..., "--archive", help="JSON Lines file the runs are appended to first."
    ),
    ledger: Path | None = LedgerOpt,
) -> None:
    """Archive old finished runs to JSON Lines, then delete them from the ledger. The hash chain
    keeps an entry for each (with the archive's digest), so audit verify still passes."""
    from orchestrator.cli.console import out
    from orchestrator.cli.session import open_existing
    from orchestrator.ledger.archive import archive_and_prune, prunable

    with open_existing(ledger) as book:
        runs = prunable(book, before)
        if not runs:
            out.print(f"no finished run started before {before}")
            return
        archive_and_prune(book, runs, archive)
    out.print(f"{len(runs)} runs archived to {archive} and pruned; audit verify still passes")
