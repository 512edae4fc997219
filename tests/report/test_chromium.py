"""The report as a browser draws it: Debian's headless Chromium loads the file (file:// only, no
network) and we read back the rendered DOM and a 1280 px screenshot.

Chromium is installed with apt-get when missing (root only); without it the tests are skipped,
except in CI (CI=true), where that is a failure. The install happens in the fixture, so pytest's
--durations shows its time apart from the tests'.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.report import html as report_html
from tests.report import chromium, png
from tests.report import documents as docs
from tests.report.dom import Element, parse

# The install may take minutes on a cold machine; chromium.RUN_TIMEOUT bounds each Chromium run.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def browser() -> str:
    began = time.monotonic()
    try:
        binary, install_seconds = chromium.ensure()
    except chromium.ChromiumUnavailable as error:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"headless Chromium is required in CI: {error}", pytrace=False)
        pytest.skip(f"no headless Chromium: {error}")
    if install_seconds:
        print(f"\ninstalled chromium in {time.monotonic() - began:.1f} s")
    return binary


@pytest.fixture(scope="module")
def rendered(
    browser: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Element, png.Image]]:
    """The run report's DOM after Chromium parsed it, and its screenshot: one page load each."""
    workdir = tmp_path_factory.mktemp("chromium")
    page = workdir / "report.html"
    page.write_text(report_html.render(docs.run_document()), encoding="utf-8")
    url = page.resolve().as_uri()
    dom = chromium.run(browser, workdir / "profile", "--dump-dom", url).stdout
    shot = workdir / "report.png"
    chromium.run(
        browser, workdir / "profile", f"--screenshot={shot}", "--window-size=1280,2000", url
    )
    yield parse(dom), png.decode(shot.read_bytes())
    shutil.rmtree(workdir / "profile", ignore_errors=True)


def test_the_rendered_dom_has_the_charts(rendered: tuple[Element, png.Image]) -> None:
    dom, _ = rendered
    document = docs.run_document()
    status_svg = dom.by_id("status-chart").find_all("svg")
    assert len(status_svg) == 1
    bars = status_svg[0].find_all("rect", data_status=None)
    assert {b.attrs["data-status"]: int(b.attrs["data-count"]) for b in bars} == document["counts"]
    for section in ("groups", "products", "timeline"):
        assert len(dom.by_id(section).find_all("svg")) == 1, section
    assert len(dom.by_id("timeline").find_all("rect", data_batch=None)) == 3
    groups = dom.by_id("groups").find_all("g", data_group=None)
    assert {g.attrs["data-group"] for g in groups} == set(document["groups"])
    hosts = dom.by_id("hosts").find_all("tr", data_host=None)
    assert len(hosts) == len(document["hosts"])


def test_hostile_text_did_not_become_markup_in_the_browser(
    rendered: tuple[Element, png.Image],
) -> None:
    dom, _ = rendered
    assert not dom.find_all("script") and not dom.find_all("img")
    assert not [(e.tag, a) for e in dom.iter() for a in e.attrs if a.startswith("on")]
    assert dom.by_id("hosts").find_all("tr", data_host=docs.SCRIPT)
    assert docs.BREAKOUT in dom.by_id("failures").text()


def test_the_screenshot_shows_the_status_bars(rendered: tuple[Element, png.Image]) -> None:
    _, image = rendered
    assert (image.width, image.height) == (1280, 2000)
    assert image.pixel(2, 2) == (255, 255, 255)  # the page's background
    # Each solid status bar is painted in its colour, in the top half of the page ...
    widths = {
        status: _widest_bar(image, report_html.COLOURS[status], image.height // 2)
        for status in ("clean", "removed", "reboot_pending", "skipped")
    }
    assert all(w > 100 for w in widths.values()), widths
    # ... and as long as its count says: removed (2 hosts) is twice reboot_pending (1 host).
    assert widths["removed"] / widths["reboot_pending"] == pytest.approx(2, abs=0.03)
    assert widths["reboot_pending"] == pytest.approx(widths["skipped"], abs=2)


def _widest_bar(image: png.Image, hex_colour: str, below: int) -> int:
    """The longest horizontal run of exactly ``hex_colour`` in the rows above ``below``."""
    pixel = bytes.fromhex(hex_colour.lstrip("#")) + b"\xff" * (image.channels - 3)
    best = 0
    for row in image.rows[:below]:
        start = row.find(pixel * 20)
        while start >= 0 and start % image.channels:  # a match across two pixels
            start = row.find(pixel * 20, start + 1)
        if start < 0:
            continue
        end = start
        while row[end : end + image.channels] == pixel:
            end += image.channels
        best = max(best, (end - start) // image.channels)
    return best


def test_a_page_without_a_report_draws_nothing(tmp_path: Path, browser: str) -> None:
    """The screenshot check above is not vacuous: an empty page is all background."""
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><title>blank</title>", encoding="utf-8")
    shot = tmp_path / "blank.png"
    chromium.run(
        browser,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1280,600",
        page.resolve().as_uri(),
    )
    image = png.decode(shot.read_bytes())
    assert {image.pixel(x, y) for x in range(0, 1280, 10) for y in range(0, 600, 10)} == {
        (255, 255, 255)
    }
