"""The SQLite ledger: the only module that speaks SQL. One connection, one lock, short transactions.

A unit of work is a (run, host) pair: every write touches one run, or one host of one run, in one
transaction, so that a later hash chain can link records and a PostgreSQL store can mirror this one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from secrets import token_hex
from types import TracebackType
from typing import Any, Self

from orchestrator import __version__
from orchestrator.errors import LedgerError
from orchestrator.ledger.chain import (
    SIGNED_OP,
    SIGNING_ALGORITHM,
    canonical,
    chain_hash,
    sha256_text,
)
from orchestrator.ledger.paths import (
    ENV_VAR,
    create_private_file,
    ensure_private_dir,
    private_umask,
    restrict_side_files,
    secure_ledger_files,
)
from orchestrator.ledger.records import (
    HOST_STATUS_SHAPE,
    PENDING,
    RUN_STATUSES,
    RUNNING,
    EventRecord,
    HostRecord,
    RunDetail,
    RunNotFound,
    RunSummary,
    StepRecord,
    now,
)
from orchestrator.ledger.text import bound_output, safe_text

SCHEMA_VERSION = 2
# PRAGMA application_id: "krmv". Tells a kremove ledger from any other SQLite file.
APPLICATION_ID = 0x6B726D76
BUSY_TIMEOUT_S = 10.0
_RUN_ID_ATTEMPTS = 64

# Statements per schema version; version N is reached by running _MIGRATIONS[N] on version N-1.
_MIGRATIONS: Mapping[int, Sequence[str]] = {
    1: (
        """CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
        """CREATE TABLE runs (
            id               TEXT PRIMARY KEY,
            kind             TEXT NOT NULL,
            status           TEXT NOT NULL,
            operator         TEXT NOT NULL,
            command_line     TEXT NOT NULL,
            inventory_digest TEXT NOT NULL,
            playbook_version TEXT NOT NULL,
            meta             TEXT NOT NULL,  -- JSON object
            started          TEXT NOT NULL,
            finished         TEXT
        )""",
        "CREATE INDEX runs_by_start ON runs (started)",
        """CREATE TABLE run_hosts (
            run_id   TEXT NOT NULL REFERENCES runs (id),
            host     TEXT NOT NULL,
            position INTEGER NOT NULL,       -- order of selection, as given to start_run
            status   TEXT,                   -- NULL until the host has an outcome
            reason   TEXT,
            findings TEXT NOT NULL,          -- JSON array of objects
            started  TEXT,
            finished TEXT,
            PRIMARY KEY (run_id, host),
            UNIQUE (run_id, position)
        )""",
        # AUTOINCREMENT: a step key is never reused, even after a deletion an audit must notice.
        """CREATE TABLE steps (
            key       INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id    TEXT NOT NULL,
            host      TEXT NOT NULL,
            seq       INTEGER NOT NULL,      -- 1, 2, ... per (run, host)
            step_id   TEXT NOT NULL,
            kind      TEXT NOT NULL,
            readonly  INTEGER NOT NULL CHECK (readonly IN (0, 1)),
            command   TEXT NOT NULL,
            started   TEXT NOT NULL,
            finished  TEXT,                  -- NULL: journaled, outcome never recorded
            exit_code INTEGER,
            timed_out INTEGER NOT NULL DEFAULT 0 CHECK (timed_out IN (0, 1)),
            stdout    TEXT NOT NULL DEFAULT '',
            stderr    TEXT NOT NULL DEFAULT '',
            error     TEXT,
            FOREIGN KEY (run_id, host) REFERENCES run_hosts (run_id, host),
            UNIQUE (run_id, host, seq)
        )""",
    ),
    # 2: things that happened in a run beside steps: a host key pinned, a batch started, a halt.
    2: (
        """CREATE TABLE events (
            key     INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id  TEXT NOT NULL REFERENCES runs (id),
            host    TEXT,                    -- NULL for run-wide events; may name a jump host
            kind    TEXT NOT NULL,
            detail  TEXT NOT NULL,           -- JSON object
            at      TEXT NOT NULL
        )""",
        "CREATE INDEX events_by_run ON events (run_id, key)",
        # What detection found after removal (JSON array); NULL when nothing was removed.
        "ALTER TABLE run_hosts ADD COLUMN post_findings TEXT",
        # A dry run's reviewed steps per host (JSON array), which `run --plan` executes.
        "ALTER TABLE run_hosts ADD COLUMN plan TEXT",
        # One run works a host at a time; a second run skips it while the first holds it.
        # Every write above, in order, each entry hashing its predecessor (see ledger/audit.py).
        """CREATE TABLE journal (
            seq    INTEGER PRIMARY KEY,
            at     TEXT NOT NULL,
            run_id TEXT NOT NULL,
            op     TEXT NOT NULL,
            body   TEXT NOT NULL,                -- canonical JSON of what was written
            prev   TEXT NOT NULL,                -- hash of the previous entry ('' for the first)
            hash   TEXT NOT NULL                 -- SHA-256 (or HMAC-SHA-256) of prev and this entry
        )""",
        """CREATE TABLE host_locks (
            host     TEXT PRIMARY KEY,
            run_id   TEXT NOT NULL,
            node     TEXT NOT NULL,          -- hostname of the controller holding it
            pid      INTEGER NOT NULL,
            acquired TEXT NOT NULL
        )""",
    ),
}
assert max(_MIGRATIONS) == SCHEMA_VERSION

