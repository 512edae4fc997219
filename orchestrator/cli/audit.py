"""kremove audit: verify the ledger's hash chain; every run that touched a host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from orchestrator.cli.options import JsonOpt, LedgerOpt
from orchestrator.errors import InputError

app = typer.Typer(
    rich_markup_mode=None,
    help="Check the ledger's integrity.",
    epilog="Example: kremove audit verify; kremove audit verify 20261125T1200 --json",
    no_args_is_help=True,
)


@app.command(
    "verify",
    epilog="Example: kremove audit verify --expect-head 3f2a...  (the head hash you wrote down)",
)
def audit_verify(
    run_id: str | None = typer.Argument(
        None, help="Check one run's records (the chain is global)."
    ),
    sign_key_env: str | None = typer.Option(
        None, "--sign-key-env", metavar="VAR", help="Environment variable holding the signing key."
    ),
    expect_head: str | None = typer.Option(
        None,
        "--expect-head",
        help="The head hash recorded earlier: proves the newest records were not cut off.",
    ),
    ledger: Path | None = LedgerOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Recompute the ledger's hash chain and check every run, host, step and event against it.

    Exit 0 and print the head hash when nothing was edited, deleted or reordered; exit 1 naming
    the first record that was; exit 2 when there is no ledger to check.
    """
    from orchestrator.cli.console import err, out, print_json, safe
    from orchestrator.cli.context import current
    from orchestrator.cli.session import existing_ledger, open_existing, sign_key
    from orchestrator.ledger import audit

    path = existing_ledger(ledger)  # a missing ledger is an input error, not a broken chain
    if run_id:
        with open_existing(ledger, sign_key_env) as book:
            run_id = book.get_run(run_id).id
    verdict = audit.verify(path, sign_key(sign_key_env or current().sign_key_env), run_id)
    problem = verdict.problem
    if problem is None and expect_head and not verdict.head.startswith(expect_head.lower()):
        problem = (
            f"the head hash is {verdict.head}, not {expect_head}: records were added or the "
            "newest were cut off since it was noted"
        )
    if as_json:
        print_json(
            {
                "ledger": str(path),
                "ok": problem is None,
                "entries": verdict.entries,
                "head": verdict.head,
                "signed": verdict.signed,
                "problem": problem,
            }
        )
    elif problem is None:
        signed = " (signed)" if verdict.signed else ""
        out.print(f"ledger {path}: {verdict.entries} records verified{signed}; head {verdict.head}")
    else:
        err.print(f"[red]kremove: audit: {safe(problem)}[/]")
    raise typer.Exit(0 if problem is None else 1)


@app.command("host", epilog="Example: kremove audit host web01.example.org --json")
def audit_host(
    name: str = typer.Argument(..., help="The host's inventory name."),
    ledger: Path | None = LedgerOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Every run that touched a host: its findings, each step with its rendered command (secrets
    masked), exit code and output excerpt, and the outcome."""
    from orchestrator.cli.console import print_json
    from orchestrator.cli.session import open_existing

    with open_existing(ledger) as book:
        history = []
        for o in book.host_outcomes(name):
            run = book.get_run(o["run"])
            steps = [s.to_dict() for s in run.steps if s.host == name]
            history.append({**o, "steps": steps})
    if not history:
        raise InputError(f"no run in the ledger has an outcome for host {name!r}")
    if as_json:
        print_json({"host": name, "runs": history})
    else:
        _print_history(history)


def _print_history(history: list[dict[str, Any]]) -> None:
    from orchestrator.cli.console import finding_label, out, safe, styled

    for h in history:
        out.print(
            f"[bold]{h['run']}[/] {h['kind']}  {styled(h['status'])}  {safe(h['reason'] or '')}"
        )
        for f in h["findings"]:
            if f.get("kind") == "installed":
                out.print(f"  found  {safe(finding_label(f))}")
        for s in h["steps"]:
            code = "timeout" if s["timed_out"] else str(s["exit_code"])
            out.print(f"  {safe(s['step_id'])}  exit {code}  {s['started']}")
            for line in str(s["command"]).splitlines()[:6]:
                out.print(f"      $ {safe(line)}")
            excerpt = (s["stderr"] or s["stdout"] or "").strip().splitlines()[-3:]
            for line in excerpt:
                out.print(f"      > {safe(line[:200])}")
