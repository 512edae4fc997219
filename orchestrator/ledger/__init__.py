"""The run ledger: every run, host outcome and step, durably in SQLite. The source of truth."""

from orchestrator.errors import LedgerError
from orchestrator.ledger.paths import ENV_VAR, resolve_ledger_path
from orchestrator.ledger.records import (
    RUN_STATUSES,
    HostRecord,
    RunDetail,
    RunNotFound,
    RunSummary,
    StepRecord,
    now,
)
from orchestrator.ledger.store import SCHEMA_VERSION, Ledger
from orchestrator.ledger.text import OUTPUT_LIMIT, bound_output

__all__ = [
    "ENV_VAR",
    "OUTPUT_LIMIT",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "HostRecord",
    "Ledger",
    "LedgerError",
    "RunDetail",
    "RunNotFound",
    "RunSummary",
    "StepRecord",
    "bound_output",
    "now",
    "resolve_ledger_path",
]
