"""Rendering safety, executed: hostile host names, vars and catalog data reach real shells on the
fleet as inert text. Each payload would create a marker file if any shell interpreted it; the test
reads the payloads back byte for byte and checks that no marker exists on any host.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli_runner import kremove
from tests.fleet.fleet import Fleet
from tests.fleet.winrm_host.fleet import WinrmFleet

MARK = "/tmp/kremove-pwned"

# Host names (the inventory refuses spaces, commas and a leading ! & ~ @ in names).
NAMES = [
    f"$(touch${{IFS}}{MARK}-n1)",
    f"`touch${{IFS}}{MARK}-n2`",
    f"x;touch${{IFS}}{MARK}-n3",
    f"x|touch${{IFS}}{MARK}-n4",
    f"x&&touch${{IFS}}{MARK}-n5",
    "%PATH%^&<>",
    "ünïcödé-☃-日本",
    "'\"'\"'",
]
# Free vars: anything at all, newlines included.
PAYLOADS = [
    f"; touch {MARK}-v1",
    f"$(touch {MARK}-v2)",
    f"`touch {MARK}-v3`",
    f"a\ntouch {MARK}-v4\n",
    f"'; touch {MARK}-v5; '",
    f'"; touch {MARK}-v6; "',
    f"&& touch {MARK}-v7 || touch {MARK}-v7",
    f"| touch {MARK}-v8",
    f"${{IFS}}touch${{IFS}}{MARK}-v9",
    "%PATH% ^ & | < > %%",
    "-rf --help * ~ $HOME \\ \\\\ \t tab",
    "ünïcödé ☃ 日本語 \u202e rtl",
]

ECHO_TEMPLATE = """\
printf 'name=%s\\n' {{ host.name | sh }}
{% for key, value in host.vars | dictsort %}
printf '%s=%s\\0' {{ key | sh }} {{ value | sh }}
{% endfor %}
"""
ECHO_PLAYBOOK = {
    "name": "linux-detect",  # replaces the built-in detection for this test
    "platform": "linux",
    "description": "echo every name and var back",
    "steps": [{"id": "echo", "kind": "detect", "readonly": True, "template": "linux/echo.sh.j2"}],
}


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory({"one_product": 2})


def hostile_inventory(fleet: Fleet, home: Path) -> Path:
    """Every hostile name as an inventory host, all pointing at the fleet's hosts."""
    known = fleet.write_known_hosts(home / "known_hosts")
    base = yaml.safe_load(fleet.write_inventory(home / "base.yml", known_hosts=known).read_text())
    targets = list(base["hosts"].values())
    hosts: dict[str, Any] = {}
    for i, name in enumerate(NAMES):
        entry = dict(targets[i % len(targets)])
        entry["vars"] = {f"p{j:02d}": payload for j, payload in enumerate(PAYLOADS)}
        hosts[name] = entry
    doc = {"version": 1, "defaults": base["defaults"], "hosts": hosts}
    path = home / "hostile.yml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def assert_no_marker(fleet: Fleet) -> None:
    for h in fleet.hosts:
        listing = fleet.run_on_host(h.name, ["sh", "-c", "ls -a /tmp"]).stdout
        assert "kremove-pwned" not in listing, (h.name, listing)
    assert not list(Path("/tmp").glob("kremove-pwned*"))  # nor on the controller


