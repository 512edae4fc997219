"""The command line as a user meets it: the installed `kremove` script, run as a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KREMOVE = shutil.which("kremove", path=str(Path(sys.executable).parent)) or "kremove"
COMMANDS = [
    [],
    ["inventory"],
    ["inventory", "check"],
    ["detect"],
    ["runs"],
    ["runs", "list"],
    ["runs", "show"],
]


def kremove(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "KREMOVE_LEDGER"}
    full_env.update({"NO_COLOR": "1", "COLUMNS": "200", **(env or {})})
    return subprocess.run(
        [KREMOVE, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_version(tmp_path: Path) -> None:
    done = kremove("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip().startswith("kremove 0.")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "kremove")
def test_every_command_has_help_with_an_example(tmp_path: Path, command: list[str]) -> None:
    done = kremove(*command, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Example" in done.stdout and "kremove " in done.stdout.split("Example", 1)[1]


def test_detect_localhost_is_recorded_and_listed(tmp_path: Path) -> None:
    pytest.importorskip("sqlite3")
    if shutil.which("dpkg-query") is None and shutil.which("rpm") is None:
        pytest.skip("needs dpkg or rpm on the controller")
    inventory = str(ROOT / "inventories" / "localhost.yml")
    done = kremove("detect", "-i", inventory, "--json", cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    (host,) = report["hosts"]
    assert host["host"] == "localhost" and host["status"] in ("clean", "found")
    assert (done.returncode == 0) == (host["status"] == "clean")
    assert (tmp_path / ".kremove" / "ledger.db").exists()
    assert oct((tmp_path / ".kremove" / "ledger.db").stat().st_mode & 0o777) == "0o600"

    listed = kremove("runs", "list", cwd=tmp_path)
    assert listed.returncode == 0 and report["run"] in listed.stdout

    shown = json.loads(kremove("runs", "show", report["run"][:15], "--json", cwd=tmp_path).stdout)
    assert shown["id"] == report["run"] and shown["kind"] == "detect"
    assert shown["steps"][0]["command"].startswith("found_manager=no")


def test_ledger_moves_with_the_environment_variable(tmp_path: Path) -> None:
    ledger = tmp_path / "elsewhere" / "book.db"
    kremove(
        "detect",
        "-i",
        str(ROOT / "inventories" / "localhost.yml"),
        cwd=tmp_path,
        env={"KREMOVE_LEDGER": str(ledger)},
    )
    assert ledger.exists() and not (tmp_path / ".kremove").exists()


def test_unknown_run_is_a_one_line_input_error(tmp_path: Path) -> None:
    done = kremove("runs", "show", "nosuchrun", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "nosuchrun" in done.stderr
    assert "Traceback" not in done.stderr
