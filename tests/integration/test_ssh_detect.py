"""`kremove detect` over SSH against the simulated fleet: real sshd, real dpkg, the installed CLI.

One 50-host fleet with every host kind; each host's status and findings must be right, the hosts
that cannot answer must end within their deadlines, and no secret may appear anywhere kremove
wrote.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import cli_runner
from tests.fleet.fleet import Fleet, FleetHost

FLEET_50 = {
    "clean": 12,
    "one_product": 12,
    "several_products": 8,
    "uninstall_fails": 3,
    "unreachable": 2,
    "silent": 2,
    "slow": 2,
    "changed_hostkey": 2,
    "password_only": 2,
    "jump": 1,
    "behind_jump": 2,
    "wrong_sudo_password": 2,
}
HOST_TIMEOUT = 12.0  # the silent hosts use all of it; the slow ones (3 s banner) fit well inside

EXPECTED_STATUS = {
    "clean": "clean",
    "jump": "clean",
    "one_product": "found",
    "several_products": "found",
    "uninstall_fails": "found",
    "slow": "found",
    "password_only": "found",
    "behind_jump": "found",
    "unreachable": "unreachable",
    "silent": "timeout",
    "changed_hostkey": "hostkey_rejected",
    "wrong_sudo_password": "auth_failed",
}


class Run:
    """One kremove invocation and everything it printed."""

    def __init__(self, done: subprocess.CompletedProcess[str], elapsed: float) -> None:
        self.code = done.returncode
        self.stdout = done.stdout
        self.stderr = done.stderr
        self.elapsed = elapsed

    def json(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.stdout)
        return doc


def kremove(home: Path, fleet: Fleet, *args: str, timeout: float = 120) -> Run:
    """The CLI run and timed, with the ledger in its own directory under ``home``."""
    started = time.monotonic()
    done = cli_runner.kremove(
        *args, home=home, ledger=home / "ledger" / "ledger.db", env=fleet.env, timeout=timeout
    )
    return Run(done, time.monotonic() - started)


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(FLEET_50)


@pytest.fixture(scope="module")
def scan(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run]:
    """One detect over the whole fleet, shared by the checks below."""
    home = tmp_path_factory.mktemp("home")
    known = fleet.write_known_hosts(home / "fleet_known_hosts")
    inventory = fleet.write_inventory(home / "fleet.yml", known_hosts=known)
    run = kremove(
        home, fleet, "detect", "-i", str(inventory), "--json", "--host-timeout", str(HOST_TIMEOUT)
    )
    return home, run


def wait_for_run(ledger: Path, timeout: float = 30) -> None:
    """Until the run is recorded: kremove has started working on hosts."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if ledger.exists():
            db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
            try:
                if db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]:
                    return
            except sqlite3.OperationalError:
                pass  # not created yet
            finally:
                db.close()
        time.sleep(0.05)
    raise AssertionError(f"no run recorded in {ledger} within {timeout}s")


def by_host(run: Run) -> dict[str, dict[str, Any]]:
    return {h["host"]: h for h in run.json()["hosts"]}


def packages(outcome: dict[str, Any]) -> dict[str, str]:
    return {
        f["evidence"]["package"]: f["version"]
        for f in outcome["findings"]
        if f["kind"] == "installed"
    }


def test_one_detect_names_every_host_right(fleet: Fleet, scan: tuple[Path, Run]) -> None:
    _, run = scan
    assert run.code == 1, run.stderr  # products found and hosts failed: exit 1
    hosts = by_host(run)
    assert len(hosts) == 50 == len(fleet.hosts)
    wrong = {
        h.name: (hosts[h.name]["status"], hosts[h.name]["reason"])
        for h in fleet.hosts
        if hosts[h.name]["status"] != EXPECTED_STATUS[h.kind]
    }
    assert not wrong
    for h in fleet.hosts:
        if EXPECTED_STATUS[h.kind] in ("found", "clean"):
            assert packages(hosts[h.name]) == h.expected_packages, h.name
    counts = run.json()["counts"]
    assert counts["found"] == 12 + 8 + 3 + 2 + 2 + 2
    assert counts["clean"] == 13


