"""Reading the ledger: rows by column name (sqlite3.Row), made into the records of ``records``.

``LedgerQueries`` is what a Ledger reads back (runs, one run, host outcomes); the functions below
it are shared with the writes (does a run exist) and with ``audit``, which reads every row of
every table and the journal through them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from orchestrator.ledger.chain import SIGNED_OP, Entry
from orchestrator.ledger.errors import one_line
from orchestrator.ledger.records import (
    PENDING,
    EventRecord,
    HostRecord,
    RunDetail,
    RunNotFound,
    RunSummary,
    StepRecord,
)
from orchestrator.ledger.schema import EVENTS, JOURNAL, META, RUN_HOSTS, RUNS, STEPS, Form, Table
from orchestrator.ledger.session import Session

# What host_outcomes reports of each host, after its run's id, kind and start.
_OUTCOME = ("host", "status", "reason", "findings", "post_findings", "started", "finished")


class LedgerQueries(Session):
    """The Ledger's reads; each is one read transaction."""

    def list_runs(self, limit: int = 50) -> list[RunSummary]:
        """The ``limit`` most recent runs, newest first, with host counts by status."""
        limit = max(int(limit), 0)
        newest = "FROM runs ORDER BY started DESC, id DESC LIMIT ?"
        summary = ", ".join(RUNS.known(("id", "kind", "status", "started", "finished", "operator")))
        with self._transaction("listing runs", write=False) as conn:
            runs = [decode(RUNS, row) for row in select(conn, f"SELECT {summary} {newest}", limit)]
            counts: dict[str, dict[str, int]] = {run["id"]: {} for run in runs}
            for row in select(
                conn,
                f"SELECT run_id, COALESCE(status, ?) AS outcome, COUNT(*) AS hosts FROM run_hosts"
                f" WHERE run_id IN (SELECT id {newest}) GROUP BY run_id, status",
                PENDING,
                limit,
            ):
                counts[row["run_id"]][row["outcome"]] = row["hosts"]
        return [
            RunSummary(
                **run, hosts_selected=sum(counts[run["id"]].values()), counts=counts[run["id"]]
            )
            for run in runs
        ]

    def get_run(self, run_id_or_prefix: str) -> RunDetail:
        """The run whose id is, or uniquely starts with, ``run_id_or_prefix``."""
        wanted = run_id_or_prefix.strip()
        with self._transaction("reading a run", write=False) as conn:
            run_id = self._resolve_run_id(conn, wanted)
            (run,) = rows(conn, RUNS, "WHERE id = ?", run_id)
            hosts = rows(conn, RUN_HOSTS, "WHERE run_id = ? ORDER BY position", run_id)
            steps = rows(conn, STEPS, "WHERE run_id = ? ORDER BY key", run_id)
            events = rows(conn, EVENTS, "WHERE run_id = ? ORDER BY key", run_id)
        return RunDetail(
            **run,
            hosts=[HostRecord(**_without(h, "run_id", "position")) for h in hosts],
            steps=[StepRecord(**_without(s, "run_id")) for s in steps],
            events=[EventRecord(**_without(e, "key", "run_id")) for e in events],
        )

    def host_outcomes(self, host: str | None = None) -> list[dict[str, Any]]:
        """Every final outcome (of one host, or all), oldest run first, with its run's kind."""
        columns = ", ".join(f"h.{name}" for name in RUN_HOSTS.known(("run_id", *_OUTCOME)))
        query = (
            f"SELECT {columns}, r.kind, r.started AS run_started FROM run_hosts h"
            " JOIN runs r ON r.id = h.run_id WHERE h.status IS NOT NULL"
        )
        args: tuple[Any, ...] = ()
        if host is not None:
            query += " AND h.host = ?"
            args = (host,)
        query += " ORDER BY r.started, r.id, h.position"
        with self._transaction("reading host outcomes", write=False) as conn:
            found = [decode(RUN_HOSTS, row) for row in select(conn, query, *args)]
        return [
            {
                "run": h["run_id"],
                "kind": h["kind"],
                "run_started": h["run_started"],
                **{name: h[name] for name in _OUTCOME},
            }
            for h in found
        ]

    def _resolve_run_id(self, conn: sqlite3.Connection, wanted: str) -> str:
        if wanted:
            if run_status(conn, wanted) is not None:
                return wanted
            matches = [
                str(row["id"])
                for row in select(
                    conn,
                    "SELECT id FROM runs WHERE substr(id, 1, ?) = ? ORDER BY id",
                    len(wanted),
                    wanted,
                )
            ]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise RunNotFound(
                    one_line(
                        f"run {wanted!r} matches {len(matches)} runs in ledger {self._path};"
                        " give more of the id (`kremove runs list` shows the runs)"
                    )
                )
        raise RunNotFound(
            one_line(
                f"run {wanted!r} is not in ledger {self._path}; `kremove runs list` shows the runs"
            )
        )


def select(conn: sqlite3.Connection, query: str, *args: Any) -> list[sqlite3.Row]:
    """The rows of ``query``, each readable by column name."""
    return _by_name(conn).execute(query, args).fetchall()


def _by_name(conn: sqlite3.Connection) -> sqlite3.Cursor:
    # On the cursor, not the connection: the writes' own reads are unpacked as plain tuples.
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor


def decode(table: Table, row: sqlite3.Row) -> dict[str, Any]:
    """A row by column name, ``table``'s JSON columns parsed and its flags made bools (a column
    of another table, joined in, as stored)."""
    forms: dict[str, Form] = {c.name: c.form for c in table.columns}
    names: list[str] = row.keys()  # a Row iterates over its values, not its names
    return {name: _value(forms.get(name, "plain"), row[name]) for name in names}


def _value(form: Form, stored: Any) -> Any:
    if form == "json":
        return None if stored is None else json.loads(stored)
    if form == "flag":
        return bool(stored)
    return stored


def rows(
    conn: sqlite3.Connection, table: Table, where: str = "", *args: Any
) -> list[dict[str, Any]]:
    """Every column of ``table``'s rows (those ``where`` picks), decoded."""
    return [decode(table, row) for row in select(conn, f"{table.select()} {where}", *args)]


def _without(row: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name not in names}


def run_status(conn: sqlite3.Connection, run_id: str) -> str | None:
    """The run's status; None when there is no such run."""
    found = select(conn, "SELECT status FROM runs WHERE id = ?", run_id)
    return None if not found else str(found[0]["status"])


def journal(conn: sqlite3.Connection, limit: int = -1) -> Iterator[Entry]:
    """The journal's entries in order (the first ``limit`` of them; -1: all)."""
    for row in _by_name(conn).execute(f"{JOURNAL.select()} ORDER BY seq LIMIT ?", (limit,)):
        yield Entry(**decode(JOURNAL, row))


def signing(conn: sqlite3.Connection) -> tuple[str, str] | None:
    """How the ledger says it is signed, and where: its chain's first entry, or (ledgers written
    before that entry existed) a ``meta`` row. None: it says it is not."""
    first = next(journal(conn, 1), None)
    if first is not None and first.op == SIGNED_OP:
        try:
            algorithm = str(json.loads(first.body).get("algorithm"))
        except (ValueError, AttributeError):
            algorithm = "unknown"
        return algorithm, "journal record 1"
    found = select(conn, f"{META.select('value')} WHERE key = 'signed'")
    return None if not found else (str(found[0]["value"]), "its meta table")
