"""The HTML report (orchestrator/report/html.py) on hand-built documents: sections, chart data,
escaping, self-containment."""

from __future__ import annotations

import re
from typing import Any

import pytest

from orchestrator.report import html as report_html
from tests.report import documents as docs
from tests.report.dom import Element, parse

SECTIONS = (
    "header",
    "status-chart",
    "groups",
    "products",
    "failures",
    "timeline",
    "directive",
    "hosts",
)


def _page(document: dict[str, Any]) -> tuple[str, Element]:
    markup = report_html.render(document)
    return markup, parse(markup)


@pytest.fixture(params=["run", "fleet"])
def document(request: pytest.FixtureRequest) -> dict[str, Any]:
    return docs.run_document() if request.param == "run" else docs.fleet_document()


def test_every_section_is_present_once(document: dict[str, Any]) -> None:
    _, page = _page(document)
    for ident in SECTIONS:
        page.by_id(ident)
    body = page.find_all("body")[0]
    assert body.attrs["data-scope"] == document["scope"]
    assert body.attrs["data-schema"] == "kremove.report/1"
    for ident in SECTIONS[1:]:
        assert page.by_id(ident).tag == "section"
        assert page.by_id(ident).find_all("h2"), ident
    assert len(page.find_all("svg")) >= 4  # status, groups, products, timeline


def test_status_chart_has_one_bar_per_status_with_the_documents_counts(
    document: dict[str, Any],
) -> None:
    _, page = _page(document)
    svg = page.by_id("status-chart").find_all("svg")[0]
    bars = svg.find_all("rect", data_status=None)
    assert {r.attrs["data-status"]: int(r.attrs["data-count"]) for r in bars} == document["counts"]
    assert len(bars) == len(document["counts"])
    # Colour is never the only cue: each bar's status and count are written in the chart.
    text = svg.text()
    for status, count in document["counts"].items():
        assert status in text
        assert f"{count} (" in text
    assert page.by_id("status-chart").attrs["data-total"] == str(len(document["hosts"]))


def test_status_bars_are_as_long_as_their_counts_say() -> None:
    _, page = _page(docs.run_document())
    bars = page.by_id("status-chart").find_all("rect", data_status=None)
    widths = {r.attrs["data-status"]: float(r.attrs["width"]) for r in bars}
    assert widths["removed"] == report_html.BAR_W  # the largest count fills the bar
    assert widths["clean"] == pytest.approx(widths["removed"] / 2)


def test_failure_statuses_are_hatched_as_well_as_coloured() -> None:
    _, page = _page(docs.run_document())
    svg = page.by_id("status-chart").find_all("svg")[0]
    hatches = [r for r in svg.find_all("rect") if r.attrs.get("class") == "hatch"]
    failures = [s for s in docs.run_document()["counts"] if s in report_html.HATCHED]
    assert len(hatches) == len(failures) == 3  # failed, unreachable, timeout


def test_groups_carry_their_progress(document: dict[str, Any]) -> None:
    _, page = _page(document)
    rows = page.by_id("groups").find_all("g", data_group=None)
    got = {
        g.attrs["data-group"]: {k: int(g.attrs[f"data-{k}"]) for k in ("hosts", "done", "failed")}
        for g in rows
    }
    assert got == document["groups"]
    linux = next(g for g in rows if g.attrs["data-group"] == "linux") if "linux" in got else None
    if linux is not None:
        done = linux.find_all("rect", data_part="done")[0]
        assert float(done.attrs["width"]) == report_html.BAR_W  # 3 of 3


def test_products_in_table_and_bars(document: dict[str, Any]) -> None:
    _, page = _page(document)
    section = page.by_id("products")
    want = [(p["product"], p["version"], p["hosts"]) for p in document["products"]]
    bars = section.find_all("rect", data_product=None)
    rows = section.find_all("tr", data_product=None)
    for found in (bars, rows):
        got = [
            (e.attrs["data-product"], e.attrs["data-version"], int(e.attrs["data-count"]))
            for e in found
        ]
        assert got == want
    assert section.attrs["data-count"] == str(len(want))


