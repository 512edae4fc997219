"""The command line in-process (Typer's CliRunner and main()): parsing, help and exit codes,
in milliseconds. What a command does to hosts is tested through the installed script
(tests/test_cli.py and tests/integration)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app, main, options
from tests.cli_runner import KREMOVE
from tests.test_cli import COMMANDS

runner = CliRunner()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "kremove")
def test_every_command_has_help(command: list[str]) -> None:
    done = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert done.exit_code == 0, done.output
    assert "Usage:" in done.output


@pytest.mark.parametrize(
    "args",
    [
        ["detect", "-i", "x.yml", "--forks", "0"],
        ["detect", "-i", "x.yml", "--host-timeout", "0.5"],
        ["run", "--pause-after", "0"],
        ["run", "--no-such-flag"],
        ["runs", "list", "--last", "0"],
        ["runs", "show"],  # the run id is required
        ["runs", "prune", "--before", "2026-01-01"],  # --archive is required
        ["nonsense"],
    ],
    ids=lambda a: " ".join(a),
)
def test_a_bad_option_exits_2(args: list[str]) -> None:
    assert runner.invoke(app, args).exit_code == 2


def kremove(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """main() as the console script runs it: the exit code and the one line on stderr."""
    with pytest.raises(SystemExit) as exited:
        main(args)
    code = exited.value.code
    return code if isinstance(code, int) else 0, capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["run", "--resume", "A", "--plan", "B"], "--resume and --plan cannot be combined"),
        (["run", "--yes"], "ANSIBLE_INVENTORY (or continue a run with --resume RUN_ID)"),
        (["detect"], "no inventory given: pass -i"),  # nor ansible.cfg, nor ANSIBLE_INVENTORY
        (["report", "--fleet", "RUN"], "give a run id, or --fleet"),
        (["report"], "give a run id, or --fleet"),
        (["report", "RUN", "--format", "xml"], "--format: 'xml' is not one of"),
    ],
)
def test_exclusive_or_missing_choices_are_one_red_line_and_exit_2(
    args: list[str],
    line: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KREMOVE_LEDGER", raising=False)
    for name in [name for name in os.environ if name.startswith("ANSIBLE_")]:
        monkeypatch.delenv(name)  # no ansible.cfg or ANSIBLE_INVENTORY names an inventory
    monkeypatch.setenv("HOME", str(tmp_path))
    code, err = kremove([*args, "--ledger", str(tmp_path / "none.db")], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "kremove: error:" in err and line in err


def test_both_uninstall_password_sources_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    inventory = tmp_path / "local.yml"
    inventory.write_text("hosts:\n  localhost:\n    transport: local\n")
    args = ["plan", "-i", str(inventory), "--ledger", str(tmp_path / "l.db")]
    args += ["--uninstall-password-env", "P", "--uninstall-password-file", "p.txt"]
    code, err = kremove(args, capsys)
    assert code == 2 and "give the uninstall password once" in err


def test_a_missing_ledger_is_said_and_not_created(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = kremove(["runs", "list", "--ledger", str(tmp_path / "none.db")], capsys)
    assert code == 2 and "no ledger at" in err
    assert not (tmp_path / "none.db").exists()


def test_debug_adds_the_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = ["runs", "list", "--ledger", str(tmp_path / "none.db")]
    code, err = kremove(["--debug", *args], capsys)
    assert code == 2 and "Traceback" in err and err.rstrip().splitlines()[-1].startswith("kremove")
    code, err = kremove(args, capsys)
    assert "Traceback" not in err


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("kremove ")


def test_the_option_defaults_are_the_engines() -> None:
    from orchestrator.engine import request as engine

    assert options.DEFAULT_FORKS == engine.DEFAULT_FORKS
    assert options.DEFAULT_HOST_TIMEOUT == engine.DEFAULT_HOST_TIMEOUT


# markdown_it comes with Typer's rich help (rich.markdown): as slow to import as the rest of
# `kremove --help`, so help is plain text.
HEAVY = (
    "orchestrator.engine",
    "orchestrator.ledger",
    "paramiko",
    "jinja2",
    "winrm",
    "yaml",
    "markdown_it",
    "rich.markdown",
)


def test_help_loads_no_engine_paramiko_or_jinja2() -> None:
    """pip's lazy command table: `kremove --help` imports the command modules, not the engine."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", KREMOVE, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "orchestrator.cli.run" in imported  # the measurement sees the command modules
    loaded = sorted(m for m in imported if m.startswith(HEAVY))
    assert loaded == []
