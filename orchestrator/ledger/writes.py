"""Writing the ledger: runs, hosts, steps, events and host locks, each write one transaction.

A unit of work is a (run, host) pair: every write touches one run, or one host of one run. Each
write appends its journal entry in the same transaction (``append``), hashing the one before and
signed when the ledger is (issue 15, M1), so that ``audit verify`` can replay the tables from the
journal. Values are made storable first (``text.safe_text``; output bounded). The reads a write
needs (the next step number, the holder of a host lock) are made here, in its transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping, Sequence
from secrets import token_hex
from typing import Any

from orchestrator.errors import LedgerError
from orchestrator.ledger.chain import (
    SIGNED_OP,
    SIGNING_ALGORITHM,
    canonical,
    chain_hash,
    sha256_text,
)
from orchestrator.ledger.errors import one_line
from orchestrator.ledger.queries import run_status, select, signing
from orchestrator.ledger.records import HOST_STATUS_SHAPE, PENDING, RUN_STATUSES, RUNNING, now
from orchestrator.ledger.schema import EVENTS, HOST_LOCKS, JOURNAL, META, RUN_HOSTS, RUNS, STEPS
from orchestrator.ledger.session import Session
from orchestrator.ledger.text import bound_output, safe_text

_RUN_ID_ATTEMPTS = 64


class LedgerWrites(Session):
    """The Ledger's writes; each is one committed transaction with its journal entry."""

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
        row: dict[str, Any] = {
            "kind": safe_text(kind),
            "operator": safe_text(operator),
            "command_line": safe_text(command_line),
            "inventory_digest": safe_text(inventory_digest),
            "playbook_version": safe_text(playbook_version),
            "meta": _to_json(dict(meta or {})),
        }
        with self._transaction("recording a new run") as conn:
            row["started"] = now()
            run_id = _unused_run_id(conn, row["started"])
            conn.execute(
                RUNS.insert("id", "status", *row), {"id": run_id, "status": RUNNING, **row}
            )
            conn.executemany(
                RUN_HOSTS.insert("run_id", "host", "position", "findings"),
                [
                    {"run_id": run_id, "host": name, "position": i, "findings": "[]"}
                    for i, name in enumerate(names)
                ],
            )
            body = {**row, "meta": json.loads(row["meta"]), "hosts": names}
            append(conn, self._key, run_id, "run_started", body)
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
            row = {
                "run_id": run_id,
                "host": host,
                "seq": seq,
                "step_id": safe_text(step_id),
                "kind": safe_text(kind),
                "readonly": int(bool(readonly)),
                "command": safe_text(command),
                "started": now(),
            }
            key = conn.execute(STEPS.insert(*row), row).lastrowid
            assert key is not None
            conn.execute(
                "UPDATE run_hosts SET started = COALESCE(started, ?) WHERE run_id = ? AND host = ?",
                (row["started"], run_id, host),
            )
            body = {**row, "key": key, "readonly": bool(readonly)}
            del body["run_id"]  # the entry's own
            append(conn, self._key, run_id, "step_started", body)
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
        row: dict[str, Any] = {
            "exit_code": exit_code,
            "timed_out": int(bool(timed_out)),
            "stdout": bound_output(stdout),
            "stderr": bound_output(stderr),
            "error": None if error is None else safe_text(error),
        }
        with self._transaction(f"recording the outcome of step {step_key}") as conn:
            row["finished"] = now()
            cur = conn.execute(
                f"UPDATE steps SET {STEPS.assign(*row)} WHERE key = :key AND finished IS NULL",
                {**row, "key": step_key},
            )
            if cur.rowcount == 0:
                exists = conn.execute("SELECT 1 FROM steps WHERE key = ?", (step_key,)).fetchone()
                what = "is already finished" if exists else "was never started"
                raise LedgerError(f"ledger {self._path}: step {step_key} {what}")
            (run_id,) = conn.execute(
                "SELECT run_id FROM steps WHERE key = ?", (step_key,)
            ).fetchone()
            body = {
                "key": step_key,
                "finished": row["finished"],
                "exit_code": exit_code,
                "timed_out": bool(timed_out),
                "stdout_sha256": sha256_text(row["stdout"]),
                "stderr_sha256": sha256_text(row["stderr"]),
                "error": row["error"],
            }
            append(conn, self._key, run_id, "step_finished", body)

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
        row: dict[str, Any] = {
            "status": status,
            "reason": None if reason is None else safe_text(reason),
            "findings": _to_json([dict(f) for f in findings]),
            "post_findings": _json_list(post_findings),
            "plan": _json_list(plan),
        }
        with self._transaction(f"recording the outcome of {host!r}") as conn:
            self._require_host(conn, run_id, host)
            row["finished"] = now()
            conn.execute(
                f"UPDATE run_hosts SET {RUN_HOSTS.assign(*row)},"
                " started = COALESCE(started, :finished) WHERE run_id = :run_id AND host = :host",
                {**row, "run_id": run_id, "host": host},
            )
            parsed = {n: _parsed(row[n]) for n in ("findings", "post_findings", "plan")}
            append(conn, self._key, run_id, "host_finished", {**row, **parsed, "host": host})

    def record_event(
        self, run_id: str, host: str | None, kind: str, detail: Mapping[str, Any]
    ) -> None:
        """Record something that happened in a run outside any step (a host key pinned, ...)."""
        host = None if host is None else safe_text(host)
        with self._transaction(f"recording a {kind} event") as conn:
            if run_status(conn, run_id) is None:
                raise LedgerError(f"ledger {self._path}: run {run_id!r} was never started")
            row: dict[str, Any] = {
                "run_id": run_id,
                "host": host,
                "kind": safe_text(kind),
                "detail": _to_json(dict(detail)),
                "at": now(),
            }
            key = conn.execute(EVENTS.insert(*row), row).lastrowid
            body = {**row, "key": key, "detail": json.loads(row["detail"])}
            del body["run_id"]  # the entry's own
            append(conn, self._key, run_id, "event", body)

    def reopen_run(self, run_id: str) -> None:
        """A halted, paused or interrupted run continues (``--resume``): running again."""
        with self._transaction(f"reopening run {run_id!r}") as conn:
            conn.execute(
                "UPDATE runs SET status = ?, finished = NULL WHERE id = ?", (RUNNING, run_id)
            )
            append(conn, self._key, run_id, "run_reopened", {})

    def lock_host(self, run_id: str, host: str, node: str, pid: int) -> str | None:
        """Take ``host`` for ``run_id``; None when taken, else the run that holds it.

        A lock whose run is no longer running, or whose process on this node is gone, is stale
        and taken over: a crashed kremove does not keep hosts locked.
        """
        host = safe_text(host)
        with self._transaction(f"locking {host!r}") as conn:
            for holder in select(
                conn,
                "SELECT l.run_id, l.node, l.pid, r.status FROM host_locks l"
                " LEFT JOIN runs r ON r.id = l.run_id WHERE l.host = ? AND l.run_id != ?",
                host,
                run_id,
            ):
                alive = holder["status"] == RUNNING and (
                    holder["node"] != node or _pid_alive(int(holder["pid"]))
                )
                if alive:
                    return str(holder["run_id"])
            row = {"host": host, "run_id": run_id, "node": node, "pid": pid, "acquired": now()}
            conn.execute(HOST_LOCKS.insert(*row, replace=True), row)
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
            append(
                conn, self._key, run_id, "run_finished", {"status": status, "finished": finished}
            )

    def prune_run(self, run_id: str, archive_sha256: str) -> None:
        """Delete a finished run's rows after it was archived; the journal keeps the chain (and
        records the archive's digest), so ``audit verify`` still passes."""
        with self._transaction(f"pruning run {run_id!r}") as conn:
            status = run_status(conn, run_id)
            if status is None:
                raise LedgerError(f"ledger {self._path}: no run {run_id!r}")
            if status == RUNNING:
                raise LedgerError(f"run {run_id} is still running; it cannot be pruned")
            for table in (STEPS, EVENTS, RUN_HOSTS):
                conn.execute(f"DELETE FROM {table.name} WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            append(conn, self._key, run_id, "run_pruned", {"archive_sha256": archive_sha256})

    def _require_host(self, conn: sqlite3.Connection, run_id: str, host: str) -> None:
        row = conn.execute(
            "SELECT 1 FROM run_hosts WHERE run_id = ? AND host = ?", (run_id, host)
        ).fetchone()
        if row is None:
            raise LedgerError(
                one_line(f"ledger {self._path}: run {run_id!r} has no selected host {host!r}")
            )


def append(
    conn: sqlite3.Connection, key: bytes | None, run_id: str, op: str, body: Mapping[str, Any]
) -> None:
    """Append one entry to the hash chain, in the transaction of the write it describes."""
    head = select(conn, "SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1")
    seq, prev = (head[0]["seq"] + 1, head[0]["hash"]) if head else (1, "")
    at = now()
    text = canonical(body)
    entry = {"seq": seq, "at": at, "run_id": run_id, "op": op, "body": text, "prev": prev}
    entry["hash"] = chain_hash(key, prev, seq, at, run_id, op, text)
    conn.execute(JOURNAL.insert(*entry), entry)


def start_signed(conn: sqlite3.Connection, key: bytes) -> bool:
    """Start an empty ledger's chain with the signing entry; True if the ledger is signed."""
    conn.execute("BEGIN IMMEDIATE")  # two processes opening a new ledger: one starts the chain
    try:
        signed = signing(conn) is not None
        if not signed and conn.execute("SELECT 1 FROM journal LIMIT 1").fetchone() is None:
            # The meta row is what kremove before M1 reads to refuse writing without the key.
            conn.execute(META.insert("key", "value"), {"key": "signed", "value": SIGNING_ALGORITHM})
            append(conn, key, "", SIGNED_OP, {"algorithm": SIGNING_ALGORITHM})
            signed = True
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    return signed


def _unused_run_id(conn: sqlite3.Connection, started: str) -> str:
    """``20261125T120000-3fa9``: sortable, short, checked unused while holding the write lock."""
    stamp = started[:19].replace("-", "").replace(":", "")
    for _ in range(_RUN_ID_ATTEMPTS):
        run_id = f"{stamp}-{token_hex(2)}"
        if run_status(conn, run_id) is None:
            return run_id
    raise LedgerError(f"no unused run id for {stamp} after {_RUN_ID_ATTEMPTS} attempts; retry")


def _to_json(value: Any) -> str:
    # Unknown types become their str(): an odd value in a finding must not cost the host's record.
    return safe_text(json.dumps(value, ensure_ascii=False, default=str))


def _json_list(items: Sequence[Mapping[str, Any]] | None) -> str | None:
    return None if items is None else _to_json([dict(i) for i in items])


def _parsed(stored: str | None) -> Any:
    return None if stored is None else json.loads(stored)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
