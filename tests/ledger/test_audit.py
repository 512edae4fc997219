"""Tampering with a real ledger file, and `audit verify` catching each kind of it."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from orchestrator.errors import InputError, LedgerError
from orchestrator.ledger import Ledger, audit
from orchestrator.ledger.chain import canonical, chain_hash
from tests.cli_runner import kremove

KEY = b"a signing key kept elsewhere"
KEY_VAR = "KREMOVE_TEST_SIGN_KEY"
WITH_KEY = {KEY_VAR: KEY.decode()}  # the environment of an auditor who holds the key
# Ledgers written by kremove at 53a42d8, before the chain said whether it was signed (M1): the
# same run as make_ledger(), unsigned and signed with KEY (``meta`` row only).
OLD = Path(__file__).parent / "fixtures"


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
    assert not verdict.ok and "rebuilt without the key (tampered)" in (verdict.problem or "")
    with pytest.raises(InputError, match="is signed"):
        audit.verify(signed, None)
    with pytest.raises(LedgerError, match="is signed"):
        Ledger.open(signed)  # writing without the key would break the chain: refused
    with pytest.raises(LedgerError, match="created unsigned"):
        Ledger.open(unsigned, KEY)


def test_the_cli_prints_the_head_and_names_the_first_bad_record(
    ledger_file: Path, tmp_path: Path
) -> None:
    def verify(*args: str) -> subprocess.CompletedProcess[str]:
        return kremove("audit", "verify", *args, ledger=ledger_file, timeout=60)

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


def downgrade(path: Path, host: str, status: str) -> None:
    """Issue 15 M1, as an attacker without the key does it: remove what says the ledger is
    signed, edit a host's outcome, and rebuild the whole chain as plain SHA-256."""
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM meta WHERE key = 'signed'")
    conn.execute("DELETE FROM journal WHERE op = 'ledger_signed'")
    conn.execute("UPDATE run_hosts SET status = ? WHERE host = ?", (status, host))
    rows = conn.execute("SELECT at, run_id, op, body FROM journal ORDER BY seq").fetchall()
    conn.execute("DELETE FROM journal")
    prev = ""
    for seq, (at, run_id, op, body) in enumerate(rows, 1):
        doc = json.loads(body)
        if op == "host_finished" and doc["host"] == host:
            doc["status"] = status
            body = canonical(doc)
        digest = chain_hash(None, prev, seq, at, run_id, op, body)
        conn.execute(
            "INSERT INTO journal (seq, at, run_id, op, body, prev, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, at, run_id, op, body, prev, digest),
        )
        prev = digest
    conn.commit()
    conn.close()


