"""What the ledger's writes and queries share: one connection, one lock, short transactions."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

from orchestrator.errors import LedgerError
from orchestrator.ledger.errors import ledger_error


class Session:
    """An open ledger file. Safe to share between threads; every call is one transaction."""

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        key: bytes | None = None,
        notes: tuple[str, ...] = (),
    ) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.Lock()
        self._key = key  # signs the hash chain (HMAC-SHA-256); None: plain SHA-256
        self._notes = notes

    @property
    def path(self) -> Path:
        return self._path

    @property
    def notes(self) -> tuple[str, ...]:
        """What opening changed that the operator should be told (a ledger made private)."""
        return self._notes

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                try:
                    conn.close()
                except sqlite3.Error as exc:
                    raise ledger_error(self._path, exc, "closing") from exc

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _transaction(self, doing: str, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One locked transaction; sqlite3 errors leave as LedgerError naming the path."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise LedgerError(f"ledger {self._path} is closed ({doing})")
            try:
                # IMMEDIATE takes the write lock up front, so COMMIT cannot fail on a busy reader.
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.rollback()
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise ledger_error(self._path, exc, doing) from exc
