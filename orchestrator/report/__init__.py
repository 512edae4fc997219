"""Reports from the ledger, in one place: the document that is the JSON format (document.py), the
CSV (csv.py) and the self-contained HTML page (html.py, drawn by templates/). The console tables
are the CLI's. Field meanings and the HTML page's hooks: docs/reports.md.

Importing this package loads neither Jinja2 nor the HTML view: ``orchestrator.report.html`` does.
"""

from orchestrator.report.csv import CSV_COLUMNS, to_csv
from orchestrator.report.document import EXCEPTIONS, SCHEMA, fleet_report, run_report

__all__ = ["CSV_COLUMNS", "EXCEPTIONS", "SCHEMA", "fleet_report", "run_report", "to_csv"]