def test_failures_table_lists_every_failure_with_its_reason(document: dict[str, Any]) -> None:
    _, page = _page(document)
    rows = page.by_id("failures").find_all("tr", data_host=None)
    assert [r.attrs["data-host"] for r in rows] == [f["host"] for f in document["failures"]]
    for row, failure in zip(rows, document["failures"], strict=True):
        assert row.attrs["data-status"] == failure["status"]
        assert (failure["reason"] or "—") in row.text()


def test_run_timeline_has_a_mark_per_batch_positioned_by_time() -> None:
    document = docs.run_document()
    _, page = _page(document)
    marks = page.by_id("timeline").find_all("rect", data_batch=None)
    assert [int(m.attrs["data-batch"]) for m in marks] == [1, 2, 3]
    assert [int(m.attrs["data-hosts"]) for m in marks] == [1, 2, 5]
    assert {m.attrs["data-positioned"] for m in marks} == {"time"}
    x = [float(m.attrs["x"]) for m in marks]
    # Starts 12:00:01, 12:02:00, 12:06:00 on a run from 12:00:00 to 12:10:30.
    assert x[0] < x[1] < x[2]
    assert (x[1] - x[0]) / (x[2] - x[0]) == pytest.approx(119 / 359, abs=0.01)
    # A batch lasts until the next starts: batch 2 is twice as long as batch 1.
    widths = [float(m.attrs["width"]) for m in marks]
    assert widths[1] / widths[0] == pytest.approx(240 / 119, abs=0.02)
    halted = page.by_id("timeline").find_all("g", data_event="halted")
    assert len(halted) == 1


def test_fleet_timeline_shows_runs() -> None:
    document = docs.fleet_document()
    _, page = _page(document)
    section = page.by_id("timeline")
    marks = section.find_all("rect", data_run=None)
    assert [m.attrs["data-run"] for m in marks] == [r["id"] for r in document["runs"]]
    assert not section.find_all(data_batch=None)
    x = [float(m.attrs["x"]) for m in marks]
    assert x == sorted(x) and x[0] < x[-1]


def test_unreadable_times_keep_the_order() -> None:
    document = docs.run_document()
    for b in document["batches"]:
        b["started"] = "yesterday-ish"
    _, page = _page(document)
    marks = page.by_id("timeline").find_all("rect", data_batch=None)
    assert {m.attrs["data-positioned"] for m in marks} == {"order"}
    x = [float(m.attrs["x"]) for m in marks]
    assert x == sorted(x)


def test_directive_terms_and_runs(document: dict[str, Any]) -> None:
    _, page = _page(document)
    section = page.by_id("directive")
    terms = section.find_all(data_term=None)
    counts = {t.attrs["data-term"]: int(t.attrs["data-count"]) for t in terms}
    directive = document["directive"]
    assert counts == {k: directive[k] for k in counts}
    assert list(counts) == ["identified", "planned", "removed", "remaining", "failed", "exceptions"]
    for term in terms:  # each term explains itself in a line
        assert term.find_all("p") and len(term.find_all("p")[0].text()) > 30
    runs = section.find_all("tr", data_run=None)
    assert [r.attrs["data-run"] for r in runs] == [r["id"] for r in directive["runs"]]
    assert "30 days" in section.text() and "60" in section.text() and "90 days" in section.text()


def test_hosts_table_has_every_host(document: dict[str, Any]) -> None:
    _, page = _page(document)
    rows = page.by_id("hosts").find_all("tr", data_host=None)
    assert [r.attrs["data-host"] for r in rows] == [h["host"] for h in document["hosts"]]
    assert [r.attrs["data-status"] for r in rows] == [h["status"] for h in document["hosts"]]
    for row, host in zip(rows, document["hosts"], strict=True):
        assert int(row.attrs["data-found"]) == len(host["found"])
        assert int(row.attrs["data-remaining"]) == len(host["remaining"])
        for finding in host["found"]:
            assert finding["label"] in row.text()


def test_header_and_title_name_the_run() -> None:
    document = docs.run_document()
    _, page = _page(document)
    run = document["run"]
    title = page.find_all("title")[0].text()
    assert run["id"] in title
    header = page.by_id("header")
    assert header.attrs["data-run"] == run["id"]
    text = header.text()
    for field in ("operator", "command_line", "inventory_digest", "playbook_version"):
        assert run[field] in text, field
    assert "2025-03-01 12:00:00 UTC" in text and "2025-03-01 12:10:30 UTC" in text


