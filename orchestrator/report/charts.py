"""The HTML report's SVG charts as shapes: the geometry is computed here, in SVG units (the charts
scale to the page), and templates/report.html.j2 draws the shapes as markup.

A chart row is a label column, then the bar, then a note after the bar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from orchestrator.engine import status as st
from orchestrator.report.style import COLOURS

VIEW_W = 900
LABEL_X = 232  # labels end here
BAR_X = 240
BAR_W = 420
LABEL_CHARS = 28  # what fits the label column
RUN_COLOUR = "#90a4ae"
LANE_COLOUR = "#1565c0"
EVENT_COLOUR = "#c62828"


@dataclass(frozen=True, kw_only=True)
class Rect:
    """A bar, a group's track or part, a lane's mark, the run's band, or a hatch over a failure."""

    kind: Literal["rect"] = "rect"  # report.html.j2 draws each shape by its kind
    x: float
    y: float
    width: float
    height: int = 20
    fill: str | None = None
    cls: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)  # data-* attributes, the tests' hooks
    title: str | None = None  # the tooltip
    hidden: bool = False  # decoration a screen reader skips


@dataclass(frozen=True, kw_only=True)
class Text:
    """Words in a chart: the note after a bar or lane, an axis tick, an event's name."""

    kind: Literal["text"] = "text"
    x: float
    y: float
    text: str
    cls: str = "note"
    anchor: Literal["start", "middle", "end"] = "start"


@dataclass(frozen=True, kw_only=True)
class Label:
    """A left-column label, shortened to fit; the full text stays in its tooltip."""

    kind: Literal["label"] = "label"
    y: float
    text: str
    x: int = LABEL_X

    @property
    def short(self) -> str:
        fits = len(self.text) <= LABEL_CHARS
        return self.text if fits else self.text[: LABEL_CHARS - 1] + "…"


@dataclass(frozen=True, kw_only=True)
class Line:
    """An axis, a tick, or an event's dashed marker across the lanes."""

    kind: Literal["line"] = "line"
    cls: str | None = None
    stroke: str | None = None
    dashed: bool = False
    x1: float
    y1: float
    x2: float
    y2: float


Shape = Rect | Text | Label | Line


@dataclass(frozen=True, kw_only=True)
class Group:
    kind: Literal["group"] = "group"
    cls: str
    shapes: tuple[Shape, ...]
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Chart:
    id: str
    title: str
    height: int
    items: tuple[Group | Shape, ...]
    width: int = VIEW_W


@dataclass(frozen=True, kw_only=True)
class Bar:
    label: str
    value: int
    colour: str
    hatched: bool
    data: Mapping[str, Any]  # the data-* attributes of the bar's <rect>
    note: str  # written after the bar
    title: str | None = None  # the tooltip, when the label is not the whole story


@dataclass(frozen=True, kw_only=True)
class Lane:
    label: str
    start: Any  # ISO 8601, as in the document
    end: Any
    data: Mapping[str, Any]  # the data-* attributes of the lane's mark
    note: str


@dataclass(frozen=True, kw_only=True)
class GroupProgress:
    name: str
    hosts: int
    done: int
    failed: int


def bar_chart(svg_id: str, title: str, bars: Sequence[Bar]) -> Chart:
    """Horizontal bars: label on the left, bar scaled to the largest value, value on the right."""
    top = max((b.value for b in bars), default=0)
    rows = []
    for i, b in enumerate(bars):
        y = 8 + i * 30
        w = max(_scale(b.value, top, BAR_W), 2)
        tooltip = f"{b.title or b.label}: {b.note}"
        shapes: list[Shape] = [
            Label(y=y, text=b.label),
            Rect(x=BAR_X, y=y, width=w, fill=b.colour, data=b.data, title=tooltip),
        ]
        if b.hatched:
            shapes.append(_hatch(svg_id, BAR_X, y, w))
        shapes.append(_note(BAR_X + w + 8, y + 15, b.note))
        rows.append(Group(cls="bar", shapes=tuple(shapes)))
    return Chart(id=svg_id, title=title, height=16 + len(bars) * 30, items=tuple(rows))


def groups_chart(groups: Sequence[GroupProgress]) -> Chart:
    """Per group, a grey track for all its hosts, then done and failed from its left end."""
    rows = []
    for i, g in enumerate(groups):
        y = 8 + i * 30
        done_w, failed_w = _scale(g.done, g.hosts, BAR_W), _scale(g.failed, g.hosts, BAR_W)
        shapes: list[Shape] = [Label(y=y, text=g.name), _part("hosts", y, BAR_X, BAR_W, None, g)]
        if done_w:
            shapes.append(_part("done", y, BAR_X, done_w, COLOURS[st.CLEAN], g))
        if failed_w:
            x = BAR_X + done_w
            shapes.append(_part("failed", y, x, failed_w, COLOURS[st.FAILED], g))
            shapes.append(_hatch("groups-svg", x, y, failed_w))
        note = f"{g.done}/{g.hosts} done ({percent(g.done, g.hosts)})"
        note += f" · {g.failed} failed" if g.failed else ""
        shapes.append(_note(BAR_X + BAR_W + 8, y + 15, note))
        data = {
            "data-group": g.name,
            "data-hosts": g.hosts,
            "data-done": g.done,
            "data-failed": g.failed,
        }
        rows.append(Group(cls="group", shapes=tuple(shapes), data=data))
    title = "Progress by group: done and failed hosts"
    return Chart(id="groups-svg", title=title, height=16 + len(groups) * 30, items=tuple(rows))


