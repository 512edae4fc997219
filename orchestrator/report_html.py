"""The HTML report: one self-contained page drawn from a ``kremove.report/1`` document.

Inline CSS and SVG only — no script, font, image or any other request leaves the file — so the page
can be mailed, archived and printed as it is. Every value from the document is escaped: host names,
groups and reasons come from inventories and hosts. Sections and their hooks: docs/reports.md.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator.engine import status as st

PENDING = "pending"  # a host the run selected but never finished (report.py's placeholder)
# Status colours, chosen for at least 3:1 contrast on white; the status name is always written
# next to its colour, and failures are hatched as well, so that nothing is told by colour alone.
COLOURS = {
    st.CLEAN: "#2e7d32",
    st.REMOVED: "#00695c",
    st.PLANNED: "#1565c0",
    st.FOUND: "#6a1b9a",
    st.REBOOT_PENDING: "#a15c00",
    st.FAILED: "#c62828",
    st.TIMEOUT: "#d84315",
    st.UNREACHABLE: "#ad1457",
    st.AUTH_FAILED: "#6d4c41",
    st.HOSTKEY_REJECTED: "#4a148c",
    st.SKIPPED: "#616161",
    PENDING: "#8a8a8a",
}
OTHER_COLOUR = "#546e7a"
MEANINGS = {
    st.CLEAN: "nothing found",
    st.FOUND: "products installed (detect only)",
    st.REMOVED: "found, removed, verified gone",
    st.REBOOT_PENDING: "removed; verify again after the reboot the uninstaller asked for",
    st.FAILED: "a step failed, or verification still finds the product",
    st.UNREACHABLE: "no connection to the host",
    st.AUTH_FAILED: "the host refused the credentials",
    st.HOSTKEY_REJECTED: "the host key did not match the pinned one",
    st.TIMEOUT: "a step ran out of time",
    st.SKIPPED: "not worked on: halted wave, closed window, or excluded",
    st.PLANNED: "dry run: would be removed",
    PENDING: "selected, but the run recorded no outcome",
}
HATCHED = st.FAILURES
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
# Chart geometry, in SVG units (the charts scale to the page): a label column, then the bars, then
# a note after each bar.
VIEW_W = 900
LABEL_X = 232  # labels end here
BAR_X = 240
BAR_W = 420
LABEL_CHARS = 28  # what fits the label column
# C0 but tab and line ends, DEL, and C1 (U+009B is CSI to a terminal, where the page goes without
# -o). Bidi controls stay: a browser confines them to the element that holds them.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def render(report: Mapping[str, Any]) -> str:
    """The whole page for one report document (run or fleet scope)."""
    fleet = report.get("scope") == "fleet"
    run = report.get("run") or {}
    runs = report.get("runs") or []
    if fleet:
        latest = runs[-1]["id"] if runs else None
        title = f"kremove fleet report — {len(runs)} runs" + (
            f", latest {latest}" if latest else ""
        )
    else:
        title = f"kremove report — run {run.get('id', '?')}"
    sections = [
        ("status-chart", "Hosts by status", _status_section(report)),
        ("groups", "Progress by group", _groups_section(report)),
        ("products", "Products found", _products_section(report)),
        ("failures", "Failures", _failures_section(report)),
        ("timeline", "Runs" if fleet else "Batches", _timeline_section(report)),
        ("directive", "BOD 17-01", _directive_section(report)),
        ("hosts", "All hosts", _hosts_section(report)),
    ]
    if report.get("events"):
        sections.insert(5, ("events", "Events", _events_section(report)))
    nav = "".join(f'<li><a href="#{sid}">{_e(name)}</a></li>' for sid, name, _ in sections)
    body = "".join(body for _, _, body in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="kremove {_e(report.get("schema"))}">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        + _tag(
            "body",
            {"data-schema": report.get("schema"), "data-scope": "fleet" if fleet else "run"},
            _header(report, title)
            + f'<nav aria-label="Sections"><ul>{nav}</ul></nav>\n<main>{body}</main>\n'
            + "<footer>Generated by kremove from a "
            + f"<code>{_e(report.get('schema'))}</code> document. This file loads nothing: no "
            "scripts, fonts or images from anywhere.</footer>\n",
        )
        + "\n</html>\n"
    )


# -- header ------------------------------------------------------------------------------------


def _header(report: Mapping[str, Any], title: str) -> str:
    hosts = report.get("hosts") or []
    if report.get("scope") == "fleet":
        runs = report.get("runs") or []
        fields = [
            ("Scope", "fleet: the latest known state of every host across all runs"),
            ("Runs", str(len(runs))),
            ("First run", _time(runs[0].get("started")) if runs else "—"),
            ("Latest run", _e(runs[-1].get("id")) if runs else "—"),
            ("Latest run started", _time(runs[-1].get("started")) if runs else "—"),
            ("Hosts", str(len(hosts))),
        ]
        rendered = [(k, _e(v) if k in ("Scope", "Runs", "Hosts") else v) for k, v in fields]
        attrs: dict[str, Any] = {"id": "header", "data-scope": "fleet", "data-runs": len(runs)}
    else:
        run = report.get("run") or {}
        rendered = [
            ("Run", f"<code>{_e(run.get('id'))}</code>"),
            ("Kind", _e(run.get("kind"))),
            ("Status", _e(run.get("status"))),
            ("Started", _time(run.get("started"))),
            ("Finished", _time(run.get("finished"))),
            ("Operator", _e(run.get("operator"))),
            ("Command", f"<code>{_e(run.get('command_line'))}</code>"),
            ("Inventory digest", f"<code>{_e(run.get('inventory_digest'))}</code>"),
            ("Playbook version", f"<code>{_e(run.get('playbook_version'))}</code>"),
            ("Hosts", str(len(hosts))),
        ]
        attrs = {
            "id": "header",
            "data-scope": "run",
            "data-run": run.get("id"),
            "data-kind": run.get("kind"),
            "data-status": run.get("status"),
        }
    rows = "".join(f"<div><dt>{_e(k)}</dt><dd>{v}</dd></div>" for k, v in rendered)
    return _tag("header", attrs, f"<h1>{_e(title)}</h1><dl>{rows}</dl>") + "\n"


# -- sections ----------------------------------------------------------------------------------


def _section(sid: str, heading: str, body: str, **data: Any) -> str:
    attrs = {"id": sid, "aria-labelledby": f"{sid}-h"}
    attrs.update({f"data-{k}": v for k, v in data.items()})
    return _tag("section", attrs, f'<h2 id="{sid}-h">{_e(heading)}</h2>{body}') + "\n"


def _status_section(report: Mapping[str, Any]) -> str:
    counts = {str(k): _int(v) for k, v in (report.get("counts") or {}).items()}
    order = [s for s in (*st.ALL, PENDING) if s in counts]
    order += sorted(s for s in counts if s not in order)
    total = sum(counts.values())
    bars = [
        _Bar(
            label=s,
            value=counts[s],
            colour=_colour(s),
            hatched=s in HATCHED,
            data={"data-status": s, "data-count": counts[s]},
            note=f"{counts[s]} ({_pct(counts[s], total)})",
        )
        for s in order
    ]
    chart = _bar_chart("status-svg", "Hosts by status", bars) if bars else _empty("No hosts.")
    rows = "".join(
        _tag(
            "tr",
            {"data-status": s, "data-count": counts[s]},
            f"<td>{_chip(s)}</td><td class=num>{counts[s]}</td>"
            f"<td class=num>{_pct(counts[s], total)}</td><td>{_e(MEANINGS.get(s, ''))}</td>",
        )
        for s in order
    )
    table = (
        _table(["Status", "Hosts", "Share", "Meaning"], rows, "counts")
        + f"<p class=total>Total: <strong>{total}</strong> hosts.</p>"
        if order
        else ""
    )
    return _section("status-chart", "Hosts by status", chart + table, total=total)


def _groups_section(report: Mapping[str, Any]) -> str:
    groups: Mapping[str, Any] = report.get("groups") or {}
    if not groups:
        return _section("groups", "Progress by group", _empty("No groups."), count=0)
    rows = []
    for i, (name, g) in enumerate(groups.items()):
        hosts, done, failed = _int(g.get("hosts")), _int(g.get("done")), _int(g.get("failed"))
        y = 8 + i * 30
        done_w, failed_w = _scale(done, hosts, BAR_W), _scale(failed, hosts, BAR_W)
        # a grey track for all the group's hosts, then done and failed from its left end
        parts = _rect("hosts", BAR_X, y, BAR_W, None, f"{name}: {_hosts(hosts)}")
        if done_w:
            parts += _rect("done", BAR_X, y, done_w, COLOURS[st.CLEAN], f"{name}: {done} done")
        if failed_w:
            x = BAR_X + done_w
            parts += _rect("failed", x, y, failed_w, COLOURS[st.FAILED], f"{name}: {failed} failed")
            parts += _hatch("groups-svg", x, y, failed_w)
        note = f"{done}/{hosts} done ({_pct(done, hosts)})"
        note += f" · {failed} failed" if failed else ""
        data = {"data-group": name, "data-hosts": hosts, "data-done": done, "data-failed": failed}
        body = _label(name, y) + parts + _svg_text(BAR_X + BAR_W + 8, y + 15, note)
        rows.append(_tag("g", {"class": "group", **data}, body))
    height = 16 + len(groups) * 30
    svg = _svg("groups-svg", "Progress by group: done and failed hosts", height, "".join(rows))
    legend = (
        f'<p class="legend">{_swatch(COLOURS[st.CLEAN])} done (clean or removed) '
        f"{_swatch(COLOURS[st.FAILED], hatched=True)} failed (any failure status) "
        f"{_swatch('#e3e3e3')} not yet done</p>"
    )
    return _section("groups", "Progress by group", svg + legend, count=len(groups))


def _products_section(report: Mapping[str, Any]) -> str:
    products: Sequence[Mapping[str, Any]] = report.get("products") or []
    if not products:
        return _section("products", "Products found", _empty("No products found."), count=0)
    bars = [
        _Bar(
            # the short catalog id: the full name is in the tooltip and the table
            label=f"{p.get('product')} {p.get('version') or ''}".strip(),
            value=_int(p.get("hosts")),
            colour=COLOURS[st.FOUND],
            hatched=False,
            data={
                "data-product": p.get("product"),
                "data-version": p.get("version") or "",
                "data-count": _int(p.get("hosts")),
            },
            note=_hosts(_int(p.get("hosts"))),
            title=f"{p.get('name')} {p.get('version') or ''}",
        )
        for p in products
    ]
    rows = "".join(
        _tag(
            "tr",
            {
                "data-product": p.get("product"),
                "data-version": p.get("version") or "",
                "data-count": _int(p.get("hosts")),
            },
            f"<td><code>{_e(p.get('product'))}</code></td><td>{_e(p.get('name'))}</td>"
            f"<td>{_e(p.get('version') or '—')}</td><td class=num>{_int(p.get('hosts'))}</td>",
        )
        for p in products
    )
    body = _bar_chart("products-svg", "Hosts per product and version", bars) + _table(
        ["Product", "Name", "Version", "Hosts"], rows, "products"
    )
    return _section("products", "Products found", body, count=len(products))


def _failures_section(report: Mapping[str, Any]) -> str:
    failures: Sequence[Mapping[str, Any]] = report.get("failures") or []
    if not failures:
        body = _empty("No failures and no pending reboots.")
    else:
        rows = "".join(
            _tag(
                "tr",
                {"data-host": f.get("host"), "data-status": f.get("status")},
                f"<td>{_e(f.get('host'))}</td><td>{_chip(f.get('status'))}</td>"
                f"<td class=reason>{_e(f.get('reason') or '—')}</td>",
            )
            for f in failures
        )
        body = "<p>Hosts that failed, could not be worked on, or wait for a reboot.</p>" + _table(
            ["Host", "Status", "Reason"], rows, "failures"
        )
    return _section("failures", "Failures", body, count=len(failures))


def _timeline_section(report: Mapping[str, Any]) -> str:
    if report.get("scope") == "fleet":
        runs = report.get("runs") or []
        lanes = [
            _Lane(
                label=str(r.get("id")),
                start=r.get("started"),
                end=None,
                data={"data-run": r.get("id"), "data-started": r.get("started")},
                note=_clock(r.get("started")),
            )
            for r in runs
        ]
        intro = "<p>Every run whose outcomes make up this view, by start time (UTC).</p>"
        body = _timeline_svg(lanes, [], None, None) if lanes else _empty("No runs.")
        return _section("timeline", "Runs", intro + body, count=len(lanes))
    run = report.get("run") or {}
    batches: Sequence[Mapping[str, Any]] = report.get("batches") or []
    starts = [b.get("started") for b in batches]
    lanes = [
        _Lane(
            label=f"Batch {b.get('batch')}",
            start=b.get("started"),
            # A batch lasts until the next one starts, the last one until the run finished.
            end=starts[i + 1] if i + 1 < len(batches) else run.get("finished"),
            data={
                "data-batch": b.get("batch"),
                "data-started": b.get("started"),
                "data-hosts": _size(b.get("hosts")),
            },
            note=f"{_hosts(_size(b.get('hosts')))} · {_clock(b.get('started'))}",
        )
        for i, b in enumerate(batches)
    ]
    events = [e for e in report.get("events") or () if e.get("host") is None and _when(e.get("at"))]
    intro = (
        "<p>Each batch of the wave, from its start until the next batch's (times in UTC).</p>"
        if batches
        else "<p>No batch events: the run worked on all of its hosts in one batch.</p>"
    )
    body = _timeline_svg(lanes, events, run.get("started"), run.get("finished"))
    return _section("timeline", "Batches", intro + body, count=len(lanes))


def _events_section(report: Mapping[str, Any]) -> str:
    events: Sequence[Mapping[str, Any]] = report.get("events") or []
    rows = "".join(
        _tag(
            "tr",
            {"data-event": e.get("kind")},
            f"<td>{_time(e.get('at'), short=True)}</td><td>{_e(e.get('kind'))}</td>"
            f"<td>{_e(e.get('host') or '—')}</td><td class=reason>{_detail(e.get('detail'))}</td>",
        )
        for e in events
    )
    body = _table(["At", "Event", "Host", "Detail"], rows, "events")
    return _section("events", "Events", body, count=len(events))


def _directive_section(report: Mapping[str, Any]) -> str:
    d: Mapping[str, Any] = report.get("directive") or {}
    cards = "".join(
        _tag(
            "div",
            {"class": "term", "data-term": term, "data-count": _int(d.get(term))},
            f'<span class="n">{_int(d.get(term))}</span> <span class="name">{term}</span>'
            f"<p>{_e(explanation)}</p>",
        )
        for term, explanation in DIRECTIVE_TERMS
    )
    runs = d.get("runs") or []
    run_rows = "".join(
        _tag(
            "tr",
            {"data-run": r.get("id"), "data-started": r.get("started")},
            f"<td><code>{_e(r.get('id'))}</code></td><td>{_time(r.get('started'))}</td>",
        )
        for r in runs
    )
    body = (
        "<p>Binding Operational Directive 17-01 (DHS, 13 Sep 2017) requires agencies to identify "
        "Kaspersky-branded products within 30 days, plan their removal within 60, and begin "
        "removing them at 90 days. The counts below are hosts, in the directive's terms.</p>"
        f'<div class="terms">{cards}</div>'
        + (
            "<h3>Runs counted</h3>" + _table(["Run", "Started"], run_rows, "directive-runs")
            if runs
            else _empty("No runs counted.")
        )
    )
    return _section("directive", "BOD 17-01", body, runs=len(runs))


def _hosts_section(report: Mapping[str, Any]) -> str:
    hosts: Sequence[Mapping[str, Any]] = report.get("hosts") or []
    fleet = report.get("scope") == "fleet"
    # A run's hosts all share its id (in the header); the fleet view mixes runs, and has no groups.
    grouped = any(h.get("groups") for h in hosts)
    heads = ["Run"] if fleet else []
    heads += ["Host"] + (["Groups"] if grouped else [])
    heads += ["Status", "Reason", "Found", "Remaining", "Worked on"]
    heads += ["Status since / first identified"] if fleet else []
    rows = []
    for h in hosts:
        cells = [f"<code>{_e(h.get('run'))}</code>"] if fleet else []
        cells.append(f"<strong>{_e(h.get('host'))}</strong>")
        if grouped:
            cells.append(_e(", ".join(str(g) for g in h.get("groups") or ()) or "—"))
        cells += [
            _chip(h.get("status")),
            f'<span class="reason">{_e(h.get("reason") or "—")}</span>',
            _findings(h.get("found")),
            _findings(h.get("remaining")),
            _interval(h.get("started"), h.get("finished")),
        ]
        if fleet:
            first = h.get("first_identified")
            cells.append(
                _time(h.get("since"), short=True)
                + (
                    f"<br><small>first identified {_time(first, short=True)}</small>"
                    if first
                    else ""
                )
            )
        rows.append(
            _tag(
                "tr",
                {
                    "data-host": h.get("host"),
                    "data-status": h.get("status"),
                    "data-found": len(h.get("found") or ()),
                    "data-remaining": len(h.get("remaining") or ()),
                },
                "".join(f"<td>{c}</td>" for c in cells),
            )
        )
    intro = "<p>Every host, one row each as in the CSV export; times in UTC.</p>"
    body = intro + _table(heads, "".join(rows), "hosts") if rows else _empty("No hosts.")
    return _section("hosts", "All hosts", body, count=len(hosts))


# -- charts ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Bar:
    label: str
    value: int
    colour: str
    hatched: bool
    data: Mapping[str, Any]  # the data-* attributes of the bar's <rect>
    note: str  # written after the bar
    title: str | None = None  # the tooltip, when the label is not the whole story


@dataclass(frozen=True, kw_only=True)
class _Lane:
    label: str
    start: Any  # ISO 8601, as in the document
    end: Any
    data: Mapping[str, Any]  # the data-* attributes of the lane's mark
    note: str


def _bar_chart(svg_id: str, title: str, bars: Sequence[_Bar]) -> str:
    """Horizontal bars: label on the left, bar scaled to the largest value, value on the right."""
    width = BAR_W
    top = max((b.value for b in bars), default=0)
    rows = []
    for i, b in enumerate(bars):
        y = 8 + i * 30
        w = _scale(b.value, top, width)
        body = _label(b.label, y) + _tag(
            "rect",
            {**b.data, "x": BAR_X, "y": y, "width": max(w, 2), "fill": b.colour},
            f"<title>{_e(b.title or b.label)}: {_e(b.note)}</title>",
            height=20,
        )
        if b.hatched:
            body += _hatch(svg_id, BAR_X, y, max(w, 2))
        body += _svg_text(BAR_X + max(w, 2) + 8, y + 15, b.note)
        rows.append(f'<g class="bar">{body}</g>')
    return _svg(svg_id, title, 16 + len(bars) * 30, "".join(rows))


def _timeline_svg(
    lanes: Sequence[_Lane], events: Sequence[Mapping[str, Any]], start: Any, end: Any
) -> str:
    """A lane per batch (or run), positioned on one time axis; run-level events as dashed lines."""
    times = [t for t in (_when(start), _when(end)) if t]
    times += [t for lane in lanes for t in (_when(lane.start), _when(lane.end)) if t]
    times += [t for e in events if (t := _when(e.get("at")))]
    x0, span = BAR_X, BAR_W
    t0 = min(times, default=datetime.fromtimestamp(0, UTC))
    seconds = max((max(times, default=t0) - t0).total_seconds(), 1.0)
    top = 30
    body = ""
    # the run itself, as a thin band above the lanes
    if times and _when(start):
        a = _x(_when(start), t0, seconds, x0, span)
        b = _x(_when(end), t0, seconds, x0, span) if _when(end) else x0 + span
        body += _label("Run", top - 2) + _tag(
            "rect",
            {"class": "run-span", "x": a, "y": top, "width": max(b - a, 2), "fill": "#90a4ae"},
            "<title>The run, from start to finish</title>",
            height=8,
        )
        top += 22
    for i, lane in enumerate(lanes):
        y = top + i * 28
        t = _when(lane.start)
        if t and times:
            a = _x(t, t0, seconds, x0, span)
            t_end = _when(lane.end)
            b = _x(t_end, t0, seconds, x0, span) if t_end else a
            positioned = "time"
        else:  # an unreadable time: keep the order, place evenly
            a = x0 + span * i / max(len(lanes) - 1, 1)
            b, positioned = a, "order"
        w = max(b - a, 4)
        mark = _tag(
            "rect",
            {
                "class": "mark",
                **lane.data,
                "data-positioned": positioned,
                "x": round(min(a, x0 + span - 4), 1),
                "y": y,
                "width": round(w, 1),
                "fill": "#1565c0",
            },
            f"<title>{_e(lane.label)}: {_e(lane.note)}</title>",
            height=18,
        )
        note_x = min(a + w + 6, x0 + span + 6)
        body += f'<g class="lane">{_label(lane.label, y)}{mark}'
        body += f"{_svg_text(note_x, y + 14, lane.note)}</g>"
    bottom = top + len(lanes) * 28 + 4
    for e in events:
        ex = _x(_when(e.get("at")), t0, seconds, x0, span)
        body += _tag(
            "g",
            {"class": "event", "data-event": e.get("kind"), "data-at": e.get("at")},
            f'<line x1="{ex}" y1="12" x2="{ex}" y2="{bottom}" stroke="#c62828" '
            f'stroke-dasharray="4 3"/>' + _svg_text(ex + 3, 10, str(e.get("kind")), "event-label"),
        )
    if times:
        for k in range(5):
            tx = x0 + span * k / 4
            tick = _tick(t0, seconds * k / 4, seconds)
            body += (
                f'<line class="tick" x1="{tx}" y1="{bottom}" x2="{tx}" y2="{bottom + 5}"/>'
                + _svg_text(tx, bottom + 18, tick, "tick", anchor="middle")
            )
        body += f'<line class="axis" x1="{x0}" y1="{bottom}" x2="{x0 + span}" y2="{bottom}"/>'
    title = "Timeline, positioned by start time"
    return _svg("timeline-svg", title, bottom + 28, body)


def _svg(svg_id: str, title: str, height: int, body: str) -> str:
    # The hatch pattern marks failures without relying on colour (and survives greyscale print).
    defs = (
        f'<defs><pattern id="{svg_id}-hatch" width="6" height="6" '
        'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="6" height="6" fill="none"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#fff" stroke-width="2.5" opacity="0.75"/>'
        "</pattern></defs>"
    )
    return (
        f'<svg id="{svg_id}" class="chart" role="img" aria-labelledby="{svg_id}-title" '
        f'viewBox="0 0 {VIEW_W} {height}" width="{VIEW_W}" '
        f'height="{height}" preserveAspectRatio="xMinYMin meet">'
        f'<title id="{svg_id}-title">{_e(title)}</title>{defs}{body}</svg>'
    )


def _hatch(svg_id: str, x: float, y: float, w: float) -> str:
    return (
        f'<rect class="hatch" aria-hidden="true" x="{x}" y="{y}" width="{w}" height="20" '
        f'fill="url(#{svg_id}-hatch)"/>'
    )


def _rect(part: str, x: float, y: float, w: float, fill: str | None, title: str) -> str:
    attrs = {"class": "track" if fill is None else None, "data-part": part, "fill": fill}
    return _tag(
        "rect", {**attrs, "x": x, "y": y, "width": w}, f"<title>{_e(title)}</title>", height=20
    )


def _label(text: str, y: float) -> str:
    """A left-column label, shortened to fit; the full text stays in its tooltip."""
    short = text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"
    return (
        f'<text class="label" x="{LABEL_X}" y="{y + 15}" text-anchor="end">'
        f"<title>{_e(text)}</title>{_e(short)}</text>"
    )


def _svg_text(x: float, y: float, text: str, cls: str = "note", anchor: str = "start") -> str:
    return f'<text class="{cls}" x="{round(x, 1)}" y="{y}" text-anchor="{anchor}">{_e(text)}</text>'


def _x(t: datetime | None, t0: datetime, seconds: float, x0: float, span: float) -> float:
    if t is None:
        return x0
    return round(x0 + span * (t - t0).total_seconds() / seconds, 1)


def _tick(t0: datetime, offset: float, seconds: float) -> str:
    t = t0 + timedelta(seconds=offset)
    if seconds < 86400:
        return t.strftime("%H:%M:%S")
    if seconds < 86400 * 14:
        return t.strftime("%m-%d %H:%M")
    return t.strftime("%Y-%m-%d")


def _scale(value: int, top: int, width: int) -> float:
    return round(width * value / top, 1) if top > 0 and value > 0 else 0


# -- small pieces ------------------------------------------------------------------------------


def _e(value: Any) -> str:
    """Escape anything from the document for text or attributes.

    Lone surrogates and control characters (undecodable output, terminal escapes) become U+FFFD
    instead of breaking the file's encoding."""
    if value is None:
        return ""
    text = str(value).encode("utf-8", "replace").decode("utf-8")
    return html.escape(_CONTROL.sub("\ufffd", text), quote=True)


