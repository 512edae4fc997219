"""The HTML report's sections, each a view of one part of the document for the template to draw.

Section ids and data-* hooks are what docs/reports.md lists and tests/report reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.engine import status as st
from orchestrator.report import charts
from orchestrator.report.charts import Bar, Chart, GroupProgress, Lane
from orchestrator.report.style import COLOURS, HATCHED, MEANINGS, ORDER, TRACK_COLOUR
from orchestrator.report.view import chip, interval, items, when

DIRECTIVE_TERMS = (
    (
        "identified",
        "Hosts on which a Kaspersky-branded product was found (BOD 17-01 action 1: identify "
        "within 30 days).",
    ),
    (
        "planned",
        "Hosts with a removal plan: planned by a dry run (plan runs and the fleet view), or "
        "identified and worked on (detect and removal runs) (action 2: plan within 60 days).",
    ),
    (
        "removed",
        "Hosts whose products were removed and verified gone, including those awaiting a reboot "
        "(action 3: begin removal at 90 days).",
    ),
    ("remaining", "Hosts on which a product is still installed, as far as the ledger knows."),
    ("failed", "Hosts where a removal step failed or verification still found the product."),
    (
        "exceptions",
        "Hosts not worked on — unreachable, credentials refused, host key rejected, timed out "
        "or skipped — each needs follow-up.",
    ),
)


@dataclass(frozen=True, kw_only=True)
class Row:
    """A table row: its data-* hooks, and the cells the template's section lays out."""

    data: Mapping[str, Any]
    cells: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class Section:
    id: str  # the template draws each section's body by its id
    heading: str
    data: Mapping[str, Any]  # the section's data-* attributes
    rows: tuple[Row, ...] = ()
    chart: Chart | None = None
    extra: Mapping[str, Any] | None = None  # what else the section's body shows


def _section(ident: str, heading: str, **data: Any) -> dict[str, Any]:
    return {"id": ident, "heading": heading, "data": {f"data-{k}": v for k, v in data.items()}}


def status(report: Mapping[str, Any]) -> Section:
    counts = {str(k): _int(v) for k, v in (report.get("counts") or {}).items()}
    order = [s for s in ORDER if s in counts]
    order += sorted(s for s in counts if s not in order)
    total = sum(counts.values())
    bars = [
        Bar(
            label=s,
            value=counts[s],
            colour=chip(s).colour,
            hatched=s in HATCHED,
            data={"data-status": s, "data-count": counts[s]},
            note=f"{counts[s]} ({charts.percent(counts[s], total)})",
        )
        for s in order
    ]
    rows = tuple(
        Row(
            data={"data-status": s, "data-count": counts[s]},
            cells={
                "chip": chip(s),
                "count": counts[s],
                "share": charts.percent(counts[s], total),
                "meaning": MEANINGS.get(s, ""),
            },
        )
        for s in order
    )
    chart = charts.bar_chart("status-svg", "Hosts by status", bars) if bars else None
    head = _section("status-chart", "Hosts by status", total=total)
    return Section(**head, rows=rows, chart=chart, extra={"total": total})


def groups(report: Mapping[str, Any]) -> Section:
    named: Mapping[str, Any] = report.get("groups") or {}
    progress = [
        GroupProgress(
            name=name,
            hosts=_int(g.get("hosts")),
            done=_int(g.get("done")),
            failed=_int(g.get("failed")),
        )
        for name, g in named.items()
    ]
    chart = charts.groups_chart(progress) if progress else None
    legend = {"done": COLOURS[st.CLEAN], "failed": COLOURS[st.FAILED], "track": TRACK_COLOUR}
    return Section(
        **_section("groups", "Progress by group", count=len(progress)), chart=chart, extra=legend
    )


def products(report: Mapping[str, Any]) -> Section:
    found: Sequence[Mapping[str, Any]] = report.get("products") or []
    rows, bars = [], []
    for p in found:
        data = {
            "data-product": p.get("product"),
            "data-version": p.get("version") or "",
            "data-count": _int(p.get("hosts")),
        }
        cells = {k: p.get(k) for k in ("product", "name", "version")}
        rows.append(Row(data=data, cells={**cells, "hosts": _int(p.get("hosts"))}))
        bars.append(
            Bar(
                # the short catalog id: the full name is in the tooltip and the table
                label=f"{p.get('product')} {p.get('version') or ''}".strip(),
                value=_int(p.get("hosts")),
                colour=COLOURS[st.FOUND],
                hatched=False,
                data=data,
                note=charts.hosts(_int(p.get("hosts"))),
                title=f"{p.get('name')} {p.get('version') or ''}",
            )
        )
    chart = (
        charts.bar_chart("products-svg", "Hosts per product and version", bars) if bars else None
    )
    head = _section("products", "Products found", count=len(rows))
    return Section(**head, rows=tuple(rows), chart=chart)


def failures(report: Mapping[str, Any]) -> Section:
    listed: Sequence[Mapping[str, Any]] = report.get("failures") or []
    rows = tuple(
        Row(
            data={"data-host": f.get("host"), "data-status": f.get("status")},
            cells={"host": f.get("host"), "chip": chip(f.get("status")), "reason": f.get("reason")},
        )
        for f in listed
    )
    return Section(**_section("failures", "Failures", count=len(rows)), rows=rows)


