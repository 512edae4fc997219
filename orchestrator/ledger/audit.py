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
from orchestrator.ledger.chain import SIGNED_OP, SIGNING_ALGORITHM, chain_hash, sha256_text
from orchestrator.ledger.store import signing

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
    for seq, at, rid, op, body, prev_stored, digest in conn.execute(
        "SELECT seq, at, run_id, op, body, prev, hash FROM journal ORDER BY seq"
    ):
        run = f", run {rid}" if rid else ""
        where = f"journal record {seq} ({op}{run}{_host_of(body)})"
        if seq != expected_seq:
            return Verdict(
                False,
                count,
                prev,
                f"journal record {expected_seq} is missing: deleted (the next is {seq})",
                signed,
            )
        if prev_stored != prev:
            return Verdict(
                False, count, prev, f"{where} does not follow record {seq - 1}: reordered", signed
            )
        if chain_hash(key, prev, seq, at, rid, op, body) != digest:
            what = "edited"
            if signed and chain_hash(None, prev, seq, at, rid, op, body) == digest:
                what = "it is plain SHA-256: the chain was rebuilt without the key (tampered)"
            elif signed:
                what = "edited, or signed with another key"
            return Verdict(False, count, prev, f"{where}: its hash does not match: {what}", signed)
        try:
            state.apply(seq, rid, op, json.loads(body))
        except (KeyError, TypeError, ValueError):
            return Verdict(
                False, count, prev, f"{where}: its content is not a ledger write", signed
            )
        prev = digest
        expected_seq += 1
        count += 1
    problem = state.compare(conn, run_id)
    return Verdict(problem is None, count, prev, problem, signed)


def _unsigned(conn: sqlite3.Connection, path: Path, key: bytes) -> str:
    """What it means that a ledger verified with a key does not say it is signed."""
    first = conn.execute(
        "SELECT seq, at, run_id, op, body, hash FROM journal ORDER BY seq LIMIT 1"
    ).fetchone()
    if first is not None and chain_hash(key, "", *first[:5]) == first[5]:
        return (
            f"ledger {path} no longer says it is signed, yet journal record 1 is signed with the"
            " given key: what said so was removed (tampered)"
        )
    plain = first is not None and chain_hash(None, "", *first[:5]) == first[5]
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
        if op == "run_started":
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
        elif op == "step_started":
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
        elif op == "step_finished":
            step = self.steps[b["key"]]
            for field in ("finished", "exit_code", "timed_out", "stdout_sha256", "stderr_sha256"):
                step[field] = b[field]
            step["error"] = b["error"]
            self.source[("step", b["key"])] = seq
        elif op == "host_finished":
            host = self.hosts[(run_id, b["host"])]
            for field in ("status", "reason", "findings", "post_findings", "plan", "finished"):
                host[field] = b[field]
            host["started"] = host["started"] or b["finished"]
            self.source[("host", (run_id, b["host"]))] = seq
        elif op == "event":
            self.events[b["key"]] = {
                "run_id": run_id,
                "host": b["host"],
                "kind": b["kind"],
                "detail": b["detail"],
                "at": b["at"],
            }
            self.source[("event", b["key"])] = seq
        elif op == "run_reopened":
            self.runs[run_id].update(status="running", finished=None)
            self.source[("run", run_id)] = seq
        elif op == "run_pruned":
            self.runs.pop(run_id, None)
            for host_key in [k for k in self.hosts if k[0] == run_id]:
                del self.hosts[host_key]
            for table in (self.steps, self.events):
                for row_key in [k for k, v in table.items() if v["run_id"] == run_id]:
                    del table[row_key]
        elif op == "run_finished":
            self.runs[run_id].update(status=b["status"], finished=b["finished"])
            self.source[("run", run_id)] = seq
        else:
            raise ValueError(op)

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
        runs = {
            r[0]: {
                "kind": r[1],
                "status": r[2],
                "operator": r[3],
                "command_line": r[4],
                "inventory_digest": r[5],
                "playbook_version": r[6],
                "meta": json.loads(r[7]),
                "started": r[8],
                "finished": r[9],
            }
            for r in conn.execute(
                "SELECT id, kind, status, operator, command_line, inventory_digest,"
                " playbook_version, meta, started, finished FROM runs"
            )
        }
        yield from _pair("run", self.runs, runs)
        hosts = {
            (r[0], r[1]): {
                "position": r[2],
                "status": r[3],
                "reason": r[4],
                "findings": json.loads(r[5]),
                "post_findings": None if r[6] is None else json.loads(r[6]),
                "plan": None if r[7] is None else json.loads(r[7]),
                "started": r[8],
                "finished": r[9],
            }
            for r in conn.execute(
                "SELECT run_id, host, position, status, reason, findings, post_findings, plan,"
                " started, finished FROM run_hosts"
            )
        }
        yield from _pair("host", self.hosts, hosts)
        steps = {
            r[0]: {
                "run_id": r[1],
                "host": r[2],
                "seq": r[3],
                "step_id": r[4],
                "kind": r[5],
                "readonly": bool(r[6]),
                "command": r[7],
                "started": r[8],
                "finished": r[9],
                "exit_code": r[10],
                "timed_out": bool(r[11]),
                "stdout_sha256": sha256_text(r[12]),
                "stderr_sha256": sha256_text(r[13]),
                "error": r[14],
            }
            for r in conn.execute(
                "SELECT key, run_id, host, seq, step_id, kind, readonly, command, started,"
                " finished, exit_code, timed_out, stdout, stderr, error FROM steps"
            )
        }
        yield from _pair("step", self.steps, steps)
        events = {
            r[0]: {
                "run_id": r[1],
                "host": r[2],
                "kind": r[3],
                "detail": json.loads(r[4]),
                "at": r[5],
            }
            for r in conn.execute("SELECT key, run_id, host, kind, detail, at FROM events")
        }
        yield from _pair("event", self.events, events)


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