def _tag(name: str, attrs: Mapping[str, Any], body: str = "", **extra: Any) -> str:
    """An element; attribute values are escaped, ``body`` must already be markup."""
    pairs = {**attrs, **extra}
    text = "".join(f' {k}="{_e(v)}"' for k, v in pairs.items() if v is not None)
    return f"<{name}{text}>{body}</{name}>"


def _table(heads: Sequence[str], rows: str, cls: str) -> str:
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in heads)
    return (
        f'<div class="table-wrap"><table class="{cls}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def _empty(message: str) -> str:
    return f'<p class="empty">{_e(message)}</p>'


def _chip(status: Any) -> str:
    swatch = _swatch(_colour(status), hatched=status in HATCHED)
    return f'<span class="status" data-status="{_e(status)}">{swatch}{_e(status)}</span>'


def _swatch(colour: str, *, hatched: bool = False) -> str:
    cls = "swatch hatched" if hatched else "swatch"
    return f'<span class="{cls}" style="background-color:{colour}"></span>'


def _colour(status: Any) -> str:
    return COLOURS.get(str(status), OTHER_COLOUR)


def _findings(findings: Iterable[Mapping[str, Any]] | None) -> str:
    items = []
    for f in findings or ():
        what = [f"product {f.get('product')}"]
        if f.get("package"):
            what.append(f"package {f.get('package')}")
        if f.get("product_code"):
            what.append(f"ProductCode {f.get('product_code')}")
        items.append(f'<li title="{_e("; ".join(what))}">{_e(f.get("label"))}</li>')
    return f'<ul class="findings">{"".join(items)}</ul>' if items else "—"


def _detail(detail: Any) -> str:
    if not isinstance(detail, Mapping):
        return _e(detail)
    parts = []
    for k, v in detail.items():
        shown = ", ".join(str(x) for x in v) if isinstance(v, list | tuple) else str(v)
        parts.append(f"<strong>{_e(k)}</strong>: {_e(shown)}")
    return "; ".join(parts) or "—"


def _when(value: Any) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime; the ledger writes UTC, so naive means UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)


