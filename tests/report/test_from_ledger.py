"""The HTML report draws what report/document.py builds from ledger records: a run, the fleet."""

from __future__ import annotations

from typing import Any

from orchestrator import report
from orchestrator.ledger.records import EventRecord, HostRecord, RunDetail
from orchestrator.report import html as report_html
from tests.report.documents import SCRIPT
from tests.report.dom import parse

KESL = {
    "product": "kesl",
    "name": "Kaspersky Endpoint Security for Linux",
    "version": "12.0.0.6672",
    "kind": "installed",
    "evidence": {"package": "kesl"},
}


def _at(minute: int) -> str:
    return f"2026-11-25T12:{minute:02d}:00.000000+00:00"


def _detail() -> RunDetail:
    hosts = [
        HostRecord("a", "removed", None, [KESL], _at(1), _at(2), post_findings=[]),
        HostRecord("b", "failed", "verify still finds kesl", [KESL], _at(3), _at(4), [KESL]),
        HostRecord(SCRIPT, "unreachable", "connection refused", [], _at(3), _at(4)),
        HostRecord("d", None, None, [], None, None),
    ]
    events = [
        EventRecord(None, "batch_started", {"batch": 1, "hosts": ["a"]}, _at(1)),
        EventRecord(None, "batch_started", {"batch": 2, "hosts": ["b", SCRIPT, "d"]}, _at(3)),
        EventRecord(None, "halted", {"budget": 1, "spent_by": ["b", SCRIPT]}, _at(5)),
    ]
    return RunDetail(
        id="20261125T120000Z-0001",
        kind="run",
        status="halted",
        started=_at(0),
        finished=_at(5),
        operator="ops",
        command_line="kremove run -i fleet.yml --batches 1,100%",
        inventory_digest="sha256:00",
        playbook_version="1",
        meta={"groups": {"a": ["linux"], "b": ["linux"], SCRIPT: ["dmz"]}},
        hosts=hosts,
        steps=[],
        events=events,
    )


def test_a_run_report_draws_as_built() -> None:
    document = report.run_report(_detail())
    page = parse(report_html.render(document))
    bars = page.by_id("status-chart").find_all("rect", data_status=None)
    assert {b.attrs["data-status"]: int(b.attrs["data-count"]) for b in bars} == document["counts"]
    assert document["counts"] == {"failed": 1, "pending": 1, "removed": 1, "unreachable": 1}
    marks = page.by_id("timeline").find_all("rect", data_batch=None)
    assert [m.attrs["data-batch"] for m in marks] == ["1", "2"]
    assert page.by_id("events").find_all("tr", data_event="halted")
    groups = page.by_id("groups").find_all("g", data_group=None)
    assert {g.attrs["data-group"] for g in groups} == set(document["groups"])
    terms = {
        t.attrs["data-term"]: int(t.attrs["data-count"])
        for t in page.by_id("directive").find_all(data_term=None)
    }
    assert terms["removed"] == document["directive"]["removed"] == 1
    assert terms["remaining"] == document["directive"]["remaining"] == 1
    rows = page.by_id("hosts").find_all("tr", data_host=None)
    assert [r.attrs["data-host"] for r in rows] == ["a", "b", SCRIPT, "d"]


def _outcome(run: str, host: str, status: str, minute: int, **extra: Any) -> dict[str, Any]:
    return {
        "run": run,
        "run_started": _at(minute - 1),
        "host": host,
        "status": status,
        "reason": extra.get("reason"),
        "findings": extra.get("findings", []),
        "post_findings": extra.get("post_findings"),
        "started": _at(minute),
        "finished": _at(minute),
    }


def test_a_fleet_report_draws_as_built() -> None:
    outcomes = [
        _outcome("r1", "a", "found", 1, findings=[KESL]),
        _outcome("r1", "b", "found", 1, findings=[KESL]),
        _outcome("r2", "a", "removed", 10, findings=[KESL], post_findings=[]),
        _outcome("r2", "b", "timeout", 10, findings=[KESL], reason="remove timed out"),
    ]
    document = report.fleet_report(outcomes)
    page = parse(report_html.render(document))
    marks = page.by_id("timeline").find_all("rect", data_run=None)
    assert [m.attrs["data-run"] for m in marks] == ["r1", "r2"]
    bars = page.by_id("status-chart").find_all("rect", data_status=None)
    assert {b.attrs["data-status"]: int(b.attrs["data-count"]) for b in bars} == {
        "removed": 1,
        "timeout": 1,
    }
    assert "r2" in page.find_all("title")[0].text()
    assert page.by_id("failures").find_all("tr", data_host="b")
