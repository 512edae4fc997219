"""Figures for docs/reliability.md: tests that inject faults, kill runs or fuzz inputs count what
they did here; `./dev reliability` runs them with KREMOVE_FIGURES set and writes the page."""

from __future__ import annotations

import json
import os
import time
from typing import Any


def record(kind: str, **counts: Any) -> None:
    """Append one line of counts, when a figures file was asked for (otherwise nothing)."""
    path = os.environ.get("KREMOVE_FIGURES")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"kind": kind, "at": time.time(), **counts}) + "\n")


_COUNTS: dict[str, int] = {}


def count(name: str) -> None:
    """One more case of ``name`` (a fuzz target); written out once, at the end of the session."""
    _COUNTS[name] = _COUNTS.get(name, 0) + 1


def flush() -> None:
    for name, n in sorted(_COUNTS.items()):
        record("fuzz", target=name, cases=n)
    _COUNTS.clear()
