"""kremove as an operator installs it: a wheel built from this checkout, installed with pip into a
fresh venv outside the checkout and run from elsewhere. The editable install the rest of the suite
uses would hide a file the wheel lacks or a path that only exists in the checkout.

The checkout is copied first (links kept, as a clone has them) and the wheel is built from the
copy, so the build writes nothing here. Every kremove command runs from a directory in tmp, with
HOME there and its ledger there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import orchestrator
from orchestrator.playbook import loader
from tests.fleet import Fleet
from tests.fleet.pytest_plugin import SEEN
from tests.fleet.winrm_host import WinrmFleet

ROOT = Path(__file__).resolve().parents[2]
# What a clean clone does not have: git's own files, the venv, caches and build output.
NOT_IN_A_CLONE = {
    ".git", ".venv", "build", "dist", "__pycache__", ".kremove", ".mypy_cache", ".ruff_cache",
    ".pytest_cache", ".hypothesis", ".coverage",
}  # fmt: skip
VERSION = f"kremove {orchestrator.__version__}"
pytestmark = pytest.mark.timeout(900)  # the first test builds and installs the wheel


@dataclass(frozen=True)
class Installed:
    source: Path  # the copy the wheel was built from
    wheel: Path
    venv: Path
    home: Path  # the directory every command runs in, and its HOME

    def run(
        self, program: str, *args: str, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """``program`` from the venv's bin (kremove, python), as an operator's shell runs it."""
        # Nothing of the developer's: no kremove or ssh settings, no path into this checkout.
        keep = _clean_env(("KREMOVE_", "SSH_"))
        env = {**keep, "HOME": str(self.home), "XDG_STATE_HOME": str(self.home / "state")}
        return subprocess.run(
            [str(self.venv / "bin" / program), *args],
            cwd=self.home,
            env={**env, "NO_COLOR": "1", "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def kremove(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self.run("kremove", *args, timeout=timeout)

    @property
    def ledger(self) -> str:
        return str(self.home / "ledger" / "kremove.db")


def _not_in_a_clone(directory: str, names: list[str]) -> Iterable[str]:
    return [n for n in names if n in NOT_IN_A_CLONE or n.endswith(".egg-info")]


def _clean_env(strip: tuple[str, ...] = ()) -> dict[str, str]:
    """This environment without ``strip`` and anything that would point Python at this checkout
    or its venv (PYTHONPATH would make pip find the checkout's kremove and install nothing)."""
    own = ("PYTHON", "VIRTUAL_ENV", *strip)
    return {k: v for k, v in os.environ.items() if not k.startswith(own)}


def _check(command: list[str], cwd: Path) -> None:
    done = subprocess.run(
        command, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{command[:4]}: {done.stderr[-2000:]}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    assert ROOT not in base.parents
    source = base / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=_not_in_a_clone)
    wheels = base / "wheels"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels)]
    _check([*pip_wheel, str(source)], cwd=base)
    (wheel,) = wheels.glob("kremove-*.whl")
    venv = base / "venv"
    _check([sys.executable, "-m", "venv", str(venv)], cwd=base)
    pip_install = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    _check([*pip_install, "-c", str(ROOT / "constraints.txt"), str(wheel)], cwd=base)
    home = base / "home"
    home.mkdir()
    return Installed(source=source, wheel=wheel, venv=venv, home=home)


def test_the_wheel_carries_the_license_the_playbooks_and_the_practice_fleet(
    installed: Installed,
) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = wheel.read(info).decode()
        license_file = info.replace("METADATA", "licenses/LICENSE")
        assert wheel.read(license_file) == (installed.source / "LICENSE").read_bytes()

        def carried(tree: Path, package: str) -> None:
            for path in sorted(tree.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    name = f"orchestrator/{package}/{path.relative_to(tree).as_posix()}"
                    assert name in names, f"the wheel lacks {name}"
                    assert wheel.read(name) == path.read_bytes(), name

        carried(installed.source / "playbooks", "_playbooks")
        carried(installed.source / "tests" / "fleet", "_lab")
    assert "License-Expression: Apache-2.0" in metadata and "License-File: LICENSE" in metadata
    assert "orchestrator/__main__.py" in names
    # The installed package is the one that runs, and the lab's WinRM emulator has what it
    # imports (cryptography, pyspnego: pywinrm's requests-ntlm brings them) without an extra.
    where = installed.run(
        "python", "-c", "import orchestrator, orchestrator._lab.winrm_host.server as s, spnego; "
        "print(orchestrator.__file__)",
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed.venv)


def test_version_from_the_script_and_from_python_m(installed: Installed) -> None:
    for done in (
        installed.kremove("--version"),
        installed.run("python", "-m", "orchestrator", "--version"),
    ):
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == VERSION


def test_inventory_check_and_an_offline_plan_with_and_without_an_overlay(
    installed: Installed,
) -> None:
    inventory = installed.home / "fleet.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "hosts": {
                    "web01": {"address": "192.0.2.10", "platform": "linux"},
                    "win01": {"address": "192.0.2.20", "transport": "winrm", "platform": "windows"},
                },
                "groups": {"production": {"hosts": ["web01", "win01"]}},
            }
        )
    )
    checked = installed.kremove(
        "inventory", "check", "-i", "fleet.yml", "--limit", "production", "--json"
    )
    assert checked.returncode == 0, checked.stderr
    assert [h["name"] for h in json.loads(checked.stdout)["hosts"]] == ["web01", "win01"]

    planned = installed.kremove(
        "plan", "-i", "fleet.yml", "--offline", "--json", "--ledger", installed.ledger
    )
    assert planned.returncode == 0, planned.stderr
    platforms = json.loads(planned.stdout)["platforms"]
    assert platforms["linux"]["hosts"] == ["web01"] and platforms["windows"]["hosts"] == ["win01"]
    purge = {s["step"]: s["command"] for s in platforms["linux"]["steps"]}["purge:kesl"]
    assert "dpkg --purge kesl" in purge and "kesl-site" not in purge

    # An overlay with nothing but one catalog fact: the rest comes from the wheel's built-in set.
    site = installed.home / "site"
    site.mkdir()
    (site / "catalog.yml").write_text(
        yaml.safe_dump({"products": {"kesl": {"linux": {"services": ["kesl-site"]}}}})
    )
    overlaid = installed.kremove(
        "plan", "-i", "fleet.yml", "--offline", "--json", "--playbooks", "site",
        "--ledger", installed.ledger,
    )  # fmt: skip
    assert overlaid.returncode == 0, overlaid.stderr
    steps = json.loads(overlaid.stdout)["platforms"]
    purge = {s["step"]: s["command"] for s in steps["linux"]["steps"]}["purge:kesl"]
    assert "systemctl stop kesl-site" in purge and "dpkg --purge kesl" in purge
    assert steps["windows"] == platforms["windows"]