def _time(value: Any, *, short: bool = False) -> str:
    """A time in UTC; ``short`` (table cells) drops the zone, which the page states once."""
    t = _when(value)
    if t is None:
        return _e(value) if value else "—"
    day, clock = t.strftime("%Y-%m-%d"), t.strftime("%H:%M:%S")
    zone = "" if short else " UTC"
    return f'<time datetime="{_e(value)}"><span>{day}</span> <span>{clock}{zone}</span></time>'


def _interval(started: Any, finished: Any) -> str:
    """Start and finish in one cell; the finish's date only when it differs from the start's."""
    a, b = _when(started), _when(finished)
    if a is None or b is None or a.date() != b.date():
        return f"{_time(started, short=True)}<br>→ {_time(finished, short=True)}"
    clock = f'<time datetime="{_e(finished)}"><span>{b.strftime("%H:%M:%S")}</span></time>'
    return f"{_time(started, short=True)}<br>→ {clock}"


def _clock(value: Any) -> str:
    t = _when(value)
    return t.strftime("%Y-%m-%d %H:%M:%S") if t else str(value or "?")


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _size(hosts: Any) -> int:
    return len(hosts) if isinstance(hosts, list | tuple) else _int(hosts)


def _hosts(n: int) -> str:
    return f"{n} host" if n == 1 else f"{n} hosts"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "0%"


