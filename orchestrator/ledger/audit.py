"""``kremove audit verify``: recompute the ledger's hash chain and hold the tables against it.

Every write to the ledger appends a journal entry, in the same transaction, hashing its
predecessor. Verification walks the journal (a missing, reordered or edited entry breaks the
chain), replays it into the state the tables must be in, and compares: an edited exit code, a
deleted step or two swapped rows no longer match what the journal says was written. With a
signing key the hashes are HMACs, so someone who can write the file cannot rebuild the chain; and
the chain's first entry says it is signed, so given the key an unsigned chain is tampering, not a
ledger to verify without it.
What no chain can see is the newest entries cut off together with their rows: compare the head
hash with one recorded elsewhere (``--expect-head``).
The file is opened read-only; the journal and every table's rows are read through ``queries``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError, LedgerError
from orchestrator.ledger.chain import SIGNED_OP, SIGNING_ALGORITHM, sha256_text
from orchestrator.ledger.queries import journal, rows, signing
from orchestrator.ledger.schema import EVENTS, RUN_HOSTS, RUNS, STEPS

EMPTY = sha256_text("")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    entries: int
    head: str  # hash of the last journal entry ('' for an empty ledger)
    problem: str | None = None
    signed: bool = False


def verify(path: Path, key: bytes | None, run_id: str | None = None) -> Verdict:
    if not path.exists():
        raise LedgerError(f"no ledger at {path}")
    # A URI, so that SQLite opens it read-only; escaped, so that '#', '?' or '%' in the name
    # cannot make it open (and create) another file.
    uri = f"{path.absolute().as_uri()}?mode=ro"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as conn:
            return _verify(conn, path, key, run_id)
    except sqlite3.DatabaseError as exc:
        return Verdict(False, 0, "", f"the ledger file cannot be read as a whole: {exc}")


def _verify(conn: sqlite3.Connection, path: Path, key: bytes | None, run_id: str | None) -> Verdict:
    declared = signing(conn)
    if declared is not None and key is None:
        # Nothing can be checked without the key: an input the auditor must give, not a verdict.
        algorithm, where = declared
        raise InputError(
            f"ledger {path} is signed ({algorithm}, {where}); give its key with --sign-key-env VAR"
        )
    if key is not None and declared is None:
        return Verdict(False, 0, "", _unsigned(conn, path, key))
    signed = declared is not None
    state = _State()
    prev = ""
    expected_seq = 1
    count = 0
    for entry in journal(conn):
        seq = entry.seq
        run = f", run {entry.run_id}" if entry.run_id else ""
        where = f"journal record {seq} ({entry.op}{run}{_host_of(entry.body)})"
        if seq != expected_seq:
            return Verdict(
                False,
                count,
                prev,
                f"journal record {expected_seq} is missing: deleted (the next is {seq})",
                signed,
            )
        if entry.prev != prev:
            return Verdict(
                False, count, prev, f"{where} does not follow record {seq - 1}: reordered", signed
            )
        if entry.hashed(key, prev) != entry.hash:
            what = "edited"
            if signed and entry.hashed(None, prev) == entry.hash:
                what = "it is plain SHA-256: the chain was rebuilt without the key (tampered)"
            elif signed:
                what = "edited, or signed with another key"
            return Verdict(False, count, prev, f"{where}: its hash does not match: {what}", signed)
        try:
            state.apply(seq, entry.run_id, entry.op, json.loads(entry.body))
        except (KeyError, TypeError, ValueError):
            return Verdict(
                False, count, prev, f"{where}: its content is not a ledger write", signed
            )
        prev = entry.hash
        expected_seq += 1
        count += 1
    problem = state.compare(conn, run_id)
    return Verdict(problem is None, count, prev, problem, signed)


def _unsigned(conn: sqlite3.Connection, path: Path, key: bytes) -> str:
    """What it means that a ledger verified with a key does not say it is signed."""
    first = next(journal(conn, 1), None)
    if first is not None and first.hashed(key, "") == first.hash:
        return (
            f"ledger {path} no longer says it is signed, yet journal record 1 is signed with the"
            " given key: what said so was removed (tampered)"
        )
    plain = first is not None and first.hashed(None, "") == first.hash
    how = "journal record 1 is plain SHA-256" if plain else "nothing in its chain says it is"
    return (
        f"ledger {path} is not signed with the given key: {how}, so the chain was rebuilt"
        " without the key (tampered) or the ledger was never signed"
    )


def _host_of(body: str) -> str:
    try:
        host = json.loads(body).get("host")
    except ValueError:
        return ""
    return f", host {host}" if host else ""


class _State:
    """What the tables must hold, replayed from the journal, each row with the entry that last
    wrote it."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.hosts: dict[tuple[str, str], dict[str, Any]] = {}
        self.steps: dict[int, dict[str, Any]] = {}
        self.events: dict[int, dict[str, Any]] = {}
        self.source: dict[tuple[str, Any], int] = {}

    def apply(self, seq: int, run_id: str, op: str, b: dict[str, Any]) -> None:
        if op == SIGNED_OP and seq == 1 and b == {"algorithm": SIGNING_ALGORITHM}:
            return  # the chain says it is signed; no table holds anything of it
        replay = {
            "run_started": self._run_started,
            "step_started": self._step_started,
            "step_finished": self._step_finished,
            "host_finished": self._host_finished,
            "event": self._event,
            "run_reopened": self._run_reopened,
            "run_pruned": self._run_pruned,
            "run_finished": self._run_finished,
        }.get(op)
        if replay is None:
            raise ValueError(op)
        replay(seq, run_id, b)

    def _run_started(self, seq: int, run_id: str, b: dict[str, Any]) -> None:
        self.runs[run_id] = {
            "kind": b["kind"],
            "status": "running",
            "operator": b["operator"],
            "command_line": b["command_line"],
            "inventory_digest": b["inventory_digest"],
            "playbook_version": b["playbook_version"],
            "meta": b["meta"],
            "started": b["started"],
            "finished": None,
        }
        self.source[("run", run_id)] = seq
        for position, host in enumerate(b["hosts"]):
            self.hosts[(run_id, host)] = {
                "position": position,
                "status": None,
                "reason": None,
                "findings": [],
                "post_findings": None,
                "plan": None,
                "started": None,
                "finished": None,
            }
            self.source[("host", (run_id, host))] = seq

    def _step_started(self, seq: int, run_id: str, b: dict[str, Any]) -> None:
        self.steps[b["key"]] = {
            "run_id": run_id,
            "host": b["host"],
            "seq": b["seq"],
            "step_id": b["step_id"],
            "kind": b["kind"],
            "readonly": b["readonly"],
            "command": b["command"],
            "started": b["started"],
            "finished": None,
            "exit_code": None,
            "timed_out": False,
            "stdout_sha256": EMPTY,
            "stderr_sha256": EMPTY,
            "error": None,
        }
        self.source[("step", b["key"])] = seq
        host = self.hosts[(run_id, b["host"])]
        host["started"] = host["started"] or b["started"]

    def _step_finished(self, seq: int, run_id: str, b: dict[str, Any]) -> None:
        step = self.steps[b["key"]]
        for field in ("finished", "exit_code", "timed_out", "stdout_sha256", "stderr_sha256"):
            step[field] = b[field]
        step["error"] = b["error"]
        self.source[("step", b["key"])] = seq

    def _host_finished(self, seq: int, run_id: str, b: dict[str, Any]) -> None:
        host = self.hosts[(run_id, b["host"])]
        for field in ("status", "reason", "findings", "post_findings", "plan", "finished"):
            host[field] = b[field]
        host["started"] = host["started"] or b["finished"]
        self.source[("host", (run_id, b["host"]))] = seq

    def _event(self, seq: int, run_id: str, b: dict[str, Any]) -> None:
        self.events[b["key"]] = {
            "run_id": run_id,
            **{n: b[n] for n in ("host", "kind", "detail", "at")},
        }
        self.source[("event", b["key"])] = seq

    def _run_reopened(self, seq: int, run_id: str, b: dict[str, Any]) -> None:
        self.runs[run_id].update(status="running", finished=None)
        self.source[("run", run_id)] = seq

    def _run_pruned(self, seq: int, run_id: str, b: dict[str, Any]) -> None:
        self.runs.pop(run_id, None)
        for host_key in [k for k in self.hosts if k[0] == run_id]:
            del self.hosts[host_key]
        for table in (self.steps, self.events):
            for row_key in [k for k, v in table.items() if v["run_id"] == run_id]:
                del table[row_key]

    def _run_finished(self, seq: int, run_id: str, b: dict[str, Any]) -> None:
        self.runs[run_id].update(status=b["status"], finished=b["finished"])
        self.source[("run", run_id)] = seq

    def compare(self, conn: sqlite3.Connection, run_id: str | None) -> str | None:
        problems: list[tuple[int, str]] = []
        for kind, label, expected, actual in self._tables(conn):
            if run_id is not None and not _belongs(kind, label, expected, actual, run_id):
                continue
            seq = self.source.get((kind, label), 0)
            name = _name(kind, label, expected or actual or {})
            if expected is None:
                problems.append(
                    (
                        1 << 62,
                        f"{name} is not in the journal: added",
                    )
                )
            elif actual is None:
                problems.append(
                    (
                        seq,
                        f"{name} (journal record {seq}) is gone: deleted",
                    )
                )
            else:
                for field, value in expected.items():
                    if actual.get(field) != value:
                        problems.append(
                            (
                                seq,
                                f"{name}: {field} is {actual.get(field)!r} in the "
                                f"ledger but {value!r} in journal record {seq}: edited",
                            )
                        )
                        break
        if not problems:
            return None
        return min(problems)[1]

    def _tables(
        self, conn: sqlite3.Connection
    ) -> Iterator[tuple[str, Any, dict[str, Any] | None, dict[str, Any] | None]]:
        """Each table's rows by the key the replay uses; a step's output by its digest, as the
        journal holds it."""
        yield from _pair("run", self.runs, {r["id"]: r for r in rows(conn, RUNS)})
        hosts = {(h["run_id"], h["host"]): h for h in rows(conn, RUN_HOSTS)}
        yield from _pair("host", self.hosts, hosts)
        steps = {}
        for step in rows(conn, STEPS):
            for stream in ("stdout", "stderr"):
                step[f"{stream}_sha256"] = sha256_text(step.pop(stream))
            steps[step["key"]] = step
        yield from _pair("step", self.steps, steps)
        yield from _pair("event", self.events, {e["key"]: e for e in rows(conn, EVENTS)})


def _pair(
    kind: str, expected: dict[Any, dict[str, Any]], actual: dict[Any, dict[str, Any]]
) -> Iterator[tuple[str, Any, dict[str, Any] | None, dict[str, Any] | None]]:
    for label in list(expected) + [k for k in actual if k not in expected]:
        yield kind, label, expected.get(label), actual.get(label)


def _belongs(
    kind: str, label: Any, expected: dict[str, Any] | None, actual: dict[str, Any] | None, run: str
) -> bool:
    if kind == "run":
        return bool(label == run)
    if kind == "host":
        return bool(label[0] == run)
    row = expected or actual or {}
    return row.get("run_id") == run


def _name(kind: str, label: Any, row: dict[str, Any]) -> str:
    if kind == "run":
        return f"run {label}"
    if kind == "host":
        return f"host {label[1]} of run {label[0]}"
    if kind == "step":
        return f"step {label} ({row.get('step_id')} on {row.get('host')}, run {row.get('run_id')})"
    return f"{kind} {label} ({row.get('kind')}, run {row.get('run_id')})"
