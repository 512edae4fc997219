"""Issue 19, Linux: no Kaspersky left behind, no false clean, no false removed (real sshd, dpkg).

kess and kics come with GUI packages that depend on them: a run removes both (GUI first). A host
with a Kaspersky package no catalog entry names, owning files under /opt/kaspersky, or with a
program running from there that no package owns, is reported as unknown Kaspersky: detect never
calls it clean and run never calls it removed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import kremove
from tests.fleet.fleet import Fleet

KINDS = {"kess_gui": 1, "kics_gui": 1, "unknown_kaspersky": 1, "clean": 1, "other_linux": 1}
DAEMON = "/opt/kaspersky/ksc64/sbin/klserver"  # no package owns it


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(KINDS)


def host(fleet: Fleet, kind: str) -> str:
    return fleet.by_kind(kind)[0].name


def inventory(fleet: Fleet, home: Path) -> Path:
    known = fleet.write_known_hosts(home / "known_hosts")
    return fleet.write_inventory(home / "fleet.yml", known_hosts=known)


def outcomes(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    doc: dict[str, Any] = json.loads(done.stdout)
    return {h["host"]: h for h in doc["hosts"]}


def unknown(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in outcome["findings"] if f["product"] == "unknown-kaspersky"]


@pytest.fixture
def running_daemon(fleet: Fleet) -> Iterator[str]:
    """The clean host runs a program from /opt/kaspersky that no package owns (a copy of sleep)."""
    name = host(fleet, "clean")
    made = fleet.run_on_host(
        name, ["sh", "-c", f"mkdir -p {Path(DAEMON).parent} && cp /bin/sleep {DAEMON}"]
    )
    assert made.returncode == 0, made.stderr
    pid = fleet._pid(name)
    proc = subprocess.Popen(
        ["nsenter", f"--mount=/proc/{pid}/ns/mnt", f"--uts=/proc/{pid}/ns/uts", "--", DAEMON, "600"]
    )
    try:
        yield name
    finally:
        proc.kill()
        proc.wait()
        fleet.reset(name)


def test_detect_never_calls_an_uncatalogued_kaspersky_package_clean(
    fleet: Fleet, tmp_path: Path
) -> None:
    done = kremove(
        "detect", "-i", str(inventory(fleet, tmp_path)), "--json", home=tmp_path, env=fleet.env
    )
    got = outcomes(done)
    odd = got[host(fleet, "unknown_kaspersky")]
    assert odd["status"] == "found", odd
    seen = unknown(odd)
    assert [f["evidence"]["package"] for f in seen] == ["klunlisted"]
    assert seen[0]["evidence"]["path"].startswith("/opt/kaspersky")
    assert got[host(fleet, "clean")]["status"] == "clean"
    for kind, packages in (
        ("kess_gui", {"kess", "kess-gui"}),
        ("kics_gui", {"kics", "kics-gui"}),
        ("other_linux", {"kav4ws", "kwts"}),
    ):
        outcome = got[host(fleet, kind)]
        assert outcome["status"] == "found", outcome
        assert unknown(outcome) == []
        assert {
            f["evidence"]["package"] for f in outcome["findings"] if f["kind"] == "installed"
        } == packages


def test_a_program_running_from_opt_kaspersky_that_no_package_owns_is_not_clean(
    fleet: Fleet, tmp_path: Path, running_daemon: str
) -> None:
    done = kremove(
        "detect", "-i", str(inventory(fleet, tmp_path)), "--json", home=tmp_path, env=fleet.env
    )
    got = outcomes(done)
    outcome = got[running_daemon]
    assert outcome["status"] == "found", outcome
    assert [f["evidence"]["path"] for f in unknown(outcome)] == [DAEMON]
    # Only its own host sees it: the other hosts share the machine's process list, not its files.
    assert unknown(got[host(fleet, "kess_gui")]) == []


def test_run_removes_gui_and_core_and_never_calls_the_unknown_host_removed(
    fleet: Fleet, tmp_path: Path
) -> None:
    done = kremove(
        "run",
        "-i",
        str(inventory(fleet, tmp_path)),
        "--yes",
        "--json",
        home=tmp_path,
        env=fleet.env,
    )
    got = outcomes(done)
    try:
        for kind in ("kess_gui", "kics_gui", "other_linux"):
            name = host(fleet, kind)
            assert got[name]["status"] == "removed", got[name]
            assert fleet.kaspersky_packages(name) == {}
            assert not fleet.files_exist(name, "/opt/kaspersky")
        odd = host(fleet, "unknown_kaspersky")
        assert got[odd]["status"] == "failed", got[odd]
        assert "klunlisted" in got[odd]["reason"]
        assert fleet.kaspersky_packages(odd) == {"klunlisted": "9.9.0-1"}  # nothing touched
    finally:
        for kind in ("kess_gui", "kics_gui", "unknown_kaspersky", "other_linux"):
            fleet.reset(host(fleet, kind))


def test_verify_is_not_removed_while_a_program_of_the_purged_package_still_runs(
    fleet: Fleet, tmp_path: Path
) -> None:
    """kess's program runs (its package owns it, so detection plans the removal); the purge
    deletes the file but the program goes on running: verify must not call the host removed."""
    name = host(fleet, "kess_gui")
    program = "/opt/kaspersky/kess/bin/kess-control"  # a file the kess package owns
    made = fleet.run_on_host(name, ["cp", "/bin/sleep", program])
    assert made.returncode == 0, made.stderr
    pid = fleet._pid(name)
    proc = subprocess.Popen(
        [
            "nsenter",
            f"--mount=/proc/{pid}/ns/mnt",
            f"--uts=/proc/{pid}/ns/uts",
            "--",
            program,
            "600",
        ]
    )
    try:
        done = kremove(
            "run",
            "-i",
            str(inventory(fleet, tmp_path)),
            "--limit",
            name,
            "--yes",
            "--json",
            home=tmp_path,
            env=fleet.env,
        )
        outcome = outcomes(done)[name]
        assert fleet.kaspersky_packages(name) == {}  # the packages did go
        assert outcome["status"] == "failed", outcome
        assert program in outcome["reason"] and "verify still finds" in outcome["reason"]
    finally:
        proc.kill()
        proc.wait()
        fleet.reset(name)
