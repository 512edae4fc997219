"""Crash safety: kremove killed with SIGKILL at random moments of a wave, then resumed.

After every trial: each host has exactly one final status; no changing step that the ledger
recorded as finished was sent again; a host whose changing step was started but not finished was
detected again before anything else was sent to it; the ledger verifies.
"""

from __future__ import annotations

import json
import random
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.playbook.loader import load_playbooks
from tests import figures
from tests.cli_runner import kremove, start
from tests.fleet.fleet import Fleet

CATALOG = load_playbooks().catalog
PURGE = re.compile(r"dpkg --purge ([a-z0-9.+-]+)")
TRIALS = 20
SEED = 20261125


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory({"one_product": 3, "several_products": 3})


def kill_at_random(fleet: Fleet, home: Path, rng: random.Random) -> str | None:
    known = fleet.write_known_hosts(home / "known_hosts")
    inventory = fleet.write_inventory(home / "fleet.yml", known_hosts=known)
    proc = start(
        "run", "-i", str(inventory), "--yes", "--json", "--forks", "2",
        home=home, env=fleet.env, keep_output=False,
    )  # fmt: skip
    # A random moment of the run: after the k-th step was journaled, k from 1 to about the whole
    # run's count (6 hosts, 5 to 8 steps each), plus a random part of a second.
    _wait_for_steps(home / "l.db", rng.randint(1, 36), proc)
    time.sleep(rng.uniform(0, 0.15))
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    run_id = None
    if (home / "l.db").exists():
        db = sqlite3.connect(f"file:{home / 'l.db'}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT id FROM runs ORDER BY started DESC LIMIT 1").fetchone()
            run_id = row[0] if row else None
        except sqlite3.OperationalError:
            run_id = None
        finally:
            db.close()
    return run_id


@pytest.mark.timeout(900)
def test_kill_and_resume(fleet: Fleet, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    cut = 0
    lost = 0  # hosts without exactly one final status after the resume
    repeated = 0  # changing steps recorded finished and sent again
    for trial in range(TRIALS):
        fleet.reset()
        home = tmp_path / f"trial{trial}"
        home.mkdir()
        run_id = kill_at_random(fleet, home, rng)
        if run_id is None:
            continue  # killed before the run was recorded: nothing to resume, nothing sent
        first = json.loads(
            kremove("runs", "show", run_id, "--json", home=home, env=fleet.env).stdout
        )
        cut += first["status"] == "running"
        finished_changes = {
            (s["host"], s["step_id"])
            for s in first["steps"]
            if not s["readonly"] and s["finished"] is not None
        }
        cut_off = {s["host"] for s in first["steps"] if not s["readonly"] and s["finished"] is None}
        sent_before = {h.name: len(fleet.commands_log(h.name)) for h in fleet.hosts}

        resumed = kremove("run", "--resume", run_id, "--yes", "--json", home=home, env=fleet.env)
        if first["status"] == "completed":
            assert resumed.returncode == 2, trial  # nothing to resume
        else:
            assert resumed.returncode == 0, (trial, resumed.stdout, resumed.stderr)
        record = json.loads(
            kremove("runs", "show", run_id, "--json", home=home, env=fleet.env).stdout
        )
        assert record["status"] == "completed", trial
        lost += sum(1 for h in record["hosts"] if h["status"] not in ("removed", "clean"))
        assert {h["status"] for h in record["hosts"]} <= {"removed", "clean"}, (trial, record)
        assert all(h["status"] for h in record["hosts"])  # one final status each

        for h in fleet.hosts:
            mine = [x for x in record["hosts"] if x["host"] == h.name]
            steps = [x for x in record["steps"] if x["host"] == h.name]
            assert fleet.kaspersky_packages(h.name) == {}, (
                trial,
                h.name,
                mine,
                [x["stdout"] for x in steps][-1:],
                [f"{x['step_id']}:{x['exit_code']}" for x in steps],
            )
            after = fleet.commands_log(h.name)[sent_before[h.name] :]
            if after:  # detect first: who the login is (the privilege probe), then what is there
                assert "sudo -n -l" in after[0], (trial, h.name, after[0][:80])
                assert "dpkg-query" in after[1], (trial, h.name, after[1][:80])
            purged_again = {
                product
                for c in after
                for m in PURGE.finditer(c)
                for product in [CATALOG.product_for_package(m.group(1))]
                if product is not None
                for product in [product.id]
            }
            for host, step in finished_changes:
                if host == h.name and step.startswith("purge:"):
                    repeated += step.split(":", 1)[1] in purged_again
                    assert step.split(":", 1)[1] not in purged_again, (trial, h.name, step)
        for host in cut_off:
            later = [s for s in record["steps"] if s["host"] == host]
            assert later, (trial, host)
        verify = kremove("audit", "verify", home=home, env=fleet.env)
        assert verify.returncode == 0, (trial, verify.stderr)
    print(f"{cut} of {TRIALS} trials killed kremove in the middle of its run")
    figures.record(
        "crash",
        trials=TRIALS,
        killed_mid_run=cut,
        hosts=len(fleet.hosts) * TRIALS,
        hosts_lost=lost,
        steps_repeated=repeated,
    )
    assert cut >= TRIALS // 2  # the kill moments really fall inside runs


def _wait_for_steps(ledger: Path, count: int, proc: subprocess.Popen[str]) -> None:
    give_up = time.monotonic() + 60
    while time.monotonic() < give_up and proc.poll() is None:
        if ledger.exists():
            db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
            try:
                if db.execute("SELECT COUNT(*) FROM steps").fetchone()[0] >= count:
                    return
            except sqlite3.OperationalError:
                pass
            finally:
                db.close()
        time.sleep(0.005)
