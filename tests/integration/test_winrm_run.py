"""`kremove detect` and `kremove run` over WinRM against a simulated Windows fleet.

The hosts are emulated (tests/fleet/winrm_host) but everything between kremove and them is real:
HTTPS with the fleet's CA, NTLM, the WS-Man shell protocol, the batch scripts the Windows
playbooks render, reg.exe/sc.exe/msiexec output formats and exit codes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import kremove
from tests.fleet.winrm_host.fleet import UNINSTALL_PASSWORD_ENV, WinrmFleet
from tests.fleet.winrm_host.kinds import AGENT_CODE, KES_CODE

HOST_TIMEOUT = 12

KINDS = {
    "clean": 1,
    "kes_and_agent": 1,
    "protected_kes": 2,
    "reboot_required": 1,
    "hanging_uninstall": 1,
    "french_agent": 1,
    "consumer_non_msi": 1,
    "unreachable": 1,
    "bad_certificate": 1,
}
DETECTED = {
    "clean": set(),
    "kes_and_agent": {"kes-windows", "klnagent"},
    "protected_kes": {"kes-windows", "klnagent"},
    "reboot_required": {"kes-windows"},
    "hanging_uninstall": {"kes-windows"},
    "french_agent": {"ksws", "klnagent"},
    "consumer_non_msi": {"kaspersky-consumer"},
}
RUN_WITHOUT_PASSWORD = {
    "clean": "clean",
    "kes_and_agent": "removed",
    "protected_kes": "failed",
    "reboot_required": "reboot_pending",
    "hanging_uninstall": "timeout",
    "french_agent": "removed",
    "consumer_non_msi": "failed",
    "unreachable": "unreachable",
    "bad_certificate": "hostkey_rejected",
}


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {h["host"]: h["status"] for h in doc["hosts"]}


def no_secrets(fleet: WinrmFleet, *texts: str | bytes) -> None:
    for text in texts:
        blob = text.encode() if isinstance(text, str) else text
        for secret in fleet.secrets:
            assert secret.encode() not in blob


@pytest.fixture(scope="module")
def fleet(winrm_fleet_factory: Callable[..., WinrmFleet]) -> WinrmFleet:
    return winrm_fleet_factory(KINDS)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, fleet: WinrmFleet) -> Path:
    home = tmp_path_factory.mktemp("winrm-run")
    fleet.write_inventory(home / "fleet.yml")
    return home


@pytest.fixture(scope="module")
def detected(fleet: WinrmFleet, home: Path) -> dict[str, Any]:
    done = kremove("detect", "-i", str(home / "fleet.yml"), "--json", home=home, env=fleet.env)
    assert done.returncode == 1, done.stderr  # unreachable and rejected hosts
    no_secrets(fleet, done.stdout, done.stderr)
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


@pytest.fixture(scope="module")
def first_run(
    fleet: WinrmFleet, home: Path, detected: dict[str, Any]
) -> tuple[dict[str, Any], float]:
    spare = fleet.by_kind("protected_kes")[1].name  # kept for the run with the password
    started = time.monotonic()
    done = kremove(
        "run", "-i", str(home / "fleet.yml"), "--limit", f"all:!{spare}", "--yes", "--json",
        "--host-timeout", str(HOST_TIMEOUT), home=home, env=fleet.env,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    no_secrets(fleet, done.stdout, done.stderr)
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc, elapsed


def test_detect_finds_every_product_by_registry_view_and_language(
    fleet: WinrmFleet, detected: dict[str, Any]
):
    hosts = {h["host"]: h for h in detected["hosts"]}
    for h in fleet.hosts:
        got = hosts[h.name]
        if h.kind == "unreachable":
            assert got["status"] == "unreachable"
            continue
        if h.kind == "bad_certificate":
            assert got["status"] == "hostkey_rejected"
            assert "TLS certificate verification failed" in got["reason"]
            continue
        installed = {f["product"] for f in got["findings"] if f["kind"] == "installed"}
        assert installed == DETECTED[h.kind], h.name
        assert got["status"] == ("clean" if h.kind == "clean" else "found"), h.name
    french = hosts[fleet.by_kind("french_agent")[0].name]
    agent = next(f for f in french["findings"] if f["product"] == "klnagent")
    assert agent["evidence"]["display_name"] == (
        "Agent d'administration de Kaspersky Security Center"
    )
    assert agent["evidence"]["view"] == "32"
    ksws = next(f for f in french["findings"] if f["product"] == "ksws")
    assert ksws["evidence"]["view"] == "64"
    kes = next(
        f
        for f in hosts[fleet.by_kind("kes_and_agent")[0].name]["findings"]
        if f["product"] == "kes-windows"
    )
    assert kes["version"] == "12.4.0.467" and kes["evidence"]["product_code"] == KES_CODE


def test_detection_changes_nothing_and_sends_only_the_detection_script(
    fleet: WinrmFleet, detected: dict[str, Any]
):
    for h in fleet.hosts:
        if h.kind in ("unreachable", "bad_certificate"):
            assert not fleet.log(h.name) or not fleet.commands_log(h.name)
            continue
        assert not [e for e in fleet.log(h.name) if e["event"] == "msiexec"]


def test_run_gives_every_host_its_status(
    fleet: WinrmFleet, first_run: tuple[dict[str, Any], float]
):
    doc, elapsed = first_run
    spare = fleet.by_kind("protected_kes")[1].name
    expected = {h.name: RUN_WITHOUT_PASSWORD[h.kind] for h in fleet.hosts if h.name != spare}
    assert statuses(doc) == expected
    # The hanging uninstaller ended at the host deadline, not at the step's 30 minutes.
    assert elapsed < HOST_TIMEOUT + 20


def test_products_are_gone_from_the_hosts_registry(
    fleet: WinrmFleet, first_run: tuple[dict[str, Any], float]
):
    for kind in ("kes_and_agent", "french_agent"):
        name = fleet.by_kind(kind)[0].name
        left = [n for n in fleet.products(name) if "Kaspersky" in n or "Agent d'" in n]
        assert left == [], name
        assert "klnagent" not in fleet.state(name)["services"]
    reboot = fleet.by_kind("reboot_required")[0].name
    assert "Kaspersky Endpoint Security for Windows" not in fleet.products(reboot)
    assert fleet.state(reboot)["services"]["klif"]["state"] == "STOP_PENDING"


def test_kes_goes_before_the_network_agent(
    fleet: WinrmFleet, first_run: tuple[dict[str, Any], float]
):
    name = fleet.by_kind("kes_and_agent")[0].name
    codes = [e["product_code"] for e in fleet.log(name) if e["event"] == "msiexec"]
    assert codes == [KES_CODE, AGENT_CODE]


def test_protected_kes_fails_clearly_without_the_password(
    fleet: WinrmFleet, first_run: tuple[dict[str, Any], float]
):
    doc, _ = first_run
    name = fleet.by_kind("protected_kes")[0].name
    reason = next(h["reason"] for h in doc["hosts"] if h["host"] == name)
    assert "exited 1603" in reason and "msiexec" in reason
    assert "Kaspersky Endpoint Security for Windows" in fleet.products(name)
    # The Network Agent stayed: nothing after the failed endpoint removal.
    assert [e["product_code"] for e in fleet.log(name) if e["event"] == "msiexec"] == [KES_CODE]


def test_non_msi_product_is_reported_not_touched(
    fleet: WinrmFleet, first_run: tuple[dict[str, Any], float]
):
    doc, _ = first_run
    name = fleet.by_kind("consumer_non_msi")[0].name
    reason = next(h["reason"] for h in doc["hosts"] if h["host"] == name)
    assert "not an MSI installation" in reason
    assert "Kaspersky Total Security" in fleet.products(name)
    assert not [e for e in fleet.log(name) if e["event"] == "msiexec"]


def test_hanging_uninstaller_is_terminated(
    fleet: WinrmFleet, first_run: tuple[dict[str, Any], float]
):
    name = fleet.by_kind("hanging_uninstall")[0].name
    signals = [e for e in fleet.log(name) if e["event"] == "signal"]
    assert signals and signals[-1]["code"] == "terminate" and signals[-1]["was_running"]


def test_protected_kes_is_removed_with_the_password_by_reference(
    fleet: WinrmFleet, home: Path, first_run: tuple[dict[str, Any], float]
):
    done = kremove(
        "run", "-i", str(home / "fleet.yml"), "--limit", "protected_kes", "--yes", "--json",
        "--uninstall-password-env", UNINSTALL_PASSWORD_ENV, home=home, env=fleet.env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    no_secrets(fleet, done.stdout, done.stderr)
    doc = json.loads(done.stdout)
    assert set(statuses(doc).values()) == {"removed"}
    for h in fleet.by_kind("protected_kes"):
        assert not [n for n in fleet.products(h.name) if "Kaspersky" in n]
        runs = [e for e in fleet.log(h.name) if e["event"] == "msiexec"]
        assert runs[-2]["product_code"] == KES_CODE and runs[-2]["exit_code"] == 0
        assert "KLPASSWD" in runs[-2]["properties"]
        assert runs[-1]["product_code"] == AGENT_CODE and "KLUNINSTPASSWD" in runs[-1]["properties"]


def test_no_secret_in_the_ledger_or_in_what_hosts_printed(
    fleet: WinrmFleet, home: Path, first_run: tuple[dict[str, Any], float]
):
    for path in home.glob("l.db*"):
        no_secrets(fleet, path.read_bytes())
    for h in fleet.hosts:
        no_secrets(fleet, fleet.printed(h.name))


def test_basic_over_http_inventory_is_refused(fleet: WinrmFleet, tmp_path: Path):
    # The fleet has no http_basic host; an inventory that asks for Basic over HTTP is refused
    # whole, before anything connects.
    doc = {
        "version": 1,
        "defaults": {
            "transport": "winrm",
            "platform": "windows",
            "user": "kops",
            "password_env": "KREMOVE_WINRM_PASSWORD",
        },
        "hosts": {
            "plain": {
                "address": "127.0.0.1",
                "port": fleet.hosts[0].http_port,
                "winrm": {"auth": "basic", "scheme": "http"},
            }
        },
    }
    (tmp_path / "basic.yml").write_text(json.dumps(doc))
    done = kremove("detect", "-i", str(tmp_path / "basic.yml"), home=tmp_path, env=fleet.env)
    assert done.returncode == 2
    assert "clear text" in done.stderr


def test_no_script_or_msiexec_log_stays_on_any_host(
    fleet: WinrmFleet, home: Path, first_run: tuple[dict[str, Any], float]
):
    # After removals that failed (1603), succeeded, asked for a reboot and hung until terminated:
    # the .cmd files (one held the uninstall password) and msiexec's verbose logs are gone.
    runs = [e for h in fleet.hosts for e in fleet.log(h.name) if e["event"] == "msiexec"]
    assert {e["exit_code"] for e in runs} >= {0, 1603, 3010}
    for h in fleet.hosts:
        if h.kind not in ("unreachable", "bad_certificate"):
            assert fleet.leftovers(h.name) == [], h.name


def test_a_hostile_host_fails_alone_and_the_run_goes_on(
    winrm_fleet_factory: Callable[..., WinrmFleet], tmp_path: Path
):
    # A DOCTYPE with 100,000 chained entities crashes expat < 2.7.0 (CVE-2024-8176) and with it
    # the whole kremove process: the run would stay "running" and every host be abandoned.
    hostile_fleet = winrm_fleet_factory({"kes_and_agent": 1, "clean": 1})
    hostile, clean = (h.name for h in hostile_fleet.hosts)
    inventory = hostile_fleet.write_inventory(tmp_path / "fleet.yml")
    hostile_fleet.inject_fault(hostile, "Receive", "dtd", count=100)
    done = kremove(
        "run", "-i", str(inventory), "--yes", "--json", home=tmp_path, env=hostile_fleet.env
    )
    assert done.returncode == 1, f"exit {done.returncode}: {done.stderr[-800:]}"
    doc = json.loads(done.stdout)
    assert statuses(doc) == {hostile: "failed", clean: "clean"}
    reason = next(h["reason"] for h in doc["hosts"] if h["host"] == hostile)
    assert "DTD" in reason and hostile in reason
    shown = kremove("runs", "show", doc["run"], "--json", home=tmp_path, env=hostile_fleet.env)
    assert json.loads(shown.stdout)["status"] != "running"


def test_plain_http_and_an_old_expat_are_said_and_recorded(fleet: WinrmFleet, tmp_path: Path):
    import pyexpat

    inventory = fleet.write_inventory(tmp_path / "http.yml", include=["clean"], scheme="http")
    name = fleet.by_kind("clean")[0].name
    done = kremove("plan", "-i", str(inventory), "--json", home=tmp_path, env=fleet.env)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    plain = [ln for ln in lines if "plain HTTP" in ln]
    assert len(plain) == 1 and name in plain[0] and "ntlm" in plain[0].lower()
    version = tuple(int(n) for n in pyexpat.EXPAT_VERSION.removeprefix("expat_").split("."))
    expat = [ln for ln in lines if "expat" in ln]
    assert len(expat) == (1 if version < (2, 7, 0) else 0), done.stderr
    plan = json.loads(done.stdout)["plan"]
    shown = kremove("runs", "show", plan, "--json", home=tmp_path, env=fleet.env)
    meta = json.loads(shown.stdout)["meta"]
    assert meta["plain_http"] == [name] and meta["tls_validation_off"] == []
    # Over HTTPS neither is said about the host (the expat line is about this machine).
    https = fleet.write_inventory(tmp_path / "https.yml", include=["clean"])
    done = kremove("plan", "-i", str(https), "--json", home=tmp_path, env=fleet.env)
    assert done.returncode == 0 and "plain HTTP" not in done.stderr


def test_a_trickling_host_ends_timeout_at_its_deadline(
    winrm_fleet_factory: Callable[..., WinrmFleet], tmp_path: Path
):
    # One byte a second never trips a per-read timeout: only the host deadline can end it (the
    # host trickles for 60 s; before the fix the host took that long).
    trickle_fleet = winrm_fleet_factory({"kes_and_agent": 1, "clean": 1})
    slow, clean = (h.name for h in trickle_fleet.hosts)
    inventory = trickle_fleet.write_inventory(tmp_path / "fleet.yml")
    trickle_fleet.inject_fault(slow, "Receive", "trickle", interval=1.0, seconds=60)
    started = time.monotonic()
    done = kremove(
        "detect", "-i", str(inventory), "--json", "--host-timeout", "4", home=tmp_path,
        env=trickle_fleet.env,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert statuses(json.loads(done.stdout)) == {slow: "timeout", clean: "clean"}
    assert elapsed < 4 + 5 + 3, elapsed  # the deadline, cleanup, and kremove's own start
    assert trickle_fleet.leftovers(slow) == []
