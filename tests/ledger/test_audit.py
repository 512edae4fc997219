"""Tampering with a real ledger file, and `audit verify` catching each kind of it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.errors import LedgerError
from orchestrator.ledger import Ledger, audit
from orchestrator.ledger.chain import chain_hash

KREMOVE = shutil.which("kremove", path=str(Path(sys.executable).parent)) or "kremove"
KEY = b"a signing key kept elsewhere"


def make_ledger(path: Path, key: bytes | None = None) -> str:
    with Ledger.open(path, key) as ledger:
        run_id = ledger.start_run(
            kind="run",
            operator="alice@ctl",
            command_line="kremove run -i fleet.yml",
            inventory_digest="0" * 64,
            playbook_version="0.1.0+abc",
            hosts=["web1", "web2", "db1"],
            meta={"batches": "1,100%"},
        )
        for host, code in (("web1", 0), ("web2", 1), ("db1", 0)):
            key_ = ledger.step_started(
                run_id, host, step_id="packages", kind="detect", readonly=True, command="dpkg-query"
            )
            ledger.step_finished(key_, exit_code=0, stdout="kesl\t12", stderr="", timed_out=False)
            key_ = ledger.step_started(
                run_id, host, step_id="purge:kesl", kind="remove", readonly=False, command="dpkg -P"
            )
            ledger.step_finished(key_, exit_code=code, stdout="", stderr="x", timed_out=False)
            status = "removed" if code == 0 else "failed"
            ledger.host_finished(run_id, host, status=status, reason=None, findings=[{"p": 1}])
        ledger.record_event(run_id, "web1", "hostkey_pinned", {"fingerprint": "SHA256:x"})
        ledger.finish_run(run_id, "completed")
    return run_id


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    make_ledger(path)
    return path


def tamper(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def test_an_untouched_ledger_verifies_with_its_head(ledger_file: Path) -> None:
    verdict = audit.verify(ledger_file, None)
    assert verdict.ok and verdict.problem is None
    assert verdict.entries == 1 + 6 * 2 + 3 + 1 + 1  # start, 6 steps started+finished, 3 hosts,
    # an event, the finish
    assert len(verdict.head) == 64


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        (
            ["UPDATE steps SET exit_code = 0 WHERE step_id = 'purge:kesl' AND host = 'web2'"],
            "(purge:kesl on web2, run",
        ),
        (["DELETE FROM steps WHERE step_id = 'purge:kesl' AND host = 'db1'"], "gone: deleted"),
        (
            [  # two hosts' outcomes swapped
                "UPDATE run_hosts SET status = 'x' WHERE host = 'web1'",
                "UPDATE run_hosts SET status = 'removed' WHERE host = 'web2'",
                "UPDATE run_hosts SET status = 'failed' WHERE host = 'web1'",
            ],
            "host web1 of run",
        ),
        (["DELETE FROM journal WHERE seq = 5"], "journal record 5 is missing: deleted"),
        (
            ["UPDATE journal SET body = replace(body, '\"exit_code\":1', '\"exit_code\":0')"],
            "its hash does not match: edited",
        ),
        (
            [  # two journal records swapped
                "UPDATE journal SET seq = -1 WHERE seq = 3",
                "UPDATE journal SET seq = 3 WHERE seq = 4",
                "UPDATE journal SET seq = 4 WHERE seq = -1",
            ],
            "reordered",
        ),
        (
            [
                "INSERT INTO events (run_id, host, kind, detail, at) SELECT run_id, host, kind,"
                " detail, at FROM events"
            ],
            "is not in the journal: added",
        ),
    ],
    ids=[
        "exit-code",
        "deleted-step",
        "swapped-hosts",
        "deleted-entry",
        "edited-entry",
        "swapped-entries",
        "added-event",
    ],
)
def test_each_kind_of_tampering_is_caught(
    ledger_file: Path, statements: list[str], expected: str
) -> None:
    tamper(ledger_file, *statements)
    verdict = audit.verify(ledger_file, None)
    assert not verdict.ok
    assert verdict.problem is not None and expected in verdict.problem, verdict.problem


def test_the_edited_exit_code_is_named_exactly(ledger_file: Path) -> None:
    tamper(
        ledger_file, "UPDATE steps SET exit_code = 0 WHERE step_id = 'purge:kesl' AND host = 'web2'"
    )
    problem = audit.verify(ledger_file, None).problem
    assert problem is not None
    assert "exit_code is 0 in the ledger but 1 in journal record" in problem
    assert problem.endswith(": edited")


def test_a_truncated_file_is_caught(ledger_file: Path) -> None:
    data = ledger_file.read_bytes()
    ledger_file.write_bytes(data[: len(data) // 2])
    for side in (ledger_file.with_name("ledger.db-wal"), ledger_file.with_name("ledger.db-shm")):
        side.unlink(missing_ok=True)
    verdict = audit.verify(ledger_file, None)
    assert not verdict.ok and verdict.problem is not None


def rebuild_chain(path: Path, key: bytes | None) -> None:
    """What an attacker with write access does: edit, then recompute every hash."""
    conn = sqlite3.connect(path)
    conn.execute("UPDATE steps SET exit_code = 0 WHERE step_id = 'purge:kesl'")
    rows = conn.execute("SELECT seq, at, run_id, op, body FROM journal ORDER BY seq").fetchall()
    prev = ""
    for seq, at, run_id, op, body in rows:
        doc = json.loads(body)
        if op == "step_finished":
            doc["exit_code"] = 0
            body = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        digest = chain_hash(key, prev, seq, at, run_id, op, body)
        conn.execute(
            "UPDATE journal SET body = ?, prev = ?, hash = ? WHERE seq = ?",
            (body, prev, digest, seq),
        )
        prev = digest
    conn.commit()
    conn.close()


def test_a_signed_chain_cannot_be_rebuilt_without_the_key(tmp_path: Path) -> None:
    unsigned = tmp_path / "plain.db"
    make_ledger(unsigned)
    rebuild_chain(unsigned, None)
    assert audit.verify(unsigned, None).ok  # the limit of an unsigned chain, stated in the docs

    signed = tmp_path / "signed.db"
    make_ledger(signed, KEY)
    assert audit.verify(signed, KEY).ok and audit.verify(signed, KEY).signed
    rebuild_chain(signed, None)
    verdict = audit.verify(signed, KEY)
    assert not verdict.ok and "signed with another key" in (verdict.problem or "")
    with pytest.raises(LedgerError, match="is signed"):
        audit.verify(signed, None)
    with pytest.raises(LedgerError, match="is signed"):
        Ledger.open(signed)  # writing without the key would break the chain: refused
    with pytest.raises(LedgerError, match="created unsigned"):
        Ledger.open(unsigned, KEY)


def test_the_cli_prints_the_head_and_names_the_first_bad_record(
    ledger_file: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KREMOVE_")}
    env["KREMOVE_LEDGER"] = str(ledger_file)

    def verify(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KREMOVE, "audit", "verify", *args], env=env, capture_output=True, text=True, timeout=60
        )

    good = verify()
    head = audit.verify(ledger_file, None).head
    assert good.returncode == 0 and head in good.stdout and "18 records verified" in good.stdout
    assert verify("--expect-head", head[:16]).returncode == 0
    assert verify("--expect-head", "00" * 8).returncode == 1
    tamper(ledger_file, "DELETE FROM steps WHERE step_id = 'packages' AND host = 'web1'")
    bad = verify()
    assert bad.returncode == 1
    assert len(bad.stderr.strip().splitlines()) == 1 and "deleted" in bad.stderr


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_verifying_changes_nothing(ledger_file: Path) -> None:
    Ledger.open(ledger_file).close()  # settle the WAL
    before = sha(ledger_file)
    audit.verify(ledger_file, None)
    assert sha(ledger_file) == before


def test_a_pruned_run_leaves_a_chain_that_still_verifies(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    old = make_ledger(path)
    new = make_ledger(path)
    with Ledger.open(path) as ledger:
        ledger.prune_run(old, "0" * 64)
        assert [r.id for r in ledger.list_runs()] == [new]
    verdict = audit.verify(path, None)
    assert verdict.ok, verdict.problem
    tamper(path, f"DELETE FROM steps WHERE run_id = '{new}' AND host = 'db1'")
    assert not audit.verify(path, None).ok  # pruning one run does not hide edits to another