def timeline(report: Mapping[str, Any]) -> Section:
    if report.get("scope") == "fleet":
        runs: Sequence[Mapping[str, Any]] = report.get("runs") or []
        lanes = [
            Lane(
                label=str(r.get("id")),
                start=r.get("started"),
                end=None,
                data={"data-run": r.get("id"), "data-started": r.get("started")},
                note=_clock(r.get("started")),
            )
            for r in runs
        ]
        chart = charts.timeline_chart(lanes, [], None, None) if lanes else None
        head = _section("timeline", "Runs", count=len(lanes))
        return Section(**head, chart=chart, extra={"fleet": True, "batches": False})
    run: Mapping[str, Any] = report.get("run") or {}
    batches: Sequence[Mapping[str, Any]] = report.get("batches") or []
    starts = [b.get("started") for b in batches]
    lanes = [
        Lane(
            label=f"Batch {b.get('batch')}",
            start=b.get("started"),
            # A batch lasts until the next one starts, the last one until the run finished.
            end=starts[i + 1] if i + 1 < len(batches) else run.get("finished"),
            data={
                "data-batch": b.get("batch"),
                "data-started": b.get("started"),
                "data-hosts": _size(b.get("hosts")),
            },
            note=f"{charts.hosts(_size(b.get('hosts')))} · {_clock(b.get('started'))}",
        )
        for i, b in enumerate(batches)
    ]
    events = [
        e for e in report.get("events") or () if e.get("host") is None and charts.when(e.get("at"))
    ]
    chart = charts.timeline_chart(lanes, events, run.get("started"), run.get("finished"))
    head = _section("timeline", "Batches", count=len(lanes))
    return Section(**head, chart=chart, extra={"fleet": False, "batches": bool(batches)})


def events(report: Mapping[str, Any]) -> Section:
    listed: Sequence[Mapping[str, Any]] = report.get("events") or []
    rows = tuple(
        Row(
            data={"data-event": e.get("kind")},
            cells={
                "at": when(e.get("at")),
                "kind": e.get("kind"),
                "host": e.get("host"),
                **_detail(e.get("detail")),
            },
        )
        for e in listed
    )
    return Section(**_section("events", "Events", count=len(rows)), rows=rows)


def directive(report: Mapping[str, Any]) -> Section:
    d: Mapping[str, Any] = report.get("directive") or {}
    terms = tuple(
        Row(
            data={"data-term": term, "data-count": _int(d.get(term))},
            cells={"term": term, "count": _int(d.get(term)), "explanation": explanation},
        )
        for term, explanation in DIRECTIVE_TERMS
    )
    runs: Sequence[Mapping[str, Any]] = d.get("runs") or []
    rows = tuple(
        Row(
            data={"data-run": r.get("id"), "data-started": r.get("started")},
            cells={"id": r.get("id"), "started": when(r.get("started"))},
        )
        for r in runs
    )
    back: Sequence[Mapping[str, Any]] = report.get("came_back") or []
    came_back = tuple(
        Row(
            data={"data-host": b.get("host"), "data-found-by": b.get("found_by")},
            cells={
                "host": b.get("host"),
                "removed_by": b.get("removed_by"),
                "found_by": b.get("found_by"),
                "products": ", ".join(b.get("products") or ()),
            },
        )
        for b in back
    )
    head = _section("directive", "BOD 17-01", runs=len(runs), came_back=len(came_back))
    extra = {
        "terms": terms,
        "method": d.get("counting_method"),
        "not_seen": d.get("not_seen"),
        "came_back": came_back,
    }
    return Section(**head, rows=rows, extra=extra)


def hosts(report: Mapping[str, Any]) -> Section:
    listed: Sequence[Mapping[str, Any]] = report.get("hosts") or []
    fleet = report.get("scope") == "fleet"
    # A run's hosts all share its id (in the header); the fleet view mixes runs, and has no groups.
    grouped = any(h.get("groups") for h in listed)
    heads = ["Run"] if fleet else []
    heads += ["Host"] + (["Groups"] if grouped else [])
    heads += ["Status", "Reason", "Found", "Remaining", "Worked on"]
    heads += ["Status since / first identified"] if fleet else []
    rows = tuple(_host_row(h) for h in listed)
    head = _section("hosts", "All hosts", count=len(rows))
    return Section(**head, rows=rows, extra={"fleet": fleet, "grouped": grouped, "heads": heads})


def _host_row(h: Mapping[str, Any]) -> Row:
    first = h.get("first_identified")
    cells: dict[str, Any] = {
        "run": h.get("run"),
        "host": h.get("host"),
        "groups": ", ".join(str(g) for g in h.get("groups") or ()) or "—",
        "chip": chip(h.get("status")),
        "reason": h.get("reason"),
        "found": items(h.get("found")),
        "remaining": items(h.get("remaining")),
        "worked": interval(h.get("started"), h.get("finished")),
        "since": when(h.get("since")),
        "first": when(first) if first else None,
    }
    data = {
        "data-host": h.get("host"),
        "data-status": h.get("status"),
        "data-found": len(h.get("found") or ()),
        "data-remaining": len(h.get("remaining") or ()),
    }
    return Row(data=data, cells=cells)


def _detail(detail: Any) -> dict[str, Any]:
    """An event's detail: key-value pairs when it is a mapping, else its text."""
    if not isinstance(detail, Mapping):
        return {"pairs": None, "text": detail}
    pairs = [
        (k, ", ".join(str(x) for x in v) if isinstance(v, list | tuple) else str(v))
        for k, v in detail.items()
    ]
    return {"pairs": pairs, "text": None}


def _clock(value: Any) -> str:
    t = charts.when(value)
    return t.strftime("%Y-%m-%d %H:%M:%S") if t else str(value or "?")


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _size(hosts: Any) -> int:
    return len(hosts) if isinstance(hosts, list | tuple) else _int(hosts)