def test_a_local_detect_is_recorded_with_the_wheels_playbooks(
    installed: Installed, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("dpkg-query") is None and shutil.which("rpm") is None:
        pytest.skip("needs dpkg or rpm on the controller")
    (installed.home / "local.yml").write_text("hosts:\n  localhost:\n    transport: local\n")
    found = installed.kremove("detect", "-i", "local.yml", "--json", "--ledger", installed.ledger)
    assert found.returncode == 0, found.stderr
    detected = json.loads(found.stdout)
    assert [(h["host"], h["status"]) for h in detected["hosts"]] == [("localhost", "clean")]
    shown = installed.kremove(
        "runs", "show", detected["run"], "--json", "--ledger", installed.ledger
    )
    assert shown.returncode == 0, shown.stderr
    # The ledger names the content used: the playbooks the wheel was built from.
    monkeypatch.setattr(loader, "builtin_dir", lambda: None)
    expected = loader.load_playbooks([installed.source / "playbooks"]).version
    assert json.loads(shown.stdout)["playbook_version"] == expected
    verified = installed.kremove("audit", "verify", "--ledger", installed.ledger)
    assert verified.returncode == 0, verified.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the practice fleet needs root")
def test_the_practice_fleet_from_the_wheel(installed: Installed) -> None:
    lab = installed.home / "lab"
    inventories = ["-i", str(lab / "inventory.yml"), "-i", str(lab / "windows.yml")]
    up = installed.kremove(
        "lab", "up", "--dir", str(lab), "--kinds", "clean=1,one_product=1",
        "--windows-kinds", "kes_and_agent=1",
    )  # fmt: skip
    said = [up]
    try:
        assert up.returncode == 0, up.stderr
        assert "REHEARSAL ENVIRONMENT" in up.stderr
        windows = WinrmFleet.load(lab / "windows")
        secrets = windows.secrets + Fleet.load(lab).secrets
        SEEN.append((secrets, lab))  # the session's scan looks for them in what kremove wrote
        # The Windows hosts are the wheel's emulator, run by the venv's Python.
        server = Path(f"/proc/{windows.pid}/cmdline").read_bytes().split(b"\0")
        assert server[0] == bytes(installed.venv / "bin" / "python")
        assert b"orchestrator._lab.winrm_host.server" in server

        def statuses(*args: str, code: int) -> dict[str, str]:
            done = installed.kremove(*args, *inventories, "--json", "--ledger", installed.ledger)
            said.append(done)
            assert done.returncode == code, done.stderr
            return {h["host"]: h["status"] for h in json.loads(done.stdout)["hosts"]}

        before = statuses("detect", code=1)
        assert before == {
            "h001-clean": "clean",
            "h002-one_product": "found",
            "w001-kes_and_agent": "found",
        }
        assert statuses("run", "--yes", code=0) == {
            "h001-clean": "clean",
            "h002-one_product": "removed",
            "w001-kes_and_agent": "removed",
        }
        assert set(statuses("detect", code=0).values()) == {"clean"}
    finally:
        said.append(installed.kremove("lab", "down", "--dir", str(lab)))
    assert said[-1].returncode == 0, said[-1].stderr
    # lab down stopped all it started: no process runs the venv's Python any more.
    assert not _running_from(installed.venv)
    assert not [s for done in said for s in secrets if s in done.stdout + done.stderr]


def _running_from(venv: Path) -> list[str]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].startswith(bytes(venv)):
            found.append(b" ".join(argv).decode(errors="replace"))
    return found
