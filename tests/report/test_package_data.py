"""The HTML report's page and stylesheet are package data: found through importlib.resources, as
an installed wheel finds them, and declared in pyproject.toml so that the wheel carries them."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path

from orchestrator.report import html as report_html
from tests.report import documents as docs

ROOT = Path(__file__).resolve().parents[2]


def _templates() -> resources.abc.Traversable:
    return resources.files("orchestrator.report") / "templates"


def test_the_package_finds_its_templates_as_resources() -> None:
    page = _templates() / report_html.TEMPLATE
    assert page.is_file() and (_templates() / "report.css").is_file()
    assert page.read_text(encoding="utf-8").count("<!DOCTYPE html>") == 1


def test_the_stylesheet_is_inlined_from_its_file() -> None:
    css = (_templates() / "report.css").read_text(encoding="utf-8")
    assert "@media print" in css
    assert css.strip() in report_html.render(docs.run_document())


def test_pyproject_ships_every_template_file() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["orchestrator.report"]
    names = [entry.name for entry in _templates().iterdir() if entry.is_file()]
    assert names
    for name in names:
        assert any(fnmatch(f"templates/{name}", p) for p in patterns), name


def test_importing_the_report_package_does_not_load_jinja2() -> None:
    # The CLI imports orchestrator.report at start; only --format html needs the template engine.
    probe = "import sys, orchestrator.report; print('jinja2' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"
