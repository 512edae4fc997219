"""Archive-and-prune in-process: runs are on disk in the archive before they leave the ledger,
the archive is private, and the chain still verifies."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from orchestrator.errors import InputError
from orchestrator.ledger import Ledger, audit
from orchestrator.ledger.archive import archive_and_prune, prunable, write_private
from tests.ledger.conftest import StartRun


def _finished(ledger: Ledger, start: StartRun, status: str = "completed") -> str:
    run_id = start(ledger, hosts=("web1",))
    ledger.host_finished(run_id, "web1", status="clean", reason=None, findings=[])
    ledger.finish_run(run_id, status)
    return run_id


def test_prune_archives_then_deletes_and_the_chain_still_verifies(
    ledger: Ledger, ledger_path: Path, start: StartRun, tmp_path: Path
) -> None:
    first = _finished(ledger, start)
    second = _finished(ledger, start, "halted")
    running = start(ledger, hosts=("db1",))
    archive = tmp_path / "old.jsonl"
    runs = prunable(ledger, "9999")
    assert [r.id for r in runs] == [second, first]  # newest first; the running one is kept
    archive_and_prune(ledger, runs, archive)
    lines = archive.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [first, second]  # oldest first
    assert [r.id for r in ledger.list_runs(10)] == [running]
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    verdict = audit.verify(ledger_path, None)
    assert verdict.problem is None
    # the journal keeps each archive line's digest, so the archive can be matched to the chain
    digests = {hashlib.sha256((line + "\n").encode()).hexdigest() for line in lines}
    with closing(sqlite3.connect(ledger_path)) as conn:
        bodies = conn.execute("SELECT body FROM journal WHERE op = 'run_pruned'").fetchall()
    assert {json.loads(b)["archive_sha256"] for (b,) in bodies} == digests


def test_nothing_before_the_date_is_nothing_to_prune(ledger: Ledger, start: StartRun) -> None:
    _finished(ledger, start)
    assert prunable(ledger, "2000-01-01") == []


def test_an_existing_archive_is_made_private_and_appended_to(tmp_path: Path) -> None:
    archive = tmp_path / "kept.jsonl"
    archive.write_text("earlier\n")
    archive.chmod(0o644)
    write_private(archive, "--archive kept.jsonl", "next\n", append=True)
    assert archive.read_text() == "earlier\nnext\n"
    assert oct(archive.stat().st_mode & 0o777) == "0o600"


def test_an_unwritable_place_is_an_input_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = tmp_path / "no" / "such" / "dir.jsonl"
    else:  # pragma: no cover - the suite runs as root
        target = Path("/proc/kremove.jsonl")
    with pytest.raises(InputError, match="--archive x: cannot write"):
        write_private(target, "--archive x", "line\n")