def timeline_chart(
    lanes: Sequence[Lane], events: Sequence[Mapping[str, Any]], start: Any, end: Any
) -> Chart:
    """A lane per batch (or run), positioned on one time axis; run-level events as dashed lines."""
    times = [t for t in (when(start), when(end)) if t]
    times += [t for lane in lanes for t in (when(lane.start), when(lane.end)) if t]
    times += [t for e in events if (t := when(e.get("at")))]
    axis = _Axis.over(times)
    items: list[Group | Shape] = []
    top = 30
    begun = when(start)
    if axis and begun:  # the run itself, as a thin band above the lanes
        a = axis.x(begun)
        b = axis.x(when(end)) if when(end) else BAR_X + BAR_W
        band = Rect(
            x=a,
            y=top,
            width=max(b - a, 2),
            height=8,
            fill=RUN_COLOUR,
            cls="run-span",
            title="The run, from start to finish",
        )
        items += [Label(y=top - 2, text="Run"), band]
        top += 22
    items += [_lane(lane, i, len(lanes), top + i * 28, axis) for i, lane in enumerate(lanes)]
    bottom = top + len(lanes) * 28 + 4
    items += [_event(e, axis, bottom) for e in events if axis]
    if axis:
        items += axis.ticks(bottom)
    title = "Timeline, positioned by start time"
    return Chart(id="timeline-svg", title=title, height=bottom + 28, items=tuple(items))


def _lane(lane: Lane, i: int, count: int, y: int, axis: _Axis | None) -> Group:
    t = when(lane.start)
    if t and axis:
        a = axis.x(t)
        t_end = when(lane.end)
        b = axis.x(t_end) if t_end else a
        positioned = "time"
    else:  # an unreadable time: keep the order, place evenly
        a = BAR_X + BAR_W * i / max(count - 1, 1)
        b, positioned = a, "order"
    w = max(b - a, 4)
    mark = Rect(
        x=round(min(a, BAR_X + BAR_W - 4), 1),
        y=y,
        width=round(w, 1),
        height=18,
        fill=LANE_COLOUR,
        cls="mark",
        data={**lane.data, "data-positioned": positioned},
        title=f"{lane.label}: {lane.note}",
    )
    note = _note(min(a + w + 6, BAR_X + BAR_W + 6), y + 14, lane.note)
    return Group(cls="lane", shapes=(Label(y=y, text=lane.label), mark, note))


def _event(event: Mapping[str, Any], axis: _Axis, bottom: int) -> Group:
    x = axis.x(when(event.get("at")))
    line = Line(x1=x, y1=12, x2=x, y2=bottom, stroke=EVENT_COLOUR, dashed=True)
    label = _note(x + 3, 10, str(event.get("kind")), "event-label")
    data = {"data-event": event.get("kind"), "data-at": event.get("at")}
    return Group(cls="event", shapes=(line, label), data=data)


@dataclass(frozen=True)
class _Axis:
    t0: datetime
    seconds: float

    @classmethod
    def over(cls, times: Sequence[datetime]) -> _Axis | None:
        if not times:
            return None
        t0 = min(times)
        return cls(t0, max((max(times) - t0).total_seconds(), 1.0))

    def x(self, t: datetime | None) -> float:
        if t is None:
            return BAR_X
        return round(BAR_X + BAR_W * (t - self.t0).total_seconds() / self.seconds, 1)

    def ticks(self, bottom: int) -> list[Shape]:
        shapes: list[Shape] = []
        for k in range(5):
            tx = BAR_X + BAR_W * k / 4
            shapes.append(Line(x1=tx, y1=bottom, x2=tx, y2=bottom + 5, cls="tick"))
            shapes.append(
                _note(tx, bottom + 18, self._tick(self.seconds * k / 4), "tick", "middle")
            )
        shapes.append(Line(x1=BAR_X, y1=bottom, x2=BAR_X + BAR_W, y2=bottom, cls="axis"))
        return shapes

    def _tick(self, offset: float) -> str:
        t = self.t0 + timedelta(seconds=offset)
        if self.seconds < 86400:
            return t.strftime("%H:%M:%S")
        if self.seconds < 86400 * 14:
            return t.strftime("%m-%d %H:%M")
        return t.strftime("%Y-%m-%d")


def _part(part: str, y: int, x: float, w: float, fill: str | None, g: GroupProgress) -> Rect:
    count = {"hosts": hosts(g.hosts), "done": f"{g.done} done", "failed": f"{g.failed} failed"}
    return Rect(
        x=x,
        y=y,
        width=w,
        fill=fill,
        cls="track" if fill is None else None,
        data={"data-part": part},
        title=f"{g.name}: {count[part]}",
    )


def _hatch(svg_id: str, x: float, y: float, w: float) -> Rect:
    # The hatch pattern (defined in each chart) marks failures without relying on colour.
    return Rect(x=x, y=y, width=w, fill=f"url(#{svg_id}-hatch)", cls="hatch", hidden=True)


def _note(
    x: float, y: float, text: str, cls: str = "note", anchor: Literal["start", "middle"] = "start"
) -> Text:
    return Text(x=round(x, 1), y=y, text=text, cls=cls, anchor=anchor)


def _scale(value: int, top: int, width: int) -> float:
    return round(width * value / top, 1) if top > 0 and value > 0 else 0


def when(value: Any) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime; the ledger writes UTC, so naive means UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)


def hosts(n: int) -> str:
    return f"{n} host" if n == 1 else f"{n} hosts"


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "0%"