def test_fleet_title_names_the_latest_run() -> None:
    _, page = _page(docs.fleet_document())
    assert docs.FLEET_RUNS[-1][0] in page.find_all("title")[0].text()
    assert page.by_id("header").attrs["data-runs"] == "3"


def test_hostile_text_stays_text(document: dict[str, Any]) -> None:
    markup, page = _page(document)
    # No element or attribute came from the document's text ...
    assert {e.tag for e in page.iter()} <= ALLOWED_TAGS
    assert not [(e.tag, a) for e in page.iter() for a in e.attrs if a.startswith("on")]
    assert not re.search(r"<\s*(script|img|iframe|object|embed|link)\b", markup, re.I)
    # ... and it is all there, as text and as attribute values.
    hosts = page.by_id("hosts")
    assert docs.SCRIPT in hosts.text() and docs.UNICODE in hosts.text()
    assert docs.BREAKOUT in page.by_id("failures").text()
    assert hosts.find_all("tr", data_host=docs.SCRIPT)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in markup
    assert docs.UNICODE in markup  # written as itself, not as character references
    if document["scope"] == "run":
        assert docs.AMP in page.by_id("groups").text()
        assert "R&amp;D &amp; ops" in markup
        assert docs.SCRIPT in page.by_id("header").text()  # the command line


ALLOWED_TAGS = frozenset(
    {"#document", "html", "head", "meta", "title", "style", "body", "header", "nav", "main"}
    | {"section", "footer", "h1", "h2", "h3", "p", "dl", "dt", "dd", "div", "span", "strong"}
    | {"small", "code", "time", "br", "a", "ul", "li", "table", "thead", "tbody", "tr", "th"}
    | {"td", "svg", "defs", "pattern", "rect", "line", "g", "text", "title"}
)


def test_the_page_is_self_contained(document: dict[str, Any]) -> None:
    markup, page = _page(document)
    assert "http://" not in markup and "https://" not in markup
    assert "@import" not in markup and "@font-face" not in markup
    assert re.findall(r"url\(([^)]*)\)", markup) and all(
        u.startswith("#") for u in re.findall(r"url\(([^)]*)\)", markup)
    )
    assert not [e for e in page.iter() if "src" in e.attrs or "srcset" in e.attrs]
    assert all(a.attrs["href"].startswith("#") for a in page.find_all("a"))
    assert not page.find_all("script")


def test_surrogates_and_control_characters_do_not_break_the_file() -> None:
    document = docs.run_document()
    document["hosts"][0]["reason"] = "bad \udcff byte \x1b[31mred\x00 \x9b2J"
    document["hosts"][0]["host"] = "web-01\ud800"
    markup = report_html.render(document)
    markup.encode("utf-8")  # no lone surrogate left
    assert "\x1b" not in markup and "\x00" not in markup and "\x9b" not in markup  # C1 CSI too
    assert "byte \ufffd[31mred\ufffd \ufffd2J" in markup


def test_an_empty_run_renders_every_section() -> None:
    document = {
        "schema": "kremove.report/1",
        "scope": "run",
        "run": {"id": "r-empty", "kind": "detect", "status": "running", "started": None},
        "counts": {},
        "products": [],
        "groups": {},
        "failures": [],
        "batches": [],
        "events": [],
        "directive": {"runs": []},
        "hosts": [],
    }
    _, page = _page(document)
    for ident in SECTIONS:
        page.by_id(ident)
    assert not page.by_id("status-chart").find_all("rect", data_status=None)
    assert "r-empty" in page.find_all("title")[0].text()


def test_unknown_statuses_still_get_a_bar() -> None:
    document = docs.run_document()
    document["counts"]["pending"] = 2
    document["counts"]["something_new"] = 1
    _, page = _page(document)
    bars = page.by_id("status-chart").find_all("rect", data_status=None)
    assert [b.attrs["data-status"] for b in bars][-2:] == ["pending", "something_new"]


def test_rendering_is_deterministic() -> None:
    assert report_html.render(docs.run_document()) == report_html.render(docs.run_document())


def test_print_and_width_rules_are_there() -> None:
    markup = report_html.render(docs.run_document())
    assert "@media print" in markup and "size: A4" in markup
    assert 'name="viewport"' in markup