def copy_old(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    shutil.copyfile(OLD / name, path)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("made_by", ["this kremove", "kremove 53a42d8"])
def test_a_signed_ledger_downgraded_to_plain_sha256_is_tampering_with_the_key(
    tmp_path: Path, made_by: str
) -> None:
    if made_by == "this kremove":
        path = tmp_path / "ledger.db"
        make_ledger(path, KEY)
    else:
        path = copy_old(tmp_path, "53a42d8-signed.db")
    downgrade(path, "web2", "removed")  # web2's removal failed; the ledger now says otherwise
    done = kremove(
        "audit", "verify", "--sign-key-env", KEY_VAR, "--ledger", str(path), env=WITH_KEY
    )
    assert "without --sign-key-env" not in done.stderr  # never tell the auditor to drop the key
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (
        f"kremove: audit: ledger {path} is not signed with the given key: journal record 1 is"
        " plain SHA-256, so the chain was rebuilt without the key (tampered) or the ledger was"
        " never signed"
    )
    doc = json.loads(
        kremove(
            "audit",
            "verify",
            "--json",
            "--sign-key-env",
            KEY_VAR,
            "--ledger",
            str(path),
            env=WITH_KEY,
        ).stdout
    )
    assert doc["ok"] is False and "tampered" in doc["problem"]
    # Without the key the rebuilt chain is self-consistent: the limit an auditor must know.
    assert kremove("audit", "verify", "--ledger", str(path)).returncode == 0


def test_a_signed_ledger_says_so_in_its_first_chain_entry(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    make_ledger(path, KEY)
    conn = sqlite3.connect(path)
    first = conn.execute(
        "SELECT seq, run_id, op, body FROM journal ORDER BY seq LIMIT 1"
    ).fetchone()
    conn.execute("DELETE FROM meta WHERE key = 'signed'")  # the chain, not this row, decides
    conn.commit()
    conn.close()
    assert first == (1, "", "ledger_signed", '{"algorithm":"hmac-sha256"}')
    verdict = audit.verify(path, KEY)
    assert verdict.ok and verdict.signed and verdict.entries == 19, verdict.problem
    without = kremove("audit", "verify", "--ledger", str(path))
    assert without.returncode == 2  # nothing was checked: the auditor must give the key
    assert without.stderr.strip() == (
        f"kremove: error: ledger {path} is signed (hmac-sha256, journal record 1); give its key"
        " with --sign-key-env VAR"
    )
    with pytest.raises(LedgerError, match="is signed"):
        Ledger.open(path)  # a writer without the key is refused too
    assert (
        kremove(
            "audit", "verify", "--sign-key-env", KEY_VAR, "--ledger", str(path), env=WITH_KEY
        ).returncode
        == 0
    )
    wrong = kremove(
        "audit", "verify", "--sign-key-env", KEY_VAR, "--ledger", str(path),
        env={KEY_VAR: "another key"},
    )  # fmt: skip
    assert wrong.returncode == 1 and "journal record 1" in wrong.stderr
    assert "signed with another key" in wrong.stderr


def test_a_signing_entry_anywhere_but_first_is_not_a_ledger_write(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    make_ledger(path)
    conn = sqlite3.connect(path)
    seq, prev = conn.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    body = '{"algorithm":"hmac-sha256"}'
    conn.execute(
        "INSERT INTO journal (seq, at, run_id, op, body, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq + 1, "t", "", "ledger_signed", body, prev,
         chain_hash(None, prev, seq + 1, "t", "", "ledger_signed", body)),
    )  # fmt: skip
    conn.commit()
    conn.close()
    verdict = audit.verify(path, None)
    assert not verdict.ok and not verdict.signed
    assert verdict.problem == (
        f"journal record {seq + 1} (ledger_signed): its content is not a ledger write"
    )


def test_ledgers_written_before_the_chain_said_it_was_signed_still_verify(tmp_path: Path) -> None:
    unsigned = copy_old(tmp_path, "53a42d8-unsigned.db")
    signed = copy_old(tmp_path, "53a42d8-signed.db")
    old_unsigned = audit.verify(unsigned, None)
    assert old_unsigned.ok and old_unsigned.entries == 18 and not old_unsigned.signed
    old_signed = audit.verify(signed, KEY)
    assert old_signed.ok and old_signed.entries == 18 and old_signed.signed
    without = kremove("audit", "verify", "--ledger", str(signed))
    assert without.returncode == 2 and "is signed" in without.stderr
    with pytest.raises(LedgerError, match="created unsigned"):
        Ledger.open(unsigned, KEY)
    # Both go on being written as they were: no signing entry is added to either.
    make_ledger(unsigned)
    make_ledger(signed, KEY)
    for path, key in ((unsigned, None), (signed, KEY)):
        verdict = audit.verify(path, key)
        assert verdict.ok and verdict.entries == 36, verdict.problem
        conn = sqlite3.connect(path)
        assert conn.execute(
            "SELECT COUNT(*) FROM journal WHERE op = 'ledger_signed'"
        ).fetchone() == (0,)
        conn.close()
    tamper(signed, "UPDATE run_hosts SET status = 'removed' WHERE host = 'web2'")
    assert not audit.verify(signed, KEY).ok


def test_an_old_signed_ledger_whose_meta_row_is_gone_is_tampering_with_the_key(
    tmp_path: Path,
) -> None:
    path = copy_old(tmp_path, "53a42d8-signed.db")
    tamper(path, "DELETE FROM meta WHERE key = 'signed'")  # the chain itself left as it was
    verdict = audit.verify(path, KEY)
    assert not verdict.ok
    assert verdict.problem == (
        f"ledger {path} no longer says it is signed, yet journal record 1 is signed with the"
        " given key: what said so was removed (tampered)"
    )


NAMES = ["run#2.db", "what?mode=rw.db", "100%.db", "%23.db", "my ledger.db"]


@pytest.mark.parametrize("name", NAMES)
def test_audit_verify_reads_the_named_file_whatever_its_name(tmp_path: Path, name: str) -> None:
    """Issue 15 L6: the read-only file URI is built from the path, escaped."""
    make_ledger(tmp_path / name)
    before = sorted(p.name for p in tmp_path.iterdir())
    verdict = audit.verify(tmp_path / name, None)
    assert verdict.ok and verdict.entries == 18, verdict.problem
    done = kremove("audit", "verify", "--json", "--ledger", name, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["entries"] == 18
    # Nothing beside it but SQLite's own WAL companions of that very file.
    after = {p.name for p in tmp_path.iterdir()} - {f"{name}-wal", f"{name}-shm"}
    assert sorted(after) == before


def test_openers_racing_on_a_new_signed_ledger_start_its_chain_once(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            barrier.wait()
            Ledger.open(path, KEY).close()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT seq, op FROM journal").fetchall() == [(1, "ledger_signed")]
    conn.close()
    assert audit.verify(path, KEY).ok


def test_verifying_one_run_of_a_signed_ledger_uses_the_key_given_to_audit_verify(
    tmp_path: Path,
) -> None:
    """`audit verify RUN --sign-key-env VAR` looked the run up with the global key only, so the
    run could not be found in a signed ledger with the key the auditor gave."""
    path = tmp_path / "ledger.db"
    run_id = make_ledger(path, KEY)
    done = kremove(
        "audit", "verify", run_id[:10], "--sign-key-env", KEY_VAR, "--ledger", str(path),
        env=WITH_KEY,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_a_ledger_made_private_is_named_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    make_ledger(path)
    path.chmod(0o644)
    done = kremove("runs", "list", "--ledger", str(path))
    assert done.returncode == 0, done.stderr
    assert f"ledger {path} was readable by others (mode 0644); it is now 0600" in done.stderr
    assert path.stat().st_mode & 0o777 == 0o600
