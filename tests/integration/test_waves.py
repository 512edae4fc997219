"""Staged waves on the simulated fleet: canary then growing batches, a failure budget that stops new
hosts at once, pause and resume, change windows, dry runs, reviewed plans, and host locks.
"""

from __future__ import annotations

import itertools
import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import kremove, start
from tests.fleet.fleet import Fleet

CHANGING = ("dpkg --purge", "rm -rf", "rmdir")


class Env:
    """A home, ledger and inventory for one test, over one fleet."""

    def __init__(self, fleet: Fleet, home: Path) -> None:
        self.fleet = fleet
        self.home = home
        known = fleet.write_known_hosts(home / "known_hosts")
        self.inventory = fleet.write_inventory(home / "fleet.yml", known_hosts=known)

    def kremove(self, *args: str) -> subprocess.CompletedProcess[str]:
        return kremove(*args, home=self.home, env=self.fleet.env)

    def run(self, *args: str) -> tuple[int, dict[str, Any], str]:
        done = self.kremove("run", "-i", str(self.inventory), "--yes", "--json", *args)
        return done.returncode, json.loads(done.stdout) if done.stdout else {}, done.stderr

    def show(self, run_id: str) -> dict[str, Any]:
        done = self.kremove("runs", "show", run_id, "--json")
        assert done.returncode == 0, done.stderr
        doc: dict[str, Any] = json.loads(done.stdout)
        return doc


def changing(commands: Sequence[str]) -> list[str]:
    return [c for c in commands if any(word in c for word in CHANGING)]


@pytest.fixture
def fresh(fleet_factory: Callable[..., Fleet], tmp_path: Path) -> Callable[..., Env]:
    def make(kinds: Any, **options: Any) -> Env:
        return Env(fleet_factory(kinds, **options), tmp_path)

    return make


def test_a_canary_then_growing_batches(fresh: Callable[..., Env]) -> None:
    env = fresh({"one_product": 7})
    code, doc, err = env.run("--batches", "1,2,100%", "--forks", "10")
    assert code == 0, err
    record = env.show(doc["run"])
    batches = [e["detail"]["hosts"] for e in record["events"] if e["kind"] == "batch_started"]
    assert [len(b) for b in batches] == [1, 2, 4]
    times = {h["host"]: (h["started"], h["finished"]) for h in record["hosts"]}
    for earlier, later in itertools.pairwise(batches):
        # every host of a batch finished before any host of the next one started
        assert max(times[h][1] for h in earlier) < min(times[h][0] for h in later)
    assert {h["status"] for h in record["hosts"]} == {"removed"}


def test_the_budget_halts_the_wave_at_once_and_unreachable_hosts_count(
    fresh: Callable[..., Env],
) -> None:
    kinds = ["one_product", "unreachable", "one_product", "unreachable", "one_product"]
    env = fresh([*kinds, "one_product"])
    code, doc, err = env.run("--max-fail", "1", "--forks", "1", "--batches", "2,100%")
    assert code == 3, err  # halted
    statuses = [h["status"] for h in doc["hosts"]]
    assert statuses == ["removed", "unreachable", "removed", "unreachable", "skipped", "skipped"]
    record = env.show(doc["run"])
    assert record["status"] == "halted"
    (halt,) = [e for e in record["events"] if e["kind"] == "halted"]
    names = [h.name for h in env.fleet.hosts]
    assert halt["detail"]["spent_by"] == [names[1], names[3]]
    assert "failure budget (1) was spent by" in doc["hosts"][4]["reason"]
    for late in env.fleet.hosts[4:]:
        assert env.fleet.commands_log(late.name) == []  # never contacted
        assert env.fleet.kaspersky_packages(late.name) == {"kesl": "12.1.0-1297"}


def test_a_paused_run_resumes_to_completion_touching_each_host_once(
    fresh: Callable[..., Env],
) -> None:
    env = fresh({"one_product": 4})
    code, doc, err = env.run("--batches", "1,1,100%", "--pause-after", "1")
    assert code == 1, err  # not every host is done
    assert [h["status"] for h in doc["hosts"]].count("removed") == 1
    record = env.show(doc["run"])
    assert record["status"] == "paused"
    resumed = env.kremove("run", "--resume", doc["run"], "--yes", "--json")
    assert resumed.returncode == 0, resumed.stderr
    after = env.show(doc["run"])
    assert after["status"] == "completed"
    assert {h["status"] for h in after["hosts"]} == {"removed"}
    for h in env.fleet.hosts:
        assert len([c for c in env.fleet.commands_log(h.name) if "dpkg --purge" in c]) == 1


def _window(open_for: float) -> str:
    start = datetime.now() - timedelta(seconds=5)
    end = datetime.now() + timedelta(seconds=open_for)
    return f"{start:%H:%M:%S}-{end:%H:%M:%S}"


def test_outside_the_window_nothing_starts(fresh: Callable[..., Env]) -> None:
    env = fresh({"one_product": 1})
    start = datetime.now() + timedelta(hours=2)
    end = start + timedelta(hours=1)
    done = env.kremove(
        "run", "-i", str(env.inventory), "--yes", "--window", f"{start:%H:%M}-{end:%H:%M}"
    )
    assert done.returncode == 4
    assert "outside the change window" in done.stderr and "next opens" in done.stderr
    assert env.fleet.commands_log(env.fleet.hosts[0].name) == []


