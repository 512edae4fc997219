"""The CSV report: one row per host of a report document (document.py)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from orchestrator.textsafe import csv_cell

CSV_COLUMNS = (
    "run",
    "host",
    "groups",
    "status",
    "reason",
    "found",
    "remaining",
    "started",
    "finished",
)


def to_csv(report: Mapping[str, Any]) -> str:
    """One row per host. Host names, groups, reasons and versions come from inventories and hosts:
    each cell is written as text a spreadsheet will not run (textsafe.csv_cell)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for h in report["hosts"]:
        row = [
            h["run"],
            h["host"],
            ";".join(h["groups"]),
            h["status"],
            h["reason"] or "",
            ";".join(f["label"] for f in h["found"]),
            ";".join(f["label"] for f in h["remaining"]),
            h["started"] or "",
            h["finished"] or "",
        ]
        writer.writerow([csv_cell(cell) for cell in row])
    return buffer.getvalue()
