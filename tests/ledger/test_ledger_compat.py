"""Ledgers written by an earlier kremove open, read, take new writes and verify with this one,
and the schema a new file gets is the one an old file has or is migrated to.

fixtures/ecbcde0-*.db were written by ``write_history`` below with the code at commit ecbcde0 (the
last before ledger/store.py was split by concern, issue 16), unsigned and signed with KEY::

    git worktree add --detach /tmp/pre ecbcde0
    cd tests/ledger
    PYTHONPATH=/tmp/pre python -c 'import test_ledger_compat as t; t.make_fixtures()'

Each holds every kind of write: a dry run's plan, steps finished, timed out and never finished,
events run-wide and per host, a host lock taken and given back, a run halted and resumed, and a
run archived and pruned.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ledger import Ledger, audit
from orchestrator.ledger.chain import Entry
from orchestrator.ledger.records import EventRecord, HostRecord, RunDetail, StepRecord
from orchestrator.ledger.schema import (
    APPLICATION_ID,
    EVENTS,
    JOURNAL,
    RUN_HOSTS,
    RUNS,
    SCHEMA_VERSION,
    STEPS,
    TABLES,
    migration,
)

FIXTURES = Path(__file__).parent / "fixtures"
MADE_BY = "ecbcde0"
KEY = b"a signing key kept elsewhere"
FINDING = {"product": "kesl", "name": "Kaspersky Endpoint Security f\u00fcr Linux", "version": "12"}
ENTRIES = 24  # journal entries write_history appends (the signed ledger adds its first, 1 more)


def write_history(ledger: Ledger) -> None:
    """Every kind of write, through the Ledger methods the engine and the CLI call."""
    _dry_run(ledger)
    _resumed_run(ledger)
    _pruned_run(ledger)


def _start(ledger: Ledger, kind: str, hosts: list[str], meta: dict[str, Any]) -> str:
    return ledger.start_run(
        kind=kind,
        operator="alice@ctl",
        command_line=f"kremove {kind} -i fleet.yml",
        inventory_digest="1" * 64,
        playbook_version="0.1.0+abc",
        hosts=hosts,
        meta=meta,
    )


def _dry_run(ledger: Ledger) -> None:
    run = _start(ledger, "dry-run", ["web1", "db1"], {"dry_run": True, "batches": ["1", "100%"]})
    ledger.record_event(run, None, "batch_started", {"batch": 1, "hosts": ["web1", "db1"]})
    step = ledger.step_started(
        run, "web1", step_id="packages", kind="detect", readonly=True, command="dpkg-query -W"
    )
    ledger.step_finished(step, exit_code=0, stdout="kesl\t12\n", stderr="", timed_out=False)
    plan = [{"step_id": "purge:kesl", "command": "dpkg -P kesl", "readonly": False}]
    ledger.host_finished(run, "web1", status="planned", reason=None, findings=[FINDING], plan=plan)
    ledger.host_finished(run, "db1", status="unreachable", reason="refused\nport 22", findings=[])
    ledger.finish_run(run, "completed")


def _resumed_run(ledger: Ledger) -> None:
    run = _start(ledger, "run", ["web1", "db1", "mail\udc80"], {"batches": ["1", "100%"]})
    assert ledger.lock_host(run, "web1", "ctl", os.getpid()) is None
    ledger.record_event(run, "web1", "hostkey_pinned", {"fingerprint": "SHA256:x"})
    step = ledger.step_started(
        run, "web1", step_id="purge:kesl", kind="remove", readonly=False, command="dpkg -P kesl"
    )
    ledger.step_finished(step, exit_code=0, stdout="Removing kesl\n", stderr="", timed_out=False)
    ledger.host_finished(
        run, "web1", status="removed", reason=None, findings=[FINDING], post_findings=[]
    )
    ledger.unlock_host(run, "web1")
    step = ledger.step_started(
        run, "db1", step_id="purge:kesl", kind="remove", readonly=False, command="dpkg -P kesl"
    )
    ledger.step_finished(
        step, exit_code=None, stdout="", stderr="\u2026", timed_out=True, error="deadline 300s"
    )
    ledger.host_finished(run, "db1", status="timeout", reason="purge timed out", findings=[])
    ledger.record_event(run, None, "halted", {"budget": 1, "spent_by": ["db1"]})
    ledger.finish_run(run, "halted")
    ledger.reopen_run(run)
    ledger.step_started(
        run, "mail\udc80", step_id="packages", kind="detect", readonly=True, command="rpm -qa"
    )  # journaled; its outcome never recorded (the controller died)
    ledger.finish_run(run, "interrupted")


def _pruned_run(ledger: Ledger) -> None:
    run = _start(ledger, "detect", ["web2"], {})
    ledger.host_finished(run, "web2", status="clean", reason=None, findings=[])
    ledger.finish_run(run, "completed")
    ledger.prune_run(run, "a" * 64)


def make_fixtures() -> None:
    """Write fixtures/<MADE_BY>-{unsigned,signed}.db with the code on the import path."""
    with tempfile.TemporaryDirectory() as scratch:
        for name, key in (("unsigned", None), ("signed", KEY)):
            path = Path(scratch) / "ledger" / f"{MADE_BY}-{name}.db"
            with Ledger.open(path, key) as ledger:
                write_history(ledger)
            shutil.copyfile(path, FIXTURES / path.name)


def copy_fixture(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "ledger" / f"{MADE_BY}-{name}.db"
    path.parent.mkdir(mode=0o700)
    shutil.copyfile(FIXTURES / path.name, path)
    path.chmod(0o600)
    return path


def contents(ledger: Ledger) -> list[Any]:
    """What the ledger reads back, with run ids and times (which differ per writing) masked."""
    runs = [ledger.get_run(r.id).to_dict() for r in reversed(ledger.list_runs())]
    text = json.dumps(
        [runs, [r.to_dict() for r in ledger.list_runs()], ledger.host_outcomes()], sort_keys=True
    )
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", "TIME", text)
    return list(json.loads(re.sub(r"\d{8}T\d{6}-[0-9a-f]{4}", "RUN", text)))


def schema(path: Path) -> list[tuple[str, str, str]]:
    """Every table and index as SQLite keeps it, comments and layout aside."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        found = []
        for kind, name, sql in rows:
            text = " ".join(re.sub(r"--[^\n]*", "", sql).split())
            found.append((kind, name, text.replace("( ", "(").replace(" )", ")")))
    return sorted(found)