def test_a_closing_window_stops_new_hosts_and_the_run_resumes_later(
    fresh: Callable[..., Env],
) -> None:
    # The window is set before kremove starts: on a loaded machine its start-up alone took over
    # 2 s, and the run then ended before any host began. 6 s leaves room and still closes
    # while the second of four 3-second hosts is at work.
    env = fresh({"slow": 4}, slow_delay=3.0)
    code, doc, err = env.run("--forks", "1", "--window", _window(6.0))
    assert code == 4, err
    statuses = [h["status"] for h in doc["hosts"]]
    assert 1 <= statuses.count("removed") < 4 and statuses.count("skipped") >= 1
    assert env.show(doc["run"])["status"] == "paused"
    resumed = env.kremove(
        "run", "--resume", doc["run"], "--yes", "--json", "--window", "00:00-23:59:59"
    )
    assert resumed.returncode == 0, resumed.stderr
    assert {h["status"] for h in env.show(doc["run"])["hosts"]} == {"removed"}
    for h in env.fleet.hosts:
        assert len([c for c in env.fleet.commands_log(h.name) if "dpkg --purge" in c]) == 1


def test_a_dry_run_sends_no_changing_command(fresh: Callable[..., Env]) -> None:
    env = fresh({"one_product": 2, "several_products": 2, "uninstall_fails": 1})
    done = env.kremove("plan", "-i", str(env.inventory), "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert {h["status"] for h in doc["hosts"]} == {"planned"}
    assert "would remove" in doc["summary"]["text"]
    several = next(h for h in doc["hosts"] if "several" in h["host"])
    assert [s["step"] for s in several["steps"]][:3] == [
        "purge:kesl-gui",
        "purge:kesl",
        "purge:klnagent",
    ]
    for h in env.fleet.hosts:
        received = env.fleet.commands_log(h.name)
        assert received and not changing(received), h.name
        assert env.fleet.kaspersky_packages(h.name) == h.expected_packages
    assert all(s["readonly"] for s in env.show(doc["plan"])["steps"])


def test_a_reviewed_plan_runs_exactly_and_a_drifted_host_is_skipped(
    fresh: Callable[..., Env],
) -> None:
    env = fresh({"one_product": 2, "several_products": 1})
    planned = json.loads(env.kremove("plan", "-i", str(env.inventory), "--json").stdout)
    drifted = env.fleet.hosts[0].name
    env.fleet.run_on_host(drifted, ["dpkg", "--purge", "kesl"])  # someone removed it meanwhile
    done = env.kremove("run", "--plan", planned["plan"], "--yes", "--json")
    assert done.returncode == 1, done.stderr  # the drifted host is skipped
    doc = json.loads(done.stdout)
    by_host = {h["host"]: h for h in doc["hosts"]}
    assert by_host[drifted]["status"] == "skipped"
    assert by_host[drifted]["reason"].startswith(
        "drifted: found nothing, the reviewed plan had kesl"
    )
    steps = {h["host"]: [s["command"] for s in h["steps"]] for h in planned["hosts"]}
    record = env.show(doc["run"])
    for name in steps:
        if name == drifted:
            assert not changing([s["command"] for s in record["steps"] if s["host"] == name])
            continue
        assert by_host[name]["status"] == "removed"
        sent = [s["command"] for s in record["steps"] if s["host"] == name and not s["readonly"]]
        assert sent == steps[name]  # exactly the reviewed steps, in order


def test_two_runs_never_work_the_same_host(fresh: Callable[..., Env]) -> None:
    # The first run holds its hosts for as long as their slow commands take: long enough for the
    # second kremove to start and reach them on a loaded machine (2 s was not, under load 6).
    env = fresh({"slow": 3}, slow_delay=6.0)
    first = start(
        "run", "-i", str(env.inventory), "--yes", "--json", "--forks", "3",
        home=env.home, env=env.fleet.env,
    )  # fmt: skip
    try:
        _wait_for_locks(env.home / "l.db", 3)
        code, second, err = env.run()
        assert code == 1 and {h["status"] for h in second["hosts"]} == {"skipped"}, err
        assert all("locked by run" in h["reason"] for h in second["hosts"])
        out, errs = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGKILL)
    assert first.returncode == 0, errs
    assert {h["status"] for h in json.loads(out)["hosts"]} == {"removed"}


def _wait_for_locks(ledger: Path, count: int, timeout: float = 30) -> None:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if ledger.exists():
            db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
            try:
                if db.execute("SELECT COUNT(*) FROM host_locks").fetchone()[0] >= count:
                    return
            except sqlite3.OperationalError:
                pass
            finally:
                db.close()
        time.sleep(0.05)
    raise AssertionError(f"{count} hosts were not locked within {timeout}s")


def test_progress_shows_the_batch_and_the_budget_left(fresh: Callable[..., Env]) -> None:
    env = fresh({"one_product": 3, "unreachable": 1})
    done = kremove(  # under `script`: a terminal, as an operator's shell would give it
        "run", "-i", str(env.inventory), "--yes", "--batches", "1,100%", "--max-fail", "2",
        "--forks", "1",
        home=env.home, env={**env.fleet.env, "NO_COLOR": "1", "COLUMNS": "200"}, terminal=True,
    )  # fmt: skip
    screen = done.stdout
    assert "batch 1 of 2: 1 hosts, failure budget left 2" in screen
    frames = [f for f in screen.split("\r") if "in flight" in f]
    assert any("batch 2/2" in f and "budget left" in f for f in frames), screen[-1500:]
    assert any("budget left 1" in f for f in frames)  # the unreachable host spent one
