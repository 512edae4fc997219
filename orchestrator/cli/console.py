"""The terminal: the two rich consoles, the net that spells out control characters, status
styles, the host table every wave ends with, and the live progress display.

Every text from an inventory, a host or the ledger goes through safe() (or safe_lines()) before
it meets rich markup; the render hook below is the net under it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import (
    Console,
    ConsoleOptions,
    ConsoleRenderable,
    RenderHook,
    RenderResult,
)
from rich.markup import escape
from rich.segment import Segment
from rich.table import Table

from orchestrator import textsafe
from orchestrator.cli.context import current
from orchestrator.engine import status as st

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from orchestrator.engine.outcome import RunResult
    from orchestrator.engine.runner import Event, HostDone
    from orchestrator.playbook.model import Finding

# emoji=False: text is shown as written (rich would turn ":end:" in "[start:end:step]" into 🔚).
out = Console(highlight=False, soft_wrap=True, emoji=False)  # tables size themselves; no wrapping
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)  # an error is one line


def safe(value: object) -> str:
    """Text from an inventory, a host or the ledger, for one line of rich markup: every control
    and bidi character spelled out (textsafe), markup escaped."""
    return escape(textsafe.line(value))


def safe_lines(value: object) -> str:
    """As safe, for text of several lines (a command): its line feeds stay."""
    return escape(textsafe.lines(value))


class _Spelled:
    """A renderable whose text segments have their control characters spelled out."""

    def __init__(self, inner: ConsoleRenderable) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for segment in console.render(self.inner, options):
            text = segment.text if segment.control else textsafe.lines(segment.text)
            yield segment if text == segment.text else Segment(text, segment.style)


class _SpellControls(RenderHook):
    """The net under safe: whatever text reaches the terminal, a control character in it is
    shown, not obeyed. Rich's own control segments (the live display's cursor moves) pass."""

    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        return [_Spelled(r) for r in renderables]


out.push_render_hook(_SpellControls())
err.push_render_hook(_SpellControls())

_TERMINAL_STYLE: dict[str, str] = {status: s.terminal for status, s in st.STATUS_STYLES.items()}


def styled(status: str) -> str:
    """Rich markup for a status; a status the table does not know is shown as a failure."""
    return f"[{_TERMINAL_STYLE.get(status, 'red')}]{status}[/]"


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def finding_label(f: Mapping[str, Any]) -> str:
    """A finding as the ledger keeps it (a dict), by its one label (orchestrator/findings.py)."""
    from orchestrator.findings import Finding

    return Finding.from_dict(f).label()


def found_label(findings: Sequence[Finding]) -> str:
    """Installed products first; leftover directories only counted, unless they are all there is."""
    installed = [f.label() for f in findings if f.kind == "installed"]
    residue = [f.label() for f in findings if f.kind != "installed"]
    if not installed:
        return ", ".join(residue)
    more = f" (+{len(residue)} residue)" if residue else ""
    return ", ".join(installed) + more


def print_result(result: RunResult, ledger_path: Path, as_json: bool) -> None:
    """The end of a detect, run or rollback: one JSON document, or a host table and a summary."""
    if as_json:
        print_json(
            {
                "run": result.run_id,
                "kind": result.kind,
                "interrupted": result.interrupted,
                "counts": result.counts,
                "hosts": [o.to_dict() for o in result.outcomes],
            }
        )
        return
    summary = ", ".join(f"{n} {s}" for s, n in sorted(result.counts.items()))
    if current().quiet:
        out.print(f"run {result.run_id}: {len(result.outcomes)} hosts: {summary}")
        return
    table = Table()
    for column in ("host", "status", "found", "reason"):
        table.add_column(column, overflow="fold")
    for o in result.outcomes:
        found = found_label(o.findings)
        table.add_row(safe(o.host), styled(o.status), safe(found), safe(o.reason or ""))
    out.print(table)
    out.print(f"{plural(len(result.outcomes), 'host')}: {summary}")
    out.print(f"run [bold]{result.run_id}[/] recorded in {ledger_path}")


def warn_hosts(message: str) -> None:
    err.print(f"[yellow]kremove: {message}[/]")


def _announce(event: Event) -> None:
    """What is said on stderr whether or not a live display runs: Ctrl-C's effect above all."""
    from orchestrator.engine import runner

    if current().verbose and isinstance(event, runner.HostDone):
        o = event.outcome
        reason = f": {o.reason}" if o.reason else ""
        err.print(f"kremove: {safe(o.host)} {styled(o.status)}{safe(reason)}")
    if isinstance(event, runner.BatchStarted) and event.count > 1:
        left = "" if event.budget is None else f", failure budget left {event.budget_left}"
        err.print(f"kremove: batch {event.index} of {event.count}: {event.size} hosts{left}")
    if isinstance(event, runner.Stopping):
        err.print(
            f"[yellow]kremove: stopping: no new host starts; {event.in_flight} in flight "
            "finish within their deadlines (Ctrl-C again to abandon them)[/]"
        )


class _Live:
    """The live display's counters, updated from the engine's events."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress = progress
        self.task = task
        self.in_flight = 0
        self.found = 0
        self.failed = 0
        self.budget: int | None = None
        self.started = time.monotonic()

    def __call__(self, event: Event) -> None:
        from orchestrator.engine import runner

        if isinstance(event, runner.HostStarted):
            self.in_flight += 1
            self.progress.update(self.task, in_flight=self.in_flight)
        elif isinstance(event, runner.HostDone):
            self._done(event)
            _announce(event)
        elif isinstance(event, runner.BatchStarted):
            self.budget = event.budget
            shown = "" if event.budget_left is None else f"budget left {event.budget_left}  "
            self.progress.update(
                self.task, batch=f" batch {event.index}/{event.count}", budget=shown
            )
            _announce(event)
        else:
            _announce(event)

    def _done(self, event: HostDone) -> None:
        self.in_flight -= 1
        self.failed += event.outcome.status in st.FAILURES
        if self.budget is not None:
            left = max(self.budget - self.failed, 0)
            self.progress.update(self.task, budget=f"budget left {left}  ")
        self.found += event.outcome.status == st.FOUND
        done = self.progress.tasks[0].completed + 1
        rate = done / max(time.monotonic() - self.started, 1e-6)
        self.progress.update(
            self.task,
            advance=1,
            in_flight=self.in_flight,
            found=self.found,
            failed=self.failed,
            rate=f"{rate:.1f} hosts/s",
        )


@contextmanager
def progress(total: int, what: str) -> Iterator[Callable[[Event], None]]:
    """A live display on stderr when it is a terminal: done, in flight, not clean, rate, ETA.

    Interruptions are announced either way, because the operator must know what Ctrl-C did.
    """
    if not err.is_terminal or current().quiet:
        yield _announce
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn(f"[bold]{what}[/]" + "{task.fields[batch]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "done  {task.fields[in_flight]} in flight  {task.fields[found]} found  "
            "[red]{task.fields[failed]} failed[/]"
        ),
        TextColumn("{task.fields[budget]}{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as live:
        task = live.add_task(
            what, total=total, in_flight=0, found=0, failed=0, rate="", batch="", budget=""
        )
        yield _Live(live, task)