def test_every_failure_is_named_with_its_reason(fleet: Fleet, scan: tuple[Path, Run]) -> None:
    hosts = by_host(scan[1])

    def reason(kind: str) -> str:
        return str(hosts[fleet.by_kind(kind)[0].name]["reason"])

    assert "connection refused" in reason("unreachable")
    assert "no SSH handshake" in reason("silent")
    assert "sudo refused the become password" in reason("wrong_sudo_password")
    changed: FleetHost = fleet.by_kind("changed_hostkey")[0]
    message = reason("changed_hostkey")
    assert "HOST KEY CHANGED" in message
    assert f"offered ssh-ed25519 {changed.host_key_fingerprint}" in message
    expected = message.split("expected ", 1)[1].split(" ", 2)[1]
    assert expected.startswith("SHA256:") and expected != changed.host_key_fingerprint


def test_hosts_that_cannot_answer_end_within_their_deadlines(scan: tuple[Path, Run]) -> None:
    _, run = scan
    # Every host runs at once (forks 50 >= 50 hosts), so the run lasts about as long as its
    # slowest host: the silent ones, which must be cut at HOST_TIMEOUT, not hang.
    assert run.elapsed < HOST_TIMEOUT + 20, run.elapsed


def test_the_ledger_holds_the_same_result(fleet: Fleet, scan: tuple[Path, Run]) -> None:
    home, run = scan
    shown = kremove(home, fleet, "runs", "show", run.json()["run"], "--json")
    assert shown.code == 0, shown.stderr
    recorded = {h["host"]: h["status"] for h in shown.json()["hosts"]}
    assert recorded == {name: h["status"] for name, h in by_host(run).items()}
    steps = shown.json()["steps"]
    # One detect step per host that logged in and got as far as running it.
    reached = {s["host"] for s in steps}
    assert reached == {
        h.name for h in fleet.hosts if EXPECTED_STATUS[h.kind] in ("found", "clean", "auth_failed")
    }


def test_one_connection_per_host_and_only_readonly_commands(
    fleet: Fleet, scan: tuple[Path, Run]
) -> None:
    for h in fleet.by_kind("several_products") + fleet.by_kind("behind_jump"):
        log = fleet.sshd_log(h.name)
        assert log.count("Accepted publickey") == 1, h.name
        probe, command = fleet.commands_log(h.name)  # who the login is, then what is installed
        assert "sudo -n -l" in probe and "dpkg-query" in command
        changing = ("dpkg --purge", "dpkg -P", "dpkg -r", "apt-get", "rpm -e", "rm ")
        assert not [c for c in changing if c in command or c in probe]
    jump = fleet.by_kind("jump")[0]
    # Two logins on the jump host: its own scan, and one connection shared by both behind_jump
    # hosts (not one per host behind it).
    assert fleet.sshd_log(jump.name).count("Accepted publickey") == 2


def test_no_secret_is_written_anywhere(fleet: Fleet, scan: tuple[Path, Run]) -> None:
    home, run = scan
    shown = kremove(home, fleet, "runs", "show", run.json()["run"])
    written = [run.stdout, run.stderr, shown.stdout, shown.stderr]
    for path in home.rglob("*"):
        if path.is_file() and path.name not in ("fleet.yml",):
            written.append(path.read_bytes().decode("utf-8", "replace"))
    assert len(written) > 4  # the ledger and its WAL at least
    leaks = [s[:6] + "…" for s in fleet.secrets if any(s in text for text in written)]
    assert not leaks


def test_unknown_keys_are_refused_then_pinned_on_request(fleet: Fleet, tmp_path: Path) -> None:
    include = ["one_product", "changed_hostkey", "jump", "behind_jump"]
    inventory = fleet.write_inventory(tmp_path / "inv.yml", include=include)  # no known_hosts
    first = kremove(tmp_path, fleet, "detect", "-i", str(inventory), "--json")
    assert {h["status"] for h in first.json()["hosts"]} == {"hostkey_rejected"}
    assert all("--accept-new-hostkeys" in h["reason"] for h in first.json()["hosts"])

    pinned = kremove(
        tmp_path, fleet, "detect", "-i", str(inventory), "--json", "--accept-new-hostkeys"
    )
    statuses = {h["host"]: h["status"] for h in pinned.json()["hosts"]}
    assert set(statuses.values()) <= {"found", "clean"}, pinned.stdout
    events = kremove(tmp_path, fleet, "runs", "show", pinned.json()["run"], "--json").json()[
        "events"
    ]
    seen = {e["host"]: e["detail"]["fingerprint"] for e in events if e["kind"] == "hostkey_pinned"}
    chosen = [h for h in fleet.hosts if h.kind in include]
    assert seen == {h.name: h.host_key_fingerprint for h in chosen}

    again = kremove(tmp_path, fleet, "detect", "-i", str(inventory), "--json")
    assert {h["host"]: h["status"] for h in again.json()["hosts"]} == statuses

    # A key that differs from the recorded one is refused even when new keys may be pinned
    # (in a fresh home and ledger: the pins above would vouch for the real key, as in OpenSSH).
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    known = fleet.write_known_hosts(fresh / "known_hosts")
    inventory = fleet.write_inventory(fresh / "inv2.yml", known_hosts=known, include=include)
    changed = kremove(
        fresh, fleet, "detect", "-i", str(inventory), "--json", "--accept-new-hostkeys"
    )
    for h in changed.json()["hosts"]:
        kind = fleet.host(h["host"]).kind
        assert (h["status"] == "hostkey_rejected") == (kind == "changed_hostkey"), h


