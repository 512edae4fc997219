"""How the ledger's failures read: one line that names the file and says what to do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from orchestrator.errors import LedgerError
from orchestrator.ledger.paths import ENV_VAR


def one_line(message: str) -> str:
    """``message`` with line breaks escaped: a name holding one cannot forge an output line."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


def ledger_error(path: Path, exc: sqlite3.Error, doing: str) -> LedgerError:
    """Turn a sqlite3 error into a one-line message that names the ledger and what to do."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    detail = str(exc)
    if name == "SQLITE_NOTADB" or "not a database" in detail:
        message = (
            f"ledger {path} is not a SQLite database; move it aside or choose another file"
            f" with --ledger or ${ENV_VAR}"
        )
    elif name.startswith("SQLITE_CORRUPT"):
        message = (
            f"ledger {path} is damaged ({detail}); keep a copy for the auditors and start a"
            " new ledger with --ledger"
        )
    elif name.startswith("SQLITE_READONLY") or "readonly" in detail:
        message = (
            f"ledger {path} is read-only ({detail}); make it and its directory writable"
            f" or choose another location with --ledger or ${ENV_VAR}"
        )
    elif name.startswith("SQLITE_CANTOPEN") or "unable to open" in detail:
        message = (
            f"ledger {path} cannot be opened ({detail}); check that it is a readable, writable"
            f" file in a writable directory, or choose another with --ledger or ${ENV_VAR}"
        )
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        message = (
            f"ledger {path} is locked by another process while {doing}; retry when it finishes"
        )
    elif name.startswith("SQLITE_FULL"):
        message = f"ledger {path}: disk full while {doing}; free space and retry"
    else:
        message = f"ledger {path}: {doing} failed: {detail}"
    return LedgerError(one_line(message))
