"""After a real removal on the fleet: reports that agree with the ledger, and a rollback that
reinstalls the exact package versions the run removed, from an operator's package directory.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import kremove
from tests.fleet import debs
from tests.fleet.fleet import Fleet

SOURCE = "/var/tmp/kremove-packages"  # on each host: where the operator put the packages


class Env:
    def __init__(self, fleet: Fleet, home: Path) -> None:
        self.fleet = fleet
        self.home = home
        known = fleet.write_known_hosts(home / "known_hosts")
        self.inventory = fleet.write_inventory(home / "fleet.yml", known_hosts=known)

    def kremove(self, *args: str) -> subprocess.CompletedProcess[str]:
        return kremove(*args, home=self.home, env=self.fleet.env)


@pytest.fixture(scope="module")
def removed(
    fleet_factory: Callable[..., Fleet], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Env, str]:
    fleet = fleet_factory({"one_product": 2, "several_products": 1, "clean": 1, "unreachable": 1})
    env = Env(fleet, tmp_path_factory.mktemp("rollback"))
    done = env.kremove("run", "-i", str(env.inventory), "--yes", "--json")
    assert done.returncode == 1, done.stderr  # the unreachable host
    return env, json.loads(done.stdout)["run"]


def test_reports_in_every_format_agree_with_the_ledger(removed: tuple[Env, str]) -> None:
    env, run_id = removed
    shown = json.loads(env.kremove("runs", "show", run_id, "--json").stdout)
    statuses = {h["host"]: h["status"] for h in shown["hosts"]}

    doc = json.loads(env.kremove("report", run_id, "--format", "json").stdout)
    assert doc["schema"] == "kremove.report/1" and doc["run"]["id"] == run_id
    assert {h["host"]: h["status"] for h in doc["hosts"]} == statuses
    assert doc["counts"] == {"clean": 1, "removed": 3, "unreachable": 1}
    assert {(p["product"], p["version"]): p["hosts"] for p in doc["products"]} == {
        ("kesl", "12.1.0-1297"): 3,
        ("kesl-gui", "12.1.0-1297"): 1,
        ("klnagent", "14.0.0-4646"): 1,
    }
    directive = doc["directive"]
    assert (directive["identified"], directive["removed"], directive["remaining"]) == (3, 3, 0)
    assert directive["exceptions"] == 1  # the unreachable host
    groups = doc["hosts"][0]["groups"]
    assert groups and groups[0] in ("one_product", "several_products", "clean", "unreachable")

    rows = list(
        csv.DictReader(io.StringIO(env.kremove("report", run_id, "--format", "csv").stdout))
    )
    assert {r["host"]: r["status"] for r in rows} == statuses
    several = next(r for r in rows if "several" in r["host"])
    assert several["found"].split(";") == ["kesl 12.1.0-1297", "kesl-gui 12.1.0-1297",
                                           "klnagent64 14.0.0-4646"]  # fmt: skip
    assert several["remaining"] == ""

    page = env.home / "report.html"
    written = env.kremove("report", run_id, "--format", "html", "-o", str(page))
    assert written.returncode == 0 and f"report written to {page}" in written.stderr
    html = page.read_text()
    assert 'id="status-chart"' in html and 'id="directive"' in html
    bars = re.findall(r"<rect[^>]*>", html.split('id="status-chart"', 1)[1].split("</section>")[0])
    removed_bars = [b for b in bars if 'data-status="removed"' in b]
    assert removed_bars and all('data-count="3"' in b for b in removed_bars)

    table = env.kremove("report", run_id)
    assert table.returncode == 0 and "BOD 17-01: identified 3" in table.stdout

    fleet_doc = json.loads(env.kremove("report", "--fleet", "--format", "json").stdout)
    latest = {h["host"]: h["status"] for h in fleet_doc["hosts"]}
    assert latest == statuses
    assert all(h["since"] for h in fleet_doc["hosts"])

    exported = env.kremove("runs", "export", run_id).stdout.splitlines()
    kinds = [json.loads(line)["type"] for line in exported]
    assert (
        kinds[0] == "run"
        and kinds.count("host") == 5
        and kinds.count("step") == len(shown["steps"])
    )


def put_packages(fleet: Fleet, name: str, cache: Path) -> None:
    """The operator's job: make the exact packages available on the host."""
    fleet.run_on_host(name, ["mkdir", "-p", SOURCE])
    for spec in (debs.kesl(), debs.kesl_gui(), debs.klnagent64()):
        package = debs.build(spec, cache)
        data = base64.b64encode(package.read_bytes()).decode()
        target = f"{SOURCE}/{package.name}"
        done = fleet.run_on_host(name, ["sh", "-c", f"base64 -d > {target}"], input=data)
        assert done.returncode == 0, done.stderr


def test_a_rollback_reinstalls_exactly_what_the_run_removed(
    removed: tuple[Env, str], tmp_path: Path
) -> None:
    env, run_id = removed
    fleet = env.fleet
    dry = env.kremove("rollback", run_id, "--source", SOURCE, "--json")
    assert dry.returncode == 0, dry.stderr
    plan: dict[str, Any] = {h["host"]: h for h in json.loads(dry.stdout)["hosts"]}
    for h in fleet.hosts:
        wanted = {(f["evidence"]["package"], f["version"]) for f in plan[h.name]["removed"]}
        if h.kind in ("one_product", "several_products"):
            assert wanted == set(h.expected_packages.items()), h.name
            assert all(SOURCE in s["command"] for s in plan[h.name]["steps"])
        else:
            assert wanted == set(), h.name
    for h in fleet.hosts:
        assert fleet.kaspersky_packages(h.name) == {} if h.has_system else True  # still removed
        if h.kind in ("one_product", "several_products"):
            put_packages(fleet, h.name, tmp_path)

    done = env.kremove("rollback", run_id, "--source", SOURCE, "--yes", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert {h["status"] for h in doc["hosts"]} == {"restored"}
    for h in fleet.hosts:
        if h.kind in ("one_product", "several_products"):
            assert fleet.kaspersky_packages(h.name) == h.expected_packages, h.name
    record = json.loads(env.kremove("runs", "show", doc["run"], "--json").stdout)
    assert record["kind"] == "rollback" and record["meta"]["rollback_of"] == run_id
    audit = env.kremove("audit", "verify")
    assert audit.returncode == 0, audit.stderr