def test_hostile_names_and_vars_arrive_as_text(fleet: Fleet, tmp_path: Path) -> None:
    extra = tmp_path / "playbooks"
    (extra / "linux").mkdir(parents=True)
    (extra / "linux" / "detect.yml").write_text(yaml.safe_dump(ECHO_PLAYBOOK))
    (extra / "linux" / "echo.sh.j2").write_text(ECHO_TEMPLATE)
    inventory = hostile_inventory(fleet, tmp_path)

    done = kremove(
        "detect", "-i", str(inventory), "--playbooks", str(extra), "--json", home=tmp_path,
        env=fleet.env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert {h["host"] for h in doc["hosts"]} == set(NAMES)
    record = json.loads(
        kremove("runs", "show", doc["run"], "--json", home=tmp_path, env=fleet.env).stdout
    )
    for step in record["steps"]:
        out = step["stdout"]
        first, _, rest = out.partition("\n")
        assert first == f"name={step['host']}"  # the name, byte for byte
        pairs = [p.split("=", 1) for p in rest.split("\0") if p]
        assert dict(pairs) == {f"p{j:02d}": payload for j, payload in enumerate(PAYLOADS)}
    assert_no_marker(fleet)
    # What each host received is exactly what the ledger says was sent, wrapped by sudo at most.
    sent = {s["command"] for s in record["steps"]}
    received = [c for h in fleet.hosts for c in fleet.commands_log(h.name)]
    assert len(received) == len(NAMES)
    assert all(any(command in r for command in sent) for r in received)


def test_hostile_catalog_data_is_inert_in_the_real_removal(fleet: Fleet, tmp_path: Path) -> None:
    """A catalog override (data, not code) with hostile service names and residue paths."""
    extra = tmp_path / "playbooks"
    extra.mkdir()
    override = {
        "products": {
            "kesl": {
                "linux": {
                    "services": [f"kesl;touch {MARK}-c1", f"$(touch {MARK}-c2)"],
                    "residue_paths": [
                        f"/opt/kaspersky/kesl/$(touch {MARK}-c3)",
                        f"/opt/kaspersky/kesl/`touch {MARK}-c4`",
                        "/opt/kaspersky/kesl",
                    ],
                }
            }
        }
    }
    (extra / "catalog.yml").write_text(yaml.safe_dump(override))
    known = fleet.write_known_hosts(tmp_path / "known_hosts")
    inventory = fleet.write_inventory(tmp_path / "fleet.yml", known_hosts=known)
    done = kremove(
        "run", "-i", str(inventory), "--playbooks", str(extra), "--yes", "--json", home=tmp_path,
        env=fleet.env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert {h["status"] for h in json.loads(done.stdout)["hosts"]} == {"removed"}
    assert_no_marker(fleet)
    for h in fleet.hosts:
        assert fleet.kaspersky_packages(h.name) == {}
        assert not fleet.files_exist(h.name, "/opt/kaspersky/kesl")
        fleet.reset(h.name)


def test_a_catalog_path_outside_kaspersky_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    extra = tmp_path / "playbooks"
    extra.mkdir()
    override = {"products": {"kesl": {"linux": {"residue_paths": ["/opt"]}}}}
    (extra / "catalog.yml").write_text(yaml.safe_dump(override))
    inventory = fleet.write_inventory(tmp_path / "fleet.yml")
    done = kremove(
        "run", "-i", str(inventory), "--playbooks", str(extra), "--yes", home=tmp_path,
        env=fleet.env,
    )  # fmt: skip
    assert done.returncode == 2
    assert "'/opt' is not a path kremove may delete" in done.stderr
    assert str(extra / "catalog.yml") in done.stderr


def test_a_catalog_name_read_as_an_option_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    """Quoted is not enough: rpm -q reads --eval=%(command) as an option and runs the command,
    in the read-only detection, on every host that has rpm (issue 15, M5)."""
    extra = tmp_path / "playbooks"
    extra.mkdir()
    package = f"--eval=%(touch {MARK}-r1)"
    override = {"products": {"kesl": {"linux": {"packages": ["kesl", package]}}}}
    (extra / "catalog.yml").write_text(yaml.safe_dump(override))
    known = fleet.write_known_hosts(tmp_path / "known_hosts")
    inventory = fleet.write_inventory(tmp_path / "fleet.yml", known_hosts=known)
    done = kremove(
        "detect", "-i", str(inventory), "--playbooks", str(extra), home=tmp_path, env=fleet.env
    )
    assert_no_marker(fleet)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        f"kremove: error: {extra / 'catalog.yml'}: products.kesl.linux.packages: {package!r} "
        "starts with '-', which the program it is given to would read as an option"
    )


# Issue 15 M5: catalog data in the read-only Windows detection script. Each override would make
# the emulated cmd.exe of the WinRM test host try to start calc.exe (it answers "'calc.exe' is not
# recognized", exit 9009): a '"' ending the quotes of an "if exist" path, a "%...%" pair eating
# the carets of a | cmd registry key, a product id on an echo line.
WINDOWS_OVERRIDES = [
    (
        {"products": {"kes-windows": {"windows": {"residue_paths": [
            'C:\\Windows" calc.exe & rem Kaspersky'
        ]}}}},
        "products.kes-windows.windows.residue_paths: ",
    ),
    (
        {"platforms": {"windows": {"residue_registry": [
            "HKLM\\SOFTWARE\\a%PATH%&calc.exe & rem\\KasperskyLab"
        ]}}},
        "platforms.windows.residue_registry: ",
    ),
    (
        {"products": {"a%PATH%&calc.exe & rem": {"name": "x", "windows": {"residue_paths": [
            "C:\\ProgramData\\Kaspersky Lab\\KES.21.13"
        ]}}}},
        "products.'a%PATH%&calc.exe & rem': ",
    ),
]  # fmt: skip


@pytest.fixture(scope="module")
def windows_fleet(winrm_fleet_factory: Callable[..., WinrmFleet]) -> WinrmFleet:
    return winrm_fleet_factory({"kes_and_agent": 1})


@pytest.mark.parametrize(("override", "field"), WINDOWS_OVERRIDES)
def test_hostile_windows_catalog_data_starts_no_program_in_detect(
    windows_fleet: WinrmFleet, tmp_path: Path, override: dict[str, Any], field: str
) -> None:
    extra = tmp_path / "playbooks"
    extra.mkdir()
    (extra / "catalog.yml").write_text(yaml.safe_dump(override))
    inventory = windows_fleet.write_inventory(tmp_path / "windows.yml")
    [host] = windows_fleet.hosts
    seen = len(windows_fleet.log(host.name))
    done = kremove(
        "detect", "-i", str(inventory), "--playbooks", str(extra),
        home=tmp_path, env=windows_fleet.env,
    )  # fmt: skip
    printed = "".join(
        e["stdout"] + e["stderr"] for e in windows_fleet.log(host.name)[seen:] if "stdout" in e
    )
    assert "'calc.exe' is not recognized" not in printed, printed
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"kremove: error: {extra / 'catalog.yml'}: {field}"), line
    assert windows_fleet.log(host.name)[seen:] == []  # refused before any connection