@pytest.mark.parametrize(("name", "key"), [("unsigned", None), ("signed", KEY)])
def test_a_ledger_from_the_previous_commit_verifies_reads_and_takes_writes(
    tmp_path: Path, name: str, key: bytes | None
) -> None:
    old = copy_fixture(tmp_path, name)
    first = 1 if key else 0
    verdict = audit.verify(old, key)
    assert verdict.ok and verdict.signed == bool(key), verdict.problem
    assert verdict.entries == ENTRIES + first
    fresh = tmp_path / "fresh.db"
    with Ledger.open(fresh, key) as ledger:
        write_history(ledger)
        written_now = contents(ledger)
    with Ledger.open(old, key) as ledger:
        assert contents(ledger) == written_now  # read back as this kremove writes it
        write_history(ledger)
    verdict = audit.verify(old, key)
    assert verdict.ok and verdict.entries == 2 * ENTRIES + first, verdict.problem
    assert schema(old) == schema(fresh)
    with closing(sqlite3.connect(old)) as conn:
        conn.execute("UPDATE steps SET exit_code = 0 WHERE timed_out = 1 AND key > 3")
        conn.commit()
    verdict = audit.verify(old, key)
    assert not verdict.ok and verdict.problem is not None and "edited" in verdict.problem


# The tables are declared once (ledger/schema.py): the migrations, writes and reads follow.


def test_a_file_at_each_older_version_is_brought_to_the_schema_of_a_new_one(
    tmp_path: Path,
) -> None:
    fresh = tmp_path / "new" / "ledger.db"
    Ledger.open(fresh).close()
    for version in range(1, SCHEMA_VERSION):
        old = tmp_path / f"v{version}" / "ledger.db"
        old.parent.mkdir(mode=0o700)
        with closing(sqlite3.connect(old)) as conn:
            for step in range(1, version + 1):
                for statement in migration(step):
                    conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {version}")
            conn.commit()
        with Ledger.open(old) as ledger:
            write_history(ledger)
        assert schema(old) == schema(fresh)
        assert audit.verify(old, None).ok


def test_every_table_is_created_by_exactly_one_migration() -> None:
    created = [
        statement.split()[2]
        for version in range(1, SCHEMA_VERSION + 1)
        for statement in migration(version)
        if statement.startswith("CREATE TABLE")
    ]
    assert sorted(created) == sorted(t.name for t in TABLES)
    assert migration(SCHEMA_VERSION + 1) == ()


def test_the_records_read_back_are_the_tables_columns() -> None:
    def fields(record: type) -> set[str]:
        return {f.name for f in dataclasses.fields(record)}

    assert fields(StepRecord) == set(STEPS.names) - {"run_id"}
    assert fields(HostRecord) == set(RUN_HOSTS.names) - {"run_id", "position"}
    assert fields(EventRecord) == set(EVENTS.names) - {"key", "run_id"}
    assert fields(RunDetail) == set(RUNS.names) | {"hosts", "steps", "events"}
    assert fields(Entry) == set(JOURNAL.names)


def test_a_column_no_table_has_is_refused_before_any_sql_runs() -> None:
    with pytest.raises(KeyError, match="table steps has no column exitcode"):
        STEPS.insert("key", "exitcode")
    with pytest.raises(KeyError, match="table runs has no column state"):
        RUNS.select("id", "state")
    assert RUNS.select("id", "kind") == "SELECT id, kind FROM runs"
    assert STEPS.assign("stdout", "error") == "stdout = :stdout, error = :error"
