"""kremove report: a run, or the fleet, from the ledger as a table, CSV, JSON or HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from orchestrator.cli.options import LedgerOpt
from orchestrator.errors import InputError

app = typer.Typer(rich_markup_mode=None)

FORMATS = ("table", "csv", "json", "html")


@app.command(
    "report",
    epilog="Example: kremove report 20261125T2200 --format html -o wave.html; "
    "kremove report --fleet --format csv",
)
def report_command(
    run_id: str | None = typer.Argument(None, help="Run id or unique prefix (or --fleet)."),
    fleet: bool = typer.Option(
        False, "--fleet", help="Latest known status of every host across all runs."
    ),
    fmt: str = typer.Option(
        "table", "--format", "-f", help="table, csv, json or html (one self-contained file)."
    ),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write here, not stdout."),
    ledger: Path | None = LedgerOpt,
) -> None:
    """Report a run, or the fleet, from the ledger: statuses, products and versions, failures with
    reasons, batches, and the BOD 17-01 view (identified, planned, removed, remaining, failed,
    exceptions). CSV and JSON schemas: docs/reports.md.
    """
    import sys

    from orchestrator import report
    from orchestrator.cli.console import err
    from orchestrator.cli.session import open_existing
    from orchestrator.ledger.archive import write_private

    if fmt not in FORMATS:
        raise InputError(f"--format: {fmt!r} is not one of table, csv, json, html")
    if fleet == bool(run_id):
        raise InputError("give a run id, or --fleet for every host's latest status")
    with open_existing(ledger) as book:
        doc = (
            report.fleet_report(book.host_outcomes())
            if fleet
            else report.run_report(book.get_run(run_id or ""))
        )
    if fmt == "table":
        _print_table(doc)
        return
    text = _render(doc, fmt)
    if output is None:
        sys.stdout.write(text)
        return
    write_private(output, f"-o {output}", text)
    err.print(f"report written to {output}")


def _render(doc: dict[str, Any], fmt: str) -> str:
    import json

    from orchestrator import report

    if fmt == "json":
        return json.dumps(doc, indent=2, default=str) + "\n"
    if fmt == "csv":
        return report.to_csv(doc)
    from orchestrator.report import html as report_html

    return report_html.render(doc)


def _print_table(doc: dict[str, Any]) -> None:
    from rich.table import Table

    from orchestrator.cli.console import out, safe, styled

    title = f"run {doc['run']['id']}" if doc["scope"] == "run" else "fleet (latest per host)"
    table = Table(title=title, title_justify="left")
    for column in ("host", "status", "found", "remaining", "reason"):
        table.add_column(column, overflow="fold")
    for h in doc["hosts"]:
        table.add_row(
            safe(h["host"]),
            styled(h["status"]),
            safe(", ".join(f["label"] for f in h["found"])),
            safe(", ".join(f["label"] for f in h["remaining"])),
            safe(h["reason"] or ""),
        )
    out.print(table)
    d = doc["directive"]
    out.print(
        f"BOD 17-01: identified {d['identified']}, planned {d['planned']}, removed "
        f"{d['removed']}, remaining {d['remaining']}, failed {d['failed']}, "
        f"exceptions {d['exceptions']}"
    )
    for label, key in (("counted", "counting_method"), ("not seen", "not_seen")):
        if d.get(key):
            out.print(f"  {label}: {safe(d[key])}")
    for b in doc.get("came_back") or ():
        out.print(
            f"[yellow]came back: {safe(b['host'])} — removed by run {safe(b['removed_by'])}, "
            f"found again by run {safe(b['found_by'])}: {safe(', '.join(b['products']))}[/]"
        )
