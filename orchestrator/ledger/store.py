"""The run ledger: opening (or creating) the file, and the Ledger its callers hold.

Who speaks SQL: ``schema`` creates and migrates the tables, ``writes`` records runs, hosts, steps,
events and host locks (each with its hash-chain entry), ``queries`` reads them back, for the
Ledger and for ``audit``, which verifies a file read-only. The Ledger is the writes and the
queries over one connection (``session``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from orchestrator.errors import LedgerError
from orchestrator.ledger.errors import ledger_error, one_line
from orchestrator.ledger.paths import (
    ENV_VAR,
    create_private_file,
    ensure_private_dir,
    private_umask,
    restrict_side_files,
    secure_ledger_files,
)
from orchestrator.ledger.queries import LedgerQueries, signing
from orchestrator.ledger.schema import APPLICATION_ID, BUSY_TIMEOUT_S, SCHEMA_VERSION, prepare
from orchestrator.ledger.writes import LedgerWrites, start_signed

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "Ledger"]


class Ledger(LedgerWrites, LedgerQueries):
    """The run ledger. Safe to share between threads; every call is one committed transaction."""

    @classmethod
    def open(cls, path: Path, key: bytes | None = None) -> Ledger:
        """Open the ledger at ``path``, creating it (0600, in a 0700 directory) if needed.

        ``key`` signs the hash chain (HMAC-SHA-256). A ledger created with a key must always be
        written with it, and one created without cannot start using one. A directory or file
        someone else could have written is refused (InputError); see ``paths``.
        """
        path = Path(path)
        try:
            ensure_private_dir(path.parent)
            created = create_private_file(path)
        except OSError as exc:
            raise LedgerError(
                one_line(
                    f"ledger {path} cannot be created ({exc.strerror or exc}); "
                    f"choose a writable location with --ledger or ${ENV_VAR}"
                )
            ) from exc
        try:
            notes = secure_ledger_files(path)
        except OSError as exc:
            raise LedgerError(
                one_line(f"ledger {path} cannot be made private ({exc.strerror or exc})")
            ) from exc
        conn = _connect(path)
        if created:
            restrict_side_files(path)
        try:
            _check_signing(conn, path, key)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise ledger_error(path, exc, "opening") from exc
            raise
        return cls(path, conn, key, notes)


def _connect(path: Path) -> sqlite3.Connection:
    """A connection to the file, its schema brought up to date."""
    try:
        # SQLite creates the -wal and -shm files here; the umask keeps them private too.
        with private_umask():
            conn = sqlite3.connect(
                str(path),
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,
            )
            try:
                prepare(conn, path)
            except BaseException:
                conn.close()
                raise
    except sqlite3.Error as exc:
        raise ledger_error(path, exc, "opening") from exc
    return conn


def _check_signing(conn: sqlite3.Connection, path: Path, key: bytes | None) -> None:
    """Whether a ledger is signed is decided when its chain starts, for good."""
    signed = signing(conn) is not None if key is None else start_signed(conn, key)
    if signed and key is None:
        raise LedgerError(
            f"ledger {path} is signed; give its key with --sign-key-env VAR "
            "(or KREMOVE_SIGN_KEY_ENV=VAR)"
        )
    if not signed and key is not None:
        raise LedgerError(
            f"ledger {path} was created unsigned and cannot be signed now; start a new ledger "
            "(--ledger) to sign every record (if it was signed, it was tampered with: run "
            "kremove audit verify --sign-key-env VAR)"
        )
