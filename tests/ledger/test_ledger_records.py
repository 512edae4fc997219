"""Round trips through a real ledger file: runs, hosts, steps, lookups and listings."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.errors import InputError, LedgerError
from orchestrator.ledger import Ledger, RunNotFound, writes

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
RUN_ID = re.compile(r"^\d{8}T\d{6}-[0-9a-f]{4}$")
StartRun = Callable[..., str]  # the `start` fixture


def test_run_round_trip_with_hosts_and_steps(
    ledger: Ledger, ledger_path: Path, start: StartRun
) -> None:
    run_id = start(ledger, hosts=["web1", "db1", "mail1"])
    detect = ledger.step_started(
        run_id, "web1", step_id="detect.dpkg", kind="detect", readonly=True, command="dpkg -l"
    )
    ledger.step_finished(detect, exit_code=0, stdout="ii kesl 12.0", stderr="", timed_out=False)
    remove = ledger.step_started(
        run_id, "web1", step_id="remove.kesl", kind="remove", readonly=False, command="apt purge"
    )
    ledger.step_finished(
        remove, exit_code=None, stdout="", stderr="", timed_out=True, error="deadline 300s"
    )
    finding = {"product": "kesl", "name": "Kaspersky Endpoint Security", "version": "12.0"}
    ledger.host_finished(
        run_id, "web1", status="timeout", reason="remove timed out", findings=[finding]
    )
    ledger.host_finished(run_id, "db1", status="clean", reason=None, findings=[])
    ledger.finish_run(run_id, "completed")
    ledger.close()

    with Ledger.open(ledger_path) as reopened:
        run = reopened.get_run(run_id)

    assert RUN_ID.match(run.id)
    assert (run.kind, run.status, run.operator) == ("run", "completed", "alice")
    assert run.command_line == "kremove run -i inv.yml --batches 1,100%"
    assert (run.inventory_digest, run.playbook_version) == ("sha256:0f1e", "2026.11.1")
    assert run.meta == {"batches": [1, "100%"], "window": None}
    assert (
        run.started
        and run.finished
        and TIMESTAMP.match(run.started)
        and TIMESTAMP.match(run.finished)
    )
    assert [h.host for h in run.hosts] == ["web1", "db1", "mail1"]  # selection order
    web1, db1, mail1 = run.hosts
    assert (web1.status, web1.reason, web1.findings) == ("timeout", "remove timed out", [finding])
    assert web1.started == run.steps[0].started  # a host starts with its first step
    assert (db1.status, db1.started, db1.finished) == ("clean", db1.finished, db1.finished)
    assert (mail1.status, mail1.started, mail1.finished, mail1.findings) == (None, None, None, [])
    assert run.counts == {"timeout": 1, "clean": 1, "pending": 1}

    first, second = run.steps
    assert (first.key, first.host, first.seq, first.step_id) == (detect, "web1", 1, "detect.dpkg")
    assert (first.kind, first.readonly, first.command) == ("detect", True, "dpkg -l")
    assert (first.exit_code, first.timed_out, first.stdout, first.error) == (
        0,
        False,
        "ii kesl 12.0",
        None,
    )
    assert (second.seq, second.readonly, second.exit_code, second.timed_out) == (
        2,
        False,
        None,
        True,
    )
    assert second.error == "deadline 300s"


def test_to_dict_is_json_with_stable_keys(ledger: Ledger, start: StartRun) -> None:
    run_id = start(ledger, hosts=["web1"])
    key = ledger.step_started(
        run_id, "web1", step_id="d", kind="detect", readonly=True, command="c"
    )
    ledger.step_finished(key, exit_code=0, stdout="o", stderr="e", timed_out=False)
    ledger.host_finished(run_id, "web1", status="clean", reason=None, findings=[])
    doc = ledger.get_run(run_id).to_dict()
    json.dumps(doc)
    assert list(doc) == [
        "id", "kind", "status", "started", "finished", "operator", "command_line",
        "inventory_digest", "playbook_version", "meta", "counts", "hosts", "steps", "events",
    ]  # fmt: skip
    assert list(doc["hosts"][0]) == [
        "host", "status", "reason", "findings", "post_findings", "plan", "started", "finished",
    ]  # fmt: skip
    assert list(doc["steps"][0]) == [
        "key", "host", "seq", "step_id", "kind", "readonly", "command", "started", "finished",
        "exit_code", "timed_out", "stdout", "stderr", "error",
    ]  # fmt: skip
    summary = ledger.list_runs()[0].to_dict()
    json.dumps(summary)
    assert list(summary) == [
        "id", "kind", "status", "started", "finished", "operator", "hosts_selected", "counts",
    ]  # fmt: skip


def test_step_started_is_committed_before_it_finishes(
    ledger: Ledger, ledger_path: Path, start: StartRun
) -> None:
    run_id = start(ledger)
    key = ledger.step_started(
        run_id, "web1", step_id="remove.kesl", kind="remove", readonly=False, command="apt purge"
    )
    # Another process (here: a second connection) sees it at once, as a crash would leave it.
    with Ledger.open(ledger_path) as other:
        (step,) = other.get_run(run_id).steps
    assert step.key == key
    assert (step.finished, step.exit_code, step.stdout, step.error) == (None, None, "", None)
    assert TIMESTAMP.match(step.started)
    ledger.step_finished(key, exit_code=0, stdout="", stderr="", timed_out=False)
    assert ledger.get_run(run_id).steps[0].finished is not None


def test_host_finished_again_replaces_the_outcome(ledger: Ledger, start: StartRun) -> None:
    run_id = start(ledger)
    ledger.host_finished(run_id, "web1", status="unreachable", reason="timed out", findings=[])
    ledger.host_finished(run_id, "web1", status="removed", reason=None, findings=[{"p": "kes"}])
    web1 = ledger.get_run(run_id).hosts[0]
    assert (web1.status, web1.reason, web1.findings) == ("removed", None, [{"p": "kes"}])


def test_misuse_is_reported_not_silently_stored(ledger: Ledger, start: StartRun) -> None:
    run_id = start(ledger)
    with pytest.raises(LedgerError, match="has no selected host 'nope'"):
        ledger.step_started(run_id, "nope", step_id="d", kind="detect", readonly=True, command="c")
    with pytest.raises(LedgerError, match="has no selected host"):
        ledger.host_finished(run_id, "nope", status="clean", reason=None, findings=[])
    with pytest.raises(LedgerError, match="was never started"):
        ledger.step_finished(999, exit_code=0, stdout="", stderr="", timed_out=False)
    key = ledger.step_started(
        run_id, "web1", step_id="d", kind="detect", readonly=True, command="c"
    )
    ledger.step_finished(key, exit_code=0, stdout="", stderr="", timed_out=False)
    with pytest.raises(LedgerError, match="already finished"):
        ledger.step_finished(key, exit_code=1, stdout="", stderr="", timed_out=False)
    with pytest.raises(LedgerError, match="never started"):
        ledger.finish_run("20000101T000000-0000", "completed")
    for bad in ("", "Gone!", "pending"):
        with pytest.raises(ValueError, match="is not a lowercase word but 'pending'"):
            ledger.host_finished(run_id, "web1", status=bad, reason=None, findings=[])
    ledger.host_finished(run_id, "web1", status="found", reason=None, findings=[])  # engine's word
    with pytest.raises(ValueError, match="unknown run status"):
        ledger.finish_run(run_id, "done")
    with pytest.raises(ValueError, match="more than once: web1"):
        start(ledger, hosts=["web1", "db1", "web1"])
    with pytest.raises(TypeError):
        start(ledger, hosts="web1")


def test_any_str_is_stored_safely(ledger: Ledger, start: StartRun) -> None:
    nasty = "a\x00b\udc80c\ud800\U0001f600\r\n"
    run_id = start(ledger, hosts=[nasty])
    key = ledger.step_started(
        run_id, nasty, step_id=nasty, kind="detect", readonly=True, command=nasty
    )
    ledger.step_finished(key, exit_code=0, stdout=nasty, stderr=nasty, timed_out=False, error=nasty)
    ledger.host_finished(run_id, nasty, status="failed", reason=nasty, findings=[{nasty: nasty}])
    run = ledger.get_run(run_id)
    stored = "a\x00b\\udc80c\\ud800\U0001f600\r\n"  # NULs kept; lone surrogates made visible
    assert run.hosts[0].host == stored
    assert run.hosts[0].reason == stored
    assert run.steps[0].stdout == stored and run.steps[0].command == stored
    assert run.hosts[0].findings == [{nasty: nasty}]  # JSON escapes keep findings exact
    json.dumps(run.to_dict())


def test_prefix_lookup_and_ambiguity(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, start: StartRun
) -> None:
    ticks = itertools.count()
    monkeypatch.setattr(writes, "now", lambda: f"2026-11-25T12:00:00.{next(ticks):06d}+00:00")
    suffixes = iter(["aaaa", "aaab", "aaaa", "bbbb"])  # the repeated one must be redrawn
    monkeypatch.setattr(writes, "token_hex", lambda n: next(suffixes))
    first, second, third = (start(ledger) for _ in range(3))
    assert (first, second, third) == (
        "20261125T120000-aaaa",
        "20261125T120000-aaab",
        "20261125T120000-bbbb",
    )
    assert ledger.get_run(third).id == third
    assert ledger.get_run("20261125T120000-b").id == third
    assert ledger.get_run(" 20261125T120000-aaab ").id == second
    with pytest.raises(RunNotFound, match="run '20261125T120000-aaa' matches 2 runs in ledger"):
        ledger.get_run("20261125T120000-aaa")
    with pytest.raises(RunNotFound, match="matches 3 runs"):
        ledger.get_run("2026")


def test_unknown_run_is_an_input_error(ledger: Ledger, ledger_path: Path, start: StartRun) -> None:
    start(ledger)
    for wanted in ("abc", ""):
        with pytest.raises(RunNotFound) as caught:
            ledger.get_run(wanted)
        assert isinstance(caught.value, InputError)
        assert caught.value.exit_code == 2
        assert str(caught.value) == (
            f"run {wanted!r} is not in ledger {ledger_path}; `kremove runs list` shows the runs"
        )


def test_list_runs_newest_first_with_counts(ledger: Ledger, start: StartRun) -> None:
    assert ledger.list_runs() == []
    first = start(ledger, hosts=["a", "b", "c"], kind="detect")
    for host in ("a", "b"):
        ledger.host_finished(first, host, status="clean", reason=None, findings=[])
    ledger.host_finished(first, "c", status="unreachable", reason="no route", findings=[])
    ledger.finish_run(first, "completed")
    second = start(ledger, hosts=["a", "b"])
    ledger.host_finished(second, "a", status="removed", reason=None, findings=[])
    ledger.finish_run(second, "halted")
    third = start(ledger, hosts=["a"])

    runs = ledger.list_runs()
    assert [r.id for r in runs] == [third, second, first]
    assert [r.status for r in runs] == ["running", "halted", "completed"]
    assert [r.kind for r in runs] == ["run", "run", "detect"]
    assert [r.hosts_selected for r in runs] == [1, 2, 3]
    assert [dict(r.counts) for r in runs] == [
        {"pending": 1},
        {"removed": 1, "pending": 1},
        {"clean": 2, "unreachable": 1},
    ]
    assert runs[0].finished is None and runs[1].finished is not None
    assert [r.id for r in ledger.list_runs(limit=2)] == [third, second]
    assert ledger.list_runs(limit=0) == []


def test_a_closed_ledger_says_so(ledger_path: Path) -> None:
    ledger = Ledger.open(ledger_path)
    ledger.close()
    ledger.close()  # idempotent
    with pytest.raises(LedgerError, match="is closed"):
        ledger.list_runs()


def test_events_are_kept_in_order_with_their_run(
    ledger: Ledger, ledger_path: Path, start: StartRun
) -> None:
    run_id = start(ledger, hosts=["web1"])
    detail = {"fingerprint": "SHA256:abc", "key_type": "ssh-ed25519"}
    ledger.record_event(run_id, "bastion", "hostkey_pinned", detail)  # a jump host, not selected
    ledger.record_event(run_id, None, "batch_started", {"batch": 1})
    with pytest.raises(LedgerError, match="never started"):
        ledger.record_event("20000101T000000-0000", None, "batch_started", {})
    ledger.close()
    with Ledger.open(ledger_path) as reopened:
        events = reopened.get_run(run_id).events
    assert [(e.host, e.kind, e.detail) for e in events] == [
        ("bastion", "hostkey_pinned", detail),
        (None, "batch_started", {"batch": 1}),
    ]
    assert all(TIMESTAMP.match(e.at) for e in events)


def test_a_version_1_ledger_is_upgraded_in_place(ledger_path: Path, start: StartRun) -> None:
    import sqlite3

    with Ledger.open(ledger_path) as ledger:
        run_id = start(ledger, hosts=["web1"])
    conn = sqlite3.connect(ledger_path)  # back to what kremove 0.1 wrote
    conn.execute("DROP TABLE events")
    conn.execute("ALTER TABLE run_hosts DROP COLUMN post_findings")
    conn.execute("ALTER TABLE run_hosts DROP COLUMN plan")
    conn.execute("DROP TABLE host_locks")
    conn.execute("DROP TABLE journal")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with Ledger.open(ledger_path) as ledger:
        ledger.record_event(run_id, "web1", "hostkey_pinned", {"fingerprint": "SHA256:x"})
        assert ledger.get_run(run_id).events[0].kind == "hostkey_pinned"


def test_a_host_is_worked_by_one_run_at_a_time(ledger: Ledger, start: StartRun) -> None:
    first = start(ledger, hosts=["web1", "web2"])
    second = start(ledger, hosts=["web1"])
    assert ledger.lock_host(first, "web1", "ctl", os.getpid()) is None
    assert ledger.lock_host(first, "web1", "ctl", os.getpid()) is None  # its own lock again
    assert ledger.lock_host(second, "web1", "ctl", os.getpid()) == first
    assert ledger.lock_host(second, "web1", "other-node", 1) == first
    ledger.unlock_host(first, "web1")
    assert ledger.lock_host(second, "web1", "ctl", os.getpid()) is None


def test_a_lock_left_by_a_dead_or_finished_run_is_taken_over(
    ledger: Ledger, start: StartRun
) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    crashed = start(ledger, hosts=["web1"])
    assert ledger.lock_host(crashed, "web1", "ctl", dead.pid) is None
    other = start(ledger, hosts=["web1"])
    assert ledger.lock_host(other, "web1", "ctl", os.getpid()) is None  # the pid is gone
    finished = start(ledger, hosts=["web2"])
    assert ledger.lock_host(finished, "web2", "far-away", 1) is None
    ledger.finish_run(finished, "completed")
    assert ledger.lock_host(other, "web2", "ctl", os.getpid()) is None  # its run is over