_SELECT_STEPS = """SELECT key, host, seq, step_id, kind, readonly, command, started, finished,
    exit_code, timed_out, stdout, stderr, error FROM steps WHERE run_id = ? ORDER BY key"""


class Ledger:
    """The run ledger. Safe to share between threads; every call is one committed transaction."""

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
        self._key = key
        self._notes = notes

    # -- opening and closing -------------------------------------------------------------------

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
                _one_line(
                    f"ledger {path} cannot be created ({exc.strerror or exc}); "
                    f"choose a writable location with --ledger or ${ENV_VAR}"
                )
            ) from exc
        try:
            notes = secure_ledger_files(path)
        except OSError as exc:
            raise LedgerError(
                _one_line(f"ledger {path} cannot be made private ({exc.strerror or exc})")
            ) from exc
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
                    _prepare(conn, path)
                except BaseException:
                    conn.close()
                    raise
        except sqlite3.Error as exc:
            raise _ledger_error(path, exc, "opening") from exc
        if created:
            restrict_side_files(path)
        try:
            _check_signing(conn, path, key)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise _ledger_error(path, exc, "opening") from exc
            raise
        return cls(path, conn, key, notes)

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
                    raise _ledger_error(self._path, exc, "closing") from exc

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------

    def start_run(
        self,
        *,
        kind: str,
        operator: str,
        command_line: str,
        inventory_digest: str,
        playbook_version: str,
        hosts: Sequence[str],
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        """Record a new run and its selected hosts (in order); return its id."""
        if isinstance(hosts, str):
            raise TypeError("hosts must be a sequence of host names, not one string")
        names = [safe_text(h) for h in hosts]
        if len(set(names)) != len(names):
            dupes = sorted({h for h in names if names.count(h) > 1})
            raise ValueError(f"hosts selected more than once: {', '.join(dupes)}")
        meta_json = _to_json(dict(meta or {}))
        with self._transaction("recording a new run") as conn:
            started = now()
            run_id = _unused_run_id(conn, started)
            conn.execute(
                "INSERT INTO runs (id, kind, status, operator, command_line, inventory_digest,"
                " playbook_version, meta, started) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    safe_text(kind),
                    RUNNING,
                    safe_text(operator),
                    safe_text(command_line),
                    safe_text(inventory_digest),
                    safe_text(playbook_version),
                    meta_json,
                    started,
                ),
            )
            conn.executemany(
                "INSERT INTO run_hosts (run_id, host, position, findings) VALUES (?, ?, ?, '[]')",
                [(run_id, name, i) for i, name in enumerate(names)],
            )
            self._journal(
                conn,
                run_id,
                "run_started",
                {
                    "kind": safe_text(kind),
                    "operator": safe_text(operator),
                    "command_line": safe_text(command_line),
                    "inventory_digest": safe_text(inventory_digest),
                    "playbook_version": safe_text(playbook_version),
                    "meta": json.loads(meta_json),
                    "started": started,
                    "hosts": names,
                },
            )
        return run_id

    def step_started(
        self, run_id: str, host: str, *, step_id: str, kind: str, readonly: bool, command: str
    ) -> int:
        """Journal a step before its command is sent (committed on return); return the step key."""
        host = safe_text(host)
        with self._transaction(f"journaling step {step_id!r} on {host!r}") as conn:
            self._require_host(conn, run_id, host)
            (seq,) = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM steps WHERE run_id = ? AND host = ?",
                (run_id, host),
            ).fetchone()
            started = now()
            cur = conn.execute(
                "INSERT INTO steps (run_id, host, seq, step_id, kind, readonly, command, started)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    host,
                    seq,
                    safe_text(step_id),
                    safe_text(kind),
                    int(bool(readonly)),
                    safe_text(command),
                    started,
                ),
            )
            conn.execute(
                "UPDATE run_hosts SET started = COALESCE(started, ?) WHERE run_id = ? AND host = ?",
                (started, run_id, host),
            )
            key = cur.lastrowid
            assert key is not None
            self._journal(
                conn,
                run_id,
                "step_started",
                {
                    "key": key,
                    "host": host,
                    "seq": seq,
                    "step_id": safe_text(step_id),
                    "kind": safe_text(kind),
                    "readonly": bool(readonly),
                    "command": safe_text(command),
                    "started": started,
                },
            )
        return key

    def step_finished(
        self,
        step_key: int,
        *,
        exit_code: int | None,
        stdout: str,
        stderr: str,
        timed_out: bool,
        error: str | None = None,
    ) -> None:
        """Record a journaled step's outcome; output is bounded (see ``text.bound_output``)."""
        out, err = bound_output(stdout), bound_output(stderr)
        error = None if error is None else safe_text(error)
        with self._transaction(f"recording the outcome of step {step_key}") as conn:
            finished = now()
            cur = conn.execute(
                "UPDATE steps SET finished = ?, exit_code = ?, timed_out = ?, stdout = ?,"
                " stderr = ?, error = ? WHERE key = ? AND finished IS NULL",
                (finished, exit_code, int(bool(timed_out)), out, err, error, step_key),
            )
            if cur.rowcount == 0:
                exists = conn.execute("SELECT 1 FROM steps WHERE key = ?", (step_key,)).fetchone()
                what = "is already finished" if exists else "was never started"
                raise LedgerError(f"ledger {self._path}: step {step_key} {what}")
            (run_id,) = conn.execute(
                "SELECT run_id FROM steps WHERE key = ?", (step_key,)
            ).fetchone()
            self._journal(
                conn,
                run_id,
                "step_finished",
                {
                    "key": step_key,
                    "finished": finished,
                    "exit_code": exit_code,
                    "timed_out": bool(timed_out),
                    "stdout_sha256": sha256_text(out),
                    "stderr_sha256": sha256_text(err),
                    "error": error,
                },
            )

    def host_finished(
        self,
        run_id: str,
        host: str,
        *,
        status: str,
        reason: str | None,
        findings: Sequence[Mapping[str, Any]],
        post_findings: Sequence[Mapping[str, Any]] | None = None,
        plan: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Record a host's outcome in a run; a later call for the same host replaces it.

        ``findings`` is the pre-state (what detection found first); ``post_findings`` what the
        verification found after removal, when there was one.
        """
        if not HOST_STATUS_SHAPE.fullmatch(status) or status == PENDING:
            raise ValueError(f"host status {status!r} is not a lowercase word but {PENDING!r}")
        host = safe_text(host)
        findings_json = _to_json([dict(f) for f in findings])
        post_json = None if post_findings is None else _to_json([dict(f) for f in post_findings])
        plan_json = None if plan is None else _to_json([dict(s) for s in plan])
        reason = None if reason is None else safe_text(reason)
        with self._transaction(f"recording the outcome of {host!r}") as conn:
            self._require_host(conn, run_id, host)
            finished = now()
            conn.execute(
                "UPDATE run_hosts SET status = ?, reason = ?, findings = ?, post_findings = ?,"
                " plan = ?, finished = ?,"
                " started = COALESCE(started, ?) WHERE run_id = ? AND host = ?",
                (
                    status,
                    reason,
                    findings_json,
                    post_json,
                    plan_json,
                    finished,
                    finished,
                    run_id,
                    host,
                ),
            )
            self._journal(
                conn,
                run_id,
                "host_finished",
                {
                    "host": host,
                    "status": status,
                    "reason": reason,
                    "findings": json.loads(findings_json),
                    "post_findings": None if post_json is None else json.loads(post_json),
                    "plan": None if plan_json is None else json.loads(plan_json),
                    "finished": finished,
                },
            )

    def record_event(
        self, run_id: str, host: str | None, kind: str, detail: Mapping[str, Any]
    ) -> None:
        """Record something that happened in a run outside any step (a host key pinned, ...)."""
        host = None if host is None else safe_text(host)
        with self._transaction(f"recording a {kind} event") as conn:
            exists = conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone()
            if exists is None:
                raise LedgerError(f"ledger {self._path}: run {run_id!r} was never started")
            detail_json = _to_json(dict(detail))
            at = now()
            cur = conn.execute(
                "INSERT INTO events (run_id, host, kind, detail, at) VALUES (?, ?, ?, ?, ?)",
                (run_id, host, safe_text(kind), detail_json, at),
            )
            self._journal(
                conn,
                run_id,
                "event",
                {
                    "key": cur.lastrowid,
                    "host": host,
                    "kind": safe_text(kind),
                    "detail": json.loads(detail_json),
                    "at": at,
                },
            )

    def reopen_run(self, run_id: str) -> None:
        """A halted, paused or interrupted run continues (``--resume``): running again."""
        with self._transaction(f"reopening run {run_id!r}") as conn:
            conn.execute(
                "UPDATE runs SET status = ?, finished = NULL WHERE id = ?", (RUNNING, run_id)
            )
            self._journal(conn, run_id, "run_reopened", {})

    def lock_host(self, run_id: str, host: str, node: str, pid: int) -> str | None:
        """Take ``host`` for ``run_id``; None when taken, else the run that holds it.

        A lock whose run is no longer running, or whose process on this node is gone, is stale
        and taken over: a crashed kremove does not keep hosts locked.
        """
        import os

        host = safe_text(host)
        with self._transaction(f"locking {host!r}") as conn:
            row = conn.execute(
                "SELECT l.run_id, l.node, l.pid, r.status FROM host_locks l"
                " LEFT JOIN runs r ON r.id = l.run_id WHERE l.host = ?",
                (host,),
            ).fetchone()
            if row is not None and row[0] != run_id:
                holder, holder_node, holder_pid, holder_status = row
                alive = holder_status == RUNNING and (
                    holder_node != node or _pid_alive(int(holder_pid), os)
                )
                if alive:
                    return str(holder)
            conn.execute(
                "INSERT OR REPLACE INTO host_locks (host, run_id, node, pid, acquired)"
                " VALUES (?, ?, ?, ?, ?)",
                (host, run_id, node, pid, now()),
            )
        return None

    def unlock_host(self, run_id: str, host: str) -> None:
        with self._transaction(f"unlocking {host!r}") as conn:
            conn.execute(
                "DELETE FROM host_locks WHERE host = ? AND run_id = ?", (safe_text(host), run_id)
            )

    def finish_run(self, run_id: str, status: str) -> None:
        """Close a run with its final status (completed, halted, paused, interrupted, failed)."""
        if status not in RUN_STATUSES:
            raise ValueError(
                f"unknown run status {status!r}; known: {', '.join(sorted(RUN_STATUSES))}"
            )
        with self._transaction(f"finishing run {run_id!r}") as conn:
            finished = now()
            cur = conn.execute(
                "UPDATE runs SET status = ?, finished = ? WHERE id = ?", (status, finished, run_id)
            )
            if cur.rowcount == 0:
                raise LedgerError(f"ledger {self._path}: run {run_id!r} was never started")
            self._journal(conn, run_id, "run_finished", {"status": status, "finished": finished})

    # -- reading -------------------------------------------------------------------------------

    def list_runs(self, limit: int = 50) -> list[RunSummary]:
        """The ``limit`` most recent runs, newest first, with host counts by status."""
        limit = max(int(limit), 0)
        newest = "SELECT id FROM runs ORDER BY started DESC, id DESC LIMIT ?"
        with self._transaction("listing runs", write=False) as conn:
            rows = conn.execute(
                "SELECT id, kind, status, started, finished, operator FROM runs"
                " ORDER BY started DESC, id DESC LIMIT ?",
                (limit,),
            ).fetchall()
            counts: dict[str, dict[str, int]] = {row[0]: {} for row in rows}
            for run_id, status, n in conn.execute(
                f"SELECT run_id, COALESCE(status, ?), COUNT(*) FROM run_hosts"
                f" WHERE run_id IN ({newest}) GROUP BY run_id, status",
                (PENDING, limit),
            ):
                counts[run_id][status] = n
        return [
            RunSummary(
                id=run_id,
                kind=kind,
                status=status,
                started=started,
                finished=finished,
                operator=operator,
                hosts_selected=sum(counts[run_id].values()),
                counts=counts[run_id],
            )
            for run_id, kind, status, started, finished, operator in rows
        ]

    def get_run(self, run_id_or_prefix: str) -> RunDetail:
        """The run whose id is, or uniquely starts with, ``run_id_or_prefix``."""
        wanted = run_id_or_prefix.strip()
        with self._transaction("reading a run", write=False) as conn:
            run_id = self._resolve_run_id(conn, wanted)
            run = conn.execute(
                "SELECT id, kind, status, started, finished, operator, command_line,"
                " inventory_digest, playbook_version, meta FROM runs WHERE id = ?",
                (run_id,),
            ).fetchone()
            hosts = conn.execute(
                "SELECT host, status, reason, findings, started, finished, post_findings, plan"
                " FROM run_hosts"
                " WHERE run_id = ? ORDER BY position",
                (run_id,),
            ).fetchall()
            steps = conn.execute(_SELECT_STEPS, (run_id,)).fetchall()
            events = conn.execute(
                "SELECT host, kind, detail, at FROM events WHERE run_id = ? ORDER BY key",
                (run_id,),
            ).fetchall()
        return RunDetail(
            id=run[0],
            kind=run[1],
            status=run[2],
            started=run[3],
            finished=run[4],
            operator=run[5],
            command_line=run[6],
            inventory_digest=run[7],
            playbook_version=run[8],
            meta=json.loads(run[9]),
            hosts=[
                HostRecord(
                    host=h[0],
                    status=h[1],
                    reason=h[2],
                    findings=json.loads(h[3]),
                    post_findings=None if h[6] is None else json.loads(h[6]),
                    plan=None if h[7] is None else json.loads(h[7]),
                    started=h[4],
                    finished=h[5],
                )
                for h in hosts
            ],
            steps=[
                StepRecord(
                    key=s[0],
                    host=s[1],
                    seq=s[2],
                    step_id=s[3],
                    kind=s[4],
                    readonly=bool(s[5]),
                    command=s[6],
                    started=s[7],
                    finished=s[8],
                    exit_code=s[9],
                    timed_out=bool(s[10]),
                    stdout=s[11],
                    stderr=s[12],
                    error=s[13],
                )
                for s in steps
            ],
            events=[
                EventRecord(host=e[0], kind=e[1], detail=json.loads(e[2]), at=e[3]) for e in events
            ],
        )

    def prune_run(self, run_id: str, archive_sha256: str) -> None:
        """Delete a finished run's rows after it was archived; the journal keeps the chain (and
        records the archive's digest), so ``audit verify`` still passes."""
        with self._transaction(f"pruning run {run_id!r}") as conn:
            row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise LedgerError(f"ledger {self._path}: no run {run_id!r}")
            if row[0] == RUNNING:
                raise LedgerError(f"run {run_id} is still running; it cannot be pruned")
            for table in ("steps", "events", "run_hosts"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            self._journal(conn, run_id, "run_pruned", {"archive_sha256": archive_sha256})

    def host_outcomes(self, host: str | None = None) -> list[dict[str, Any]]:
        """Every final outcome (of one host, or all), oldest run first, with its run's kind."""
        query = (
            "SELECT h.run_id, r.kind, r.started, h.host, h.status, h.reason, h.findings,"
            " h.post_findings, h.started, h.finished FROM run_hosts h"
            " JOIN runs r ON r.id = h.run_id WHERE h.status IS NOT NULL"
        )
        args: tuple[Any, ...] = ()
        if host is not None:
            query += " AND h.host = ?"
            args = (host,)
        query += " ORDER BY r.started, r.id, h.position"
        with self._transaction("reading host outcomes", write=False) as conn:
            rows = conn.execute(query, args).fetchall()
        return [
            {
                "run": r[0],
                "kind": r[1],
                "run_started": r[2],
                "host": r[3],
                "status": r[4],
                "reason": r[5],
                "findings": json.loads(r[6]),
                "post_findings": None if r[7] is None else json.loads(r[7]),
                "started": r[8],
                "finished": r[9],
            }
            for r in rows
        ]

    # -- internals -----------------------------------------------------------------------------

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
                raise _ledger_error(self._path, exc, doing) from exc

    def _journal(
        self, conn: sqlite3.Connection, run_id: str, op: str, body: Mapping[str, Any]
    ) -> None:
        """Append one entry to the hash chain, in the transaction of the write it describes."""
        _append(conn, self._key, run_id, op, body)

    def _require_host(self, conn: sqlite3.Connection, run_id: str, host: str) -> None:
        row = conn.execute(
            "SELECT 1 FROM run_hosts WHERE run_id = ? AND host = ?", (run_id, host)
        ).fetchone()
        if row is None:
            raise LedgerError(
                _one_line(f"ledger {self._path}: run {run_id!r} has no selected host {host!r}")
            )

    def _resolve_run_id(self, conn: sqlite3.Connection, wanted: str) -> str:
        if wanted:
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (wanted,)).fetchone():
                return wanted
            matches: list[str] = [
                str(row[0])
                for row in conn.execute(
                    "SELECT id FROM runs WHERE substr(id, 1, ?) = ? ORDER BY id",
                    (len(wanted), wanted),
                )
            ]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise RunNotFound(
                    _one_line(
                        f"run {wanted!r} matches {len(matches)} runs in ledger {self._path};"
                        " give more of the id (`kremove runs list` shows the runs)"
                    )
                )
        raise RunNotFound(
            _one_line(
                f"run {wanted!r} is not in ledger {self._path}; `kremove runs list` shows the runs"
            )
        )


# -- opening: pragmas, identity, schema ---------------------------------------------------------


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Check the file is a kremove ledger this code can use, switch to WAL, bring the schema up."""
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    _schema_version(conn, path)  # refuse foreign or newer files before writing anything
    (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    if str(mode).lower() != "wal":
        raise LedgerError(
            f"ledger {path} cannot use write-ahead logging (journal mode {mode!r});"
            " put it on a local filesystem with --ledger"
        )
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _schema_version(conn, path)  # again: another process may have just created it
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[target]:
                conn.execute(statement)
        if version < SCHEMA_VERSION:
            if version == 0:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("created", now()), ("created_by", f"kremove {__version__}")],
                )
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise


def _schema_version(conn: sqlite3.Connection, path: Path) -> int:
    """The file's schema version (0: empty, new). Raises for foreign files and newer versions."""
    (app_id,) = conn.execute("PRAGMA application_id").fetchone()
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    (tables,) = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    if app_id != APPLICATION_ID and (app_id != 0 or version != 0 or tables != 0):
        raise LedgerError(
            _one_line(
                f"ledger {path} is a SQLite database but not a kremove ledger;"
                f" choose another file with --ledger or ${ENV_VAR}"
            )
        )
    if version > SCHEMA_VERSION:
        raise LedgerError(
            _one_line(
                f"ledger {path} has schema version {version}, this kremove knows up to"
                f" {SCHEMA_VERSION}; upgrade kremove"
            )
        )
    return int(version)


def _unused_run_id(conn: sqlite3.Connection, started: str) -> str:
    """``20261125T120000-3fa9``: sortable, short, checked unused while holding the write lock."""
    stamp = started[:19].replace("-", "").replace(":", "")
    for _ in range(_RUN_ID_ATTEMPTS):
        run_id = f"{stamp}-{token_hex(2)}"
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            return run_id
    raise LedgerError(f"no unused run id for {stamp} after {_RUN_ID_ATTEMPTS} attempts; retry")


# -- values and errors ---------------------------------------------------------------------------


def _to_json(value: Any) -> str:
    # Unknown types become their str(): an odd value in a finding must not cost the host's record.
    return safe_text(json.dumps(value, ensure_ascii=False, default=str))


def _one_line(message: str) -> str:
    return message.replace("\r", "\\r").replace("\n", "\\n")


def _ledger_error(path: Path, exc: sqlite3.Error, doing: str) -> LedgerError:
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
    return LedgerError(_one_line(message))


def _pid_alive(pid: int, os: Any) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _append(
    conn: sqlite3.Connection, key: bytes | None, run_id: str, op: str, body: Mapping[str, Any]
) -> None:
    row = conn.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (1, "") if row is None else (row[0] + 1, row[1])
    at = now()
    text = canonical(body)
    digest = chain_hash(key, prev, seq, at, run_id, op, text)
    conn.execute(
        "INSERT INTO journal (seq, at, run_id, op, body, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, at, run_id, op, text, prev, digest),
    )


def signing(conn: sqlite3.Connection) -> tuple[str, str] | None:
    """How the ledger says it is signed, and where: its chain's first entry, or (ledgers written
    before that entry existed) a ``meta`` row. None: it says it is not."""
    first = conn.execute("SELECT op, body FROM journal ORDER BY seq LIMIT 1").fetchone()
    if first is not None and first[0] == SIGNED_OP:
        try:
            algorithm = str(json.loads(first[1]).get("algorithm"))
        except (ValueError, AttributeError):
            algorithm = "unknown"
        return algorithm, "journal record 1"
    row = conn.execute("SELECT value FROM meta WHERE key = 'signed'").fetchone()
    return None if row is None else (str(row[0]), "its meta table")


def _check_signing(conn: sqlite3.Connection, path: Path, key: bytes | None) -> None:
    """Whether a ledger is signed is decided when its chain starts, for good."""
    signed = signing(conn) is not None if key is None else _start_signed(conn, key)
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


def _start_signed(conn: sqlite3.Connection, key: bytes) -> bool:
    """Start an empty ledger's chain with the signing entry; True if the ledger is signed."""
    conn.execute("BEGIN IMMEDIATE")  # two processes opening a new ledger: one starts the chain
    try:
        signed = signing(conn) is not None
        if not signed and conn.execute("SELECT 1 FROM journal LIMIT 1").fetchone() is None:
            # The meta row is what kremove before M1 reads to refuse writing without the key.
            conn.execute("INSERT INTO meta (key, value) VALUES ('signed', ?)", (SIGNING_ALGORITHM,))
            _append(conn, key, "", SIGNED_OP, {"algorithm": SIGNING_ALGORITHM})
            signed = True
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    return signed