CSS = """
:root { color-scheme: light; --ink: #1d1d1f; --muted: #5f6368; --rule: #d7d7db; --band: #f4f5f7; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0 auto; max-width: 1200px; padding: 24px 32px 48px; color: var(--ink);
  background: #fff; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans",
  "DejaVu Sans", "Liberation Sans", Arial, sans-serif; }
code { font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas,
  monospace; font-size: 0.92em; overflow-wrap: anywhere; }
h1 { font-size: 1.6rem; margin: 0 0 12px; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 0 0 10px; padding-bottom: 4px;
  border-bottom: 2px solid var(--ink); }
h3 { font-size: 1rem; margin: 16px 0 6px; }
header { border-bottom: 1px solid var(--rule); padding-bottom: 12px; }
header dl { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr));
  gap: 6px 24px; margin: 0; }
header dl div { min-width: 0; }
header dt { color: var(--muted); font-size: 0.8rem; text-transform: uppercase;
  letter-spacing: 0.04em; }
header dd { margin: 0; overflow-wrap: anywhere; }
nav ul { list-style: none; display: flex; flex-wrap: wrap; gap: 4px 16px; padding: 0;
  margin: 12px 0 0; }
nav a { color: #1565c0; }
section { margin: 28px 0 0; }
svg.chart { display: block; width: 100%; max-width: 980px; height: auto; margin: 4px 0 8px; }
svg text { font: 13px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  fill: var(--ink); }
svg text.tick, svg text.event-label { font-size: 11px; fill: var(--muted); }
svg text.event-label { fill: #c62828; }
svg .track { fill: #e3e3e3; }
svg line.axis, svg line.tick { stroke: #888; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
table.hosts { font-size: 0.85rem; }
th, td { text-align: left; vertical-align: top; padding: 4px 8px;
  border-bottom: 1px solid var(--rule); overflow-wrap: break-word; }
td.reason, td .reason { overflow-wrap: anywhere; }
table.hosts td:has(.reason), table.hosts td:has(ul.findings) { min-width: 9em; }
td code { overflow-wrap: normal; }
time span, .status { white-space: nowrap; }
thead th { background: var(--band); border-bottom: 2px solid var(--rule); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.reason, td .reason { white-space: pre-wrap; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.35em;
  vertical-align: -0.05em; border-radius: 2px; }
.swatch.hatched { background-image: repeating-linear-gradient(45deg, transparent 0 2px,
  rgba(255,255,255,0.75) 2px 3.5px); }
.legend { color: var(--muted); font-size: 0.85rem; }
.legend .swatch { margin-left: 0.8em; }
ul.findings { margin: 0; padding-left: 1.1em; }
.empty { color: var(--muted); font-style: italic; }
.total { color: var(--muted); }
.terms { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 10px; }
.term { border: 1px solid var(--rule); border-radius: 6px; padding: 8px 12px; break-inside: avoid; }
.term .n { font-size: 1.7rem; font-weight: 700; font-variant-numeric: tabular-nums; }
.term .name { font-weight: 600; }
.term p { margin: 2px 0 0; color: var(--muted); font-size: 0.85rem; }
footer { margin-top: 36px; color: var(--muted); font-size: 0.8rem;
  border-top: 1px solid var(--rule); padding-top: 8px; }
@page { size: A4; margin: 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  nav { display: none; }
  section { break-inside: avoid-page; margin-top: 16px; }
  section#hosts, section#failures, section#events { break-inside: auto; }
  svg.chart { max-width: 100%; }
  table, table.hosts { font-size: 8pt; }
  table.hosts td:has(.reason), table.hosts td:has(ul.findings) { min-width: 6em; }
  th, td { padding: 2px 4px; }
  td code { overflow-wrap: anywhere; }
  header dl { grid-template-columns: 1fr 1fr; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; }
  .table-wrap { overflow: visible; }
  h2 { break-after: avoid; }
}
"""
