"""The fleet's simulated Macs (shims, not macOS), checked over real OpenSSH and from outside."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.fleet import Fleet, FleetHost
from tests.fleet.kinds import KINDS

KAV = "/Library/Application Support/Kaspersky Lab/KAV/Binaries/UninstallScript"
AGENT = "/Library/Application Support/Kaspersky Lab/klnagent/Binaries/UninstallScript"
RECEIPTS = {
    "com.kaspersky.kav.core": "11.3.0.520",
    "com.kaspersky.kav.oas": "11.3.0.520",
    "com.kaspersky.kav.webav": "11.3.0.520",
    "com.kaspersky.kav.wksconnector": "11.3.0.520",
}
JOBS = {
    "com.kaspersky.kav": "system",
    "com.kaspersky.kav.gui": "gui/501",
    "com.kaspersky.klnagent": "system",
}


def one(fleet: Fleet, kind: str) -> FleetHost:
    return fleet.by_kind(kind)[0]


@pytest.fixture(scope="module")
def ssh_config(small_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("mac-client")
    known = small_fleet.write_known_hosts(d / "known_hosts")
    return small_fleet.write_ssh_config(d / "ssh_config", known_hosts=known)


def ssh(config: Path, host: FleetHost, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-F", str(config), host.name, command],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def restore(small_fleet: Fleet) -> Iterator[list[str]]:
    changed: list[str] = []
    yield changed
    for name in changed:
        small_fleet.reset(name)


def test_macos_kinds_start_with_their_receipts_jobs_and_files(small_fleet: Fleet) -> None:
    assert {k for k, kind in KINDS.items() if kind.platform == "macos"} == {
        "macos_clean",
        "macos_kav",
        "macos_uninstall_fails",
        "macos_kes12",
        "macos_kes12_sysext_stays",
        "macos_kes12_no_uninstaller",
        "macos_kes12_reboot",
    }
    for kind in ("macos_kav", "macos_uninstall_fails"):
        host = one(small_fleet, kind)
        assert host.platform == "macos" and host.expected_packages == {}
        assert host.expected_receipts == RECEIPTS
        assert small_fleet.kaspersky_receipts(host.name) == RECEIPTS
        jobs = small_fleet.launchd_jobs(host.name)
        assert {k: v for k, v in jobs.items() if "kaspersky" in k} == JOBS
        for path in (KAV, AGENT, "/Applications/Kaspersky Anti-Virus For Mac.app"):
            assert small_fleet.files_exist(host.name, path), (host.name, path)
    clean = one(small_fleet, "macos_clean")
    assert small_fleet.kaspersky_receipts(clean.name) == {} == clean.expected_receipts
    assert "com.apple.pkg.CLTools_Executables" in small_fleet.receipts(clean.name)
    assert not small_fleet.files_exist(clean.name, "/Library/Application Support/Kaspersky Lab")
    assert small_fleet.files_exist(clean.name, "/Applications/Safari.app")
    assert one(small_fleet, "one_product").platform == "linux"


def test_kes12_kinds_start_with_the_app_and_the_extension_activated(small_fleet: Fleet) -> None:
    app = "/Applications/Kaspersky Endpoint Security for Mac.app"
    cli = "/Library/Application Support/Kaspersky Lab/KAV/Binaries/kav"
    kes = (
        "macos_kes12",
        "macos_kes12_sysext_stays",
        "macos_kes12_no_uninstaller",
        "macos_kes12_reboot",
    )
    for kind in kes:
        host = one(small_fleet, kind)
        assert small_fleet.kaspersky_receipts(host.name) == host.expected_receipts != {}
        assert small_fleet.files_exist(host.name, app)
        assert small_fleet.files_exist(host.name, cli) == (kind != "macos_kes12_no_uninstaller")
        listed = small_fleet.run_on_host(host.name, ["systemextensionsctl", "list"]).stdout
        assert "2Y8XE5CQ94\tcom.kaspersky.kav.sysext (" in listed, listed
        assert listed.rstrip().endswith("[activated enabled]")
        # SIP is on: the tool itself removes nothing.
        refused = small_fleet.run_on_host(
            host.name,
            ["systemextensionsctl", "uninstall", "2Y8XE5CQ94", "com.kaspersky.kav.sysext"],
        )
        assert refused.returncode == 1 and "System Integrity Protection" in refused.stderr


def test_this_machine_gets_no_mac_directories(small_fleet: Fleet) -> None:
    for path in ("/Library", "/Applications", "/System", "/Users", "/var/db/receipts"):
        assert not Path(path).exists(), path
    assert not Path("/usr/local/bin/pkgutil").exists()
    assert small_fleet.files_exist(one(small_fleet, "macos_clean").name, "/usr/local/bin/pkgutil")


def test_the_shims_print_what_apples_tools_print(small_fleet: Fleet, ssh_config: Path) -> None:
    host = one(small_fleet, "macos_kav")
    done = ssh(
        ssh_config,
        host,
        "uname -s; sw_vers; sw_vers -productVersion; pkgutil --pkg-info com.kaspersky.kav.core",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Darwin",
        "ProductName:\t\tmacOS",
        "ProductVersion:\t\t14.5",
        "BuildVersion:\t\t23F79",
        "14.5",
        "package-id: com.kaspersky.kav.core",
        "version: 11.3.0.520",
        "volume: /",
        "location: /",
        "install-time: 1710408413",
    ]
    pkgs = ssh(
        ssh_config, host, "pkgutil --pkgs; pkgutil --pkgs='^com\\.kaspersky\\.kav\\.(oas|wks)'"
    )
    assert pkgs.stdout.splitlines()[-2:] == [
        "com.kaspersky.kav.oas",
        "com.kaspersky.kav.wksconnector",
    ]
    assert set(RECEIPTS) <= set(pkgs.stdout.splitlines())
    unknown = ssh(ssh_config, host, "pkgutil --pkg-info com.example.none")
    assert unknown.returncode == 1
    assert unknown.stderr == "No receipt for 'com.example.none' found at '/'.\n"
    listed = ssh(ssh_config, host, "sudo launchctl list; launchctl list")
    lines = listed.stdout.splitlines()
    assert lines[0] == "PID\tStatus\tLabel"
    assert "312\t0\tcom.kaspersky.kav" in lines and "402\t0\tcom.kaspersky.klnagent" in lines
    assert not [ln for ln in lines if ln.endswith("com.kaspersky.kav.gui")]  # a GUI agent
    assert lines.count("PID\tStatus\tLabel") == 2  # kops's own GUI domain: empty
    assert small_fleet.commands_log(host.name)[-1] == "sudo launchctl list; launchctl list"


def test_root_is_read_only_and_changes_stay_in_the_host(
    small_fleet: Fleet, ssh_config: Path, restore: list[str]
) -> None:
    host = one(small_fleet, "macos_clean")
    restore.append(host.name)
    done = ssh(ssh_config, host, "sudo touch /kremove-test; sudo mkdir /Library/Kaspersky-test")
    assert "Read-only file system" in done.stderr
    assert small_fleet.files_exist(host.name, "/Library/Kaspersky-test")
    assert not small_fleet.files_exist(
        one(small_fleet, "macos_kav").name, "/Library/Kaspersky-test"
    )


def test_the_uninstall_scripts_remove_everything_and_reset_restores_it(
    small_fleet: Fleet, ssh_config: Path, restore: list[str]
) -> None:
    host = one(small_fleet, "macos_kav")
    restore.append(host.name)
    done = ssh(ssh_config, host, f"sudo '{KAV}' && sudo '{AGENT}'")
    assert done.returncode == 0, done.stderr
    assert "Forgot package 'com.kaspersky.kav.core' on '/'." in done.stdout.splitlines()
    assert small_fleet.kaspersky_receipts(host.name) == {}
    assert not [label for label in small_fleet.launchd_jobs(host.name) if "kaspersky" in label]
    for path in ("/Library/Application Support/Kaspersky Lab/KAV", "/Library/Logs/Kaspersky Lab"):
        assert not small_fleet.files_exist(host.name, path)
    other = one(small_fleet, "macos_uninstall_fails")
    assert small_fleet.kaspersky_receipts(other.name) == RECEIPTS  # untouched
    small_fleet.reset(host.name)
    restore.remove(host.name)
    assert small_fleet.kaspersky_receipts(host.name) == RECEIPTS
    assert small_fleet.files_exist(host.name, KAV)
    assert small_fleet.commands_log(host.name) == []


def test_the_failing_uninstall_script_refuses_and_changes_nothing(
    small_fleet: Fleet, ssh_config: Path
) -> None:
    host = one(small_fleet, "macos_uninstall_fails")
    done = ssh(ssh_config, host, f"sudo '{KAV}'")
    assert done.returncode == 1
    assert "uninstallation is blocked" in done.stderr
    assert small_fleet.kaspersky_receipts(host.name) == RECEIPTS
    assert {
        k: v for k, v in small_fleet.launchd_jobs(host.name).items() if "kaspersky" in k
    } == JOBS


def test_the_inventory_marks_macos_hosts(small_fleet: Fleet, tmp_path: Path) -> None:
    path = small_fleet.write_inventory(tmp_path / "inv.yml", include=["macos_kav", "clean"])
    doc = yaml.safe_load(path.read_text())
    assert doc["defaults"]["platform"] == "linux"
    platforms = {name: entry.get("platform") for name, entry in doc["hosts"].items()}
    assert platforms == {
        one(small_fleet, "macos_kav").name: "macos",
        one(small_fleet, "clean").name: None,
    }