@pytest.fixture(scope="module")
def slow_fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory({"slow": 6}, slow_delay=2.0)


def interrupted_detect(slow: Fleet, tmp_path: Path, signals: int) -> subprocess.Popen[str]:
    """Start a detect over the slow hosts two at a time and press Ctrl-C ``signals`` times."""
    known = slow.write_known_hosts(tmp_path / "known_hosts")
    inventory = slow.write_inventory(tmp_path / "inv.yml", known_hosts=known)
    proc = cli_runner.start(
        "detect", "-i", str(inventory), "--forks", "2", "--json", home=tmp_path, env=slow.env
    )
    wait_for_run(tmp_path / "l.db")
    time.sleep(0.5)  # two hosts are now waiting for their delayed (2 s) banners
    for _ in range(signals):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
    return proc


def test_ctrl_c_twice_abandons_hosts_in_flight_and_records_them(
    slow_fleet: Fleet, tmp_path: Path
) -> None:
    proc = interrupted_detect(slow_fleet, tmp_path, signals=2)
    started = time.monotonic()
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - started < 1.5  # did not wait for the 2 s banners
    listed = cli_runner.kremove(
        "runs", "show", json.loads(stdout)["run"], "--json",
        home=tmp_path, env=slow_fleet.env, timeout=60,
    )  # fmt: skip
    record = json.loads(listed.stdout)
    assert record["status"] == "interrupted"
    reasons = sorted(h["reason"] for h in record["hosts"])
    assert [h["status"] for h in record["hosts"]] == ["skipped"] * 6
    assert sum("interrupted while in flight" in r for r in reasons) == 2
    assert sum("before this host started" in r for r in reasons) == 4


def test_ctrl_c_stops_new_hosts_and_lets_running_ones_finish(
    slow_fleet: Fleet, tmp_path: Path
) -> None:
    proc = interrupted_detect(slow_fleet, tmp_path, signals=1)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "no new host starts" in stderr
    doc = json.loads(stdout)
    statuses = [h["status"] for h in doc["hosts"]]
    assert doc["interrupted"] is True
    assert statuses.count("found") == 2 and statuses.count("skipped") == 4, statuses
    listed = cli_runner.kremove(
        "runs", "show", doc["run"], "--json", "--ledger", str(tmp_path / "l.db"),
        home=tmp_path, env=slow_fleet.env, timeout=60,
    )  # fmt: skip
    record = json.loads(listed.stdout)
    assert record["status"] == "interrupted"
    assert sorted(h["status"] for h in record["hosts"]) == sorted(statuses)
    assert all(s["finished"] for s in record["steps"])  # the in-flight hosts finished their step


def test_progress_on_a_terminal_shows_counts_rate_and_eta(fleet: Fleet, tmp_path: Path) -> None:
    known = fleet.write_known_hosts(tmp_path / "known_hosts")
    include = ["one_product", "several_products", "unreachable", "slow"]
    inventory = fleet.write_inventory(tmp_path / "inv.yml", known_hosts=known, include=include)
    done = cli_runner.kremove(  # under `script`: a terminal, as an operator's shell would give it
        "detect", "-i", str(inventory), "--forks", "4",
        home=tmp_path, env={**fleet.env, "COLUMNS": "160"}, timeout=120, terminal=True,
    )  # fmt: skip
    screen = done.stdout
    frames = [f for f in screen.split("\r") if "in flight" in f]
    assert frames, screen[-2000:]
    last = frames[-1]
    for part in ("detect", "done", "in flight", "found", "failed", "hosts/s", "ETA"):
        assert part in last, last
    assert any("2 failed" in f for f in frames)  # the two unreachable hosts
