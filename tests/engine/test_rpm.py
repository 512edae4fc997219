"""The rpm path for real: a package built with rpmbuild, installed in a private rpm database,
found by `kremove detect` and erased by `kremove run` on the local transport.

rpm reads its database location from ~/.rpmmacros, so HOME points it at the test's database and
nothing outside the test directory is read or changed (the catalog's deletable paths are moved
into the test directory too).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import partial
from pathlib import Path

import pytest
import yaml

from tests.cli_runner import kremove

pytestmark = pytest.mark.skipif(
    shutil.which("rpmbuild") is None and not os.environ.get("CI"),
    reason="needs rpm and rpmbuild (./dev test installs them)",
)
SPEC = """\
Name: {name}
Version: {version}
Release: {release}
Summary: simulated Kaspersky package for kremove's tests
License: none
BuildArch: noarch
%description
simulated
%files
"""


def build_and_install(tmp_path: Path, name: str, version: str, release: str, db: Path) -> None:
    top = tmp_path / "rpmbuild"
    (top / "SPECS").mkdir(parents=True, exist_ok=True)
    spec = top / "SPECS" / f"{name}.spec"
    spec.write_text(SPEC.format(name=name, version=version, release=release))
    subprocess.run(
        ["rpmbuild", "--define", f"_topdir {top}", "-bb", str(spec)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (package,) = (top / "RPMS" / "noarch").glob(f"{name}-{version}-*.rpm")
    subprocess.run(
        ["rpm", "-i", "--dbpath", str(db), "--nodeps", str(package)],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_rpm_packages_are_found_and_erased(tmp_path: Path) -> None:
    db = tmp_path / "rpmdb"
    subprocess.run(["rpm", "--initdb", "--dbpath", str(db)], check=True, timeout=60)
    build_and_install(tmp_path, "kesl", "12.1.0", "1297", db)
    build_and_install(tmp_path, "klnagent64", "14.0.0", "4646", db)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".rpmmacros").write_text(f"%_dbpath {db}\n")
    admin = tmp_path / "dpkg"
    (admin / "info").mkdir(parents=True)
    (admin / "updates").mkdir()
    (admin / "status").touch()
    (admin / "available").touch()
    sandbox = tmp_path / "kaspersky"
    (sandbox / "kesl").mkdir(parents=True)
    (sandbox / "kesl" / "leftover.log").write_text("x")
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "catalog.yml").write_text(
        yaml.safe_dump(
            {
                "platforms": {"linux": {"residue_paths": [str(sandbox)]}},
                "products": {
                    "kesl": {"linux": {"services": [], "residue_paths": [str(sandbox / "kesl")]}},
                    "klnagent": {"linux": {"services": [], "residue_paths": []}},
                },
            }
        )
    )
    inventory = tmp_path / "local.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "hosts": {"rpmhost": {"transport": "local", "platform": "linux", "become": False}},
            }
        )
    )
    common = ["-i", str(inventory), "--playbooks", str(playbooks), "--json"]
    cli = partial(
        kremove,
        cwd=tmp_path,
        home=tmp_path / "home",
        ledger=tmp_path / "l.db",
        env={"DPKG_ADMINDIR": str(tmp_path / "dpkg")},  # an empty dpkg database beside rpm's
        timeout=120,
    )

    found = cli("detect", *common)
    assert found.returncode == 1, found.stderr
    (host,) = json.loads(found.stdout)["hosts"]
    assert host["status"] == "found"
    installed = {
        (f["evidence"]["manager"], f["evidence"]["package"], f["version"], f["evidence"]["arch"])
        for f in host["findings"]
        if f["kind"] == "installed"
    }
    assert installed == {
        ("rpm", "kesl", "12.1.0-1297", "noarch"),
        ("rpm", "klnagent64", "14.0.0-4646", "noarch"),
    }

    removed = cli("run", "--yes", *common)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    (host,) = json.loads(removed.stdout)["hosts"]
    assert host["status"] == "removed"
    commands = [s["command"] for s in host["steps"]]
    assert [c.strip() for c in commands if c.strip().startswith("rpm -e")] == [
        "rpm -e kesl",
        "rpm -e klnagent64",
    ]
    query = subprocess.run(
        ["rpm", "-q", "--dbpath", str(db), "kesl", "klnagent64"], capture_output=True, text=True
    )
    assert query.stdout.splitlines() == [
        "package kesl is not installed",
        "package klnagent64 is not installed",
    ]
    assert not sandbox.exists()  # the product's residue, then the emptied shared directory
