"""The HTML report's view model: plain values that templates/report.html.j2 draws, built from a
``kremove.report/1`` document. No markup here: the template writes it and escapes every value."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator.report import charts
from orchestrator.report.style import HATCHED, colour

Scope = Literal["run", "fleet"]


@dataclass(frozen=True, kw_only=True)
class When:
    """A time from the document: its date and clock in UTC, or only the raw value if unreadable."""

    raw: Any
    day: str | None = None
    clock: str | None = None


@dataclass(frozen=True, kw_only=True)
class Interval:
    """Start and finish in one cell; the finish's date only when it differs from the start's."""

    start: When
    end: When
    same_day: bool


@dataclass(frozen=True, kw_only=True)
class Chip:
    """A status written next to its colour swatch (hatched for failures)."""

    status: Any
    colour: str
    hatched: bool


@dataclass(frozen=True, kw_only=True)
class Item:
    """One finding in a host's list: its label, and what identifies it in the tooltip."""

    label: Any
    title: str


@dataclass(frozen=True, kw_only=True)
class Field:
    name: str
    value: Any  # a When for "time"
    how: Literal["text", "code", "time"] = "text"


@dataclass(frozen=True, kw_only=True)
class Header:
    title: str
    data: Mapping[str, Any]  # the header's data-* attributes
    fields: tuple[Field, ...]


def when(value: Any) -> When:
    t = charts.when(value)
    if t is None:
        return When(raw=value)
    return When(raw=value, day=t.strftime("%Y-%m-%d"), clock=t.strftime("%H:%M:%S"))


def interval(started: Any, finished: Any) -> Interval:
    a, b = charts.when(started), charts.when(finished)
    same = a is not None and b is not None and a.date() == b.date()
    return Interval(start=when(started), end=when(finished), same_day=same)


def chip(status: Any) -> Chip:
    return Chip(status=status, colour=colour(status), hatched=status in HATCHED)


def items(findings: Iterable[Mapping[str, Any]] | None) -> tuple[Item, ...]:
    listed = []
    for f in findings or ():
        what = [f"product {f.get('product')}"]
        if f.get("package"):
            what.append(f"package {f.get('package')}")
        if f.get("product_code"):
            what.append(f"ProductCode {f.get('product_code')}")
        listed.append(Item(label=f.get("label"), title="; ".join(what)))
    return tuple(listed)


def header(report: Mapping[str, Any]) -> Header:
    """The page's title and the header's fields: the run's record, or the fleet's runs."""
    hosts = str(len(report.get("hosts") or []))
    if report.get("scope") == "fleet":
        return _fleet_header(report.get("runs") or [], hosts)
    return _run_header(report.get("run") or {}, hosts)


def _fleet_header(runs: Sequence[Mapping[str, Any]], hosts: str) -> Header:
    first, last = (runs[0], runs[-1]) if runs else ({}, {})
    fields = (
        Field(name="Scope", value="fleet: the latest known state of every host across all runs"),
        Field(name="Runs", value=str(len(runs))),
        Field(name="First run", value=when(first.get("started")), how="time"),
        Field(name="Latest run", value=last.get("id") if runs else "—"),
        Field(name="Latest run started", value=when(last.get("started")), how="time"),
        Field(name="Hosts", value=hosts),
    )
    latest = f", latest {last['id']}" if last.get("id") else ""
    title = f"kremove fleet report — {len(runs)} runs{latest}"
    data = {"data-scope": "fleet", "data-runs": len(runs)}
    return Header(title=title, data=data, fields=fields)


def _run_header(run: Mapping[str, Any], hosts: str) -> Header:
    fields = (
        Field(name="Run", value=run.get("id"), how="code"),
        Field(name="Kind", value=run.get("kind")),
        Field(name="Status", value=run.get("status")),
        Field(name="Started", value=when(run.get("started")), how="time"),
        Field(name="Finished", value=when(run.get("finished")), how="time"),
        Field(name="Operator", value=run.get("operator")),
        Field(name="Command", value=run.get("command_line"), how="code"),
        Field(name="Inventory digest", value=run.get("inventory_digest"), how="code"),
        Field(name="Playbook version", value=run.get("playbook_version"), how="code"),
        Field(name="Hosts", value=hosts),
    )
    data = {
        "data-scope": "run",
        "data-run": run.get("id"),
        "data-kind": run.get("kind"),
        "data-status": run.get("status"),
    }
    return Header(title=f"kremove report — run {run.get('id', '?')}", data=data, fields=fields)
