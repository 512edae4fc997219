"""One style table for statuses: every status is styled for the terminal and the HTML report."""

from __future__ import annotations

import json
import re
import sqlite3

from orchestrator.cli.console import styled
from orchestrator.engine import status as st
from orchestrator.engine.status import STATUS_STYLES, Status
from orchestrator.report import html as report_html
from orchestrator.report.style import COLOURS, MEANINGS, OTHER_COLOUR
from tests.report import documents as docs
from tests.report.dom import parse


def _contrast_on_white(colour: str) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(int(colour[i : i + 2], 16) / 255) for i in (1, 3, 5))
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


def test_every_status_has_a_terminal_style_a_colour_and_a_meaning() -> None:
    assert set(STATUS_STYLES) == set(Status) == set(st.ALL)
    for status, style in STATUS_STYLES.items():
        assert style.terminal and style.meaning, status
        assert re.fullmatch(r"#[0-9a-f]{6}", style.colour), status
        assert _contrast_on_white(style.colour) >= 3, status
        assert COLOURS[status] == style.colour != OTHER_COLOUR
        assert MEANINGS[status] == style.meaning
        assert styled(status) == f"[{style.terminal}]{status}[/]"
    assert len({s.colour for s in STATUS_STYLES.values()}) == len(STATUS_STYLES)
    assert STATUS_STYLES[Status.RESTORED].meaning == "reinstalled by a rollback"
    assert styled("something_new") == "[red]something_new[/]"


def test_statuses_are_the_plain_strings_everywhere() -> None:
    assert all(getattr(st, status.name) is status for status in Status)
    assert Status.RESTORED == "restored" and f"{Status.RESTORED}" == "restored"
    assert json.dumps({"status": Status.REBOOT_PENDING}) == '{"status": "reboot_pending"}'
    with sqlite3.connect(":memory:") as db:
        db.execute("CREATE TABLE t (status TEXT)")
        db.execute("INSERT INTO t VALUES (?)", (Status.HOSTKEY_REJECTED,))
        assert db.execute("SELECT status, typeof(status) FROM t").fetchone() == (
            "hostkey_rejected",
            "text",
        )
        assert type(db.execute("SELECT status FROM t").fetchone()[0]) is str
    db.close()


def test_a_rollback_report_shows_restored_with_its_colour_and_meaning() -> None:
    document = docs.run_document()
    for host in document["hosts"]:
        host["status"] = "restored"
    document["counts"] = {"restored": len(document["hosts"])}
    chart = parse(report_html.render(document)).by_id("status-chart")
    style = STATUS_STYLES[Status.RESTORED]
    (bar,) = chart.find_all("rect", data_status="restored")
    assert bar.attrs["fill"] == style.colour
    (row,) = chart.find_all("tr", data_status="restored")
    assert style.meaning in row.text()
    (swatch,) = (s for s in row.find_all("span") if s.attrs.get("class") == "swatch")
    assert style.colour in swatch.attrs["style"]