def test_catalog_paths_and_keys_still_find_residue_through_data_lines(
    windows_fleet: WinrmFleet, tmp_path: Path
) -> None:
    """The values the script reads back from its data lines are the catalog's, byte for byte."""
    extra = tmp_path / "playbooks"
    extra.mkdir()
    own = "C:\\ProgramData\\Kaspersky Lab\\KES.21.13"
    override = {"products": {"kes-windows": {"windows": {"residue_paths": [own]}}}}
    (extra / "catalog.yml").write_text(yaml.safe_dump(override))
    inventory = windows_fleet.write_inventory(tmp_path / "windows.yml")
    done = kremove(
        "detect", "-i", str(inventory), "--playbooks", str(extra), "--json",
        home=tmp_path, env=windows_fleet.env,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # products found: not every host is clean
    [host] = json.loads(done.stdout)["hosts"]
    assert host["status"] == "found", host
    residue = {
        (f["product"], f["evidence"].get("path") or f["evidence"].get("registry_key"))
        for f in host["findings"]
        if f["kind"] == "residue" and "service" not in f["evidence"]
    }
    assert residue == {
        ("residue", "C:\\Program Files (x86)\\Kaspersky Lab"),
        ("residue", "C:\\ProgramData\\Kaspersky Lab"),
        ("residue", "C:\\ProgramData\\KasperskyLab"),  # the Network Agent's
        ("residue", "HKLM\\SOFTWARE\\WOW6432Node\\KasperskyLab"),
        ("kes-windows", own),
    }
