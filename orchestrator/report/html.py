"""The HTML report: one self-contained page drawn from a ``kremove.report/1`` document.

Inline CSS and SVG only — no script, font, image or any other request leaves the file — so the page
can be mailed, archived and printed as it is. The page is templates/report.html.j2 with its
stylesheet templates/report.css, over the view that view.py, sections.py and charts.py prepare.
Jinja2 escapes every value; ``_finalize`` also makes each printable (host names, groups and reasons
come from inventories and hosts). Sections and their hooks: docs/reports.md.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

from orchestrator.report import sections
from orchestrator.report.charts import BAR_W
from orchestrator.report.style import COLOURS, HATCHED
from orchestrator.report.view import Header, Scope, header

__all__ = ["BAR_W", "COLOURS", "HATCHED", "TEMPLATE", "Page", "render"]

TEMPLATE = "report.html.j2"
# C0 but tab and line ends, DEL, and C1 (U+009B is CSI to a terminal, where the page goes without
# -o). Bidi controls stay: a browser confines them to the element that holds them.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True, kw_only=True)
class Page:
    schema: Any
    scope: Scope
    header: Header
    sections: tuple[sections.Section, ...]


def render(report: Mapping[str, Any]) -> str:
    """The whole page for one report document (run or fleet scope)."""
    return _environment().get_template(TEMPLATE).render(page=page(report))


def page(report: Mapping[str, Any]) -> Page:
    parts = [
        sections.status(report),
        sections.groups(report),
        sections.products(report),
        sections.failures(report),
        sections.timeline(report),
        sections.directive(report),
        sections.hosts(report),
    ]
    if report.get("events"):
        parts.insert(5, sections.events(report))
    return Page(
        schema=report.get("schema"),
        scope="fleet" if report.get("scope") == "fleet" else "run",
        header=header(report),
        sections=tuple(parts),
    )


@cache
def _environment() -> jinja2.Environment:
    # A plain environment, not the playbook sandbox: the template is ours, the document is data.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("orchestrator.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _finalize(value: Any) -> Markup:
    """Every printed value, escaped for text or attributes. None prints nothing; a lone surrogate
    (undecodable output) becomes "?" and a control character (terminal escapes) U+FFFD, instead of
    breaking the file's encoding. Markup is the template's own (a macro's output) and passes as
    it is; anything else is escaped here, with html.escape's entities, and autoescape leaves the
    result alone."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("")
    text = str(value).encode("utf-8", "replace").decode("utf-8")
    return Markup(html.escape(_CONTROL.sub("\ufffd", text), quote=True))
