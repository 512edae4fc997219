"""kremove lab: the practice fleet (REHEARSAL ONLY), the test suite's simulated hosts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from orchestrator.cli.options import LabDirOpt
from orchestrator.errors import InputError, KremoveError

LAB_KINDS = (
    "clean=4,one_product=7,several_products=4,uninstall_fails=1,unreachable=1,slow=1,"
    "jump=1,behind_jump=1"
)
# Windows hosts that remove cleanly, one that needs a reboot (3010) and one protected KES that
# fails without its uninstall password; none that hangs, so a wave over the lab ends quickly.
LAB_WINDOWS_KINDS = "clean=1,kes_and_agent=2,french_agent=1,reboot_required=1,protected_kes=1"

app = typer.Typer(
    help="A REHEARSAL environment: a practice fleet of simulated hosts on this machine.",
    epilog="Example: sudo kremove lab up; "
    "kremove plan -i .kremove/lab/inventory.yml -i .kremove/lab/windows.yml",
    no_args_is_help=True,
)


def _lab(command: str, directory: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """The practice fleet is the test suite's simulated fleet, run from this checkout."""
    from orchestrator.playbook.loader import builtin_dir

    root = builtin_dir().parent
    if not (root / "tests" / "fleet" / "__main__.py").exists():
        raise InputError(
            f"the practice fleet ships with the kremove checkout; {root} has no tests/fleet"
        )
    if command == "up" and os.geteuid() != 0:
        raise InputError(
            "the practice fleet needs root (it runs sshd in private namespaces); run: "
            "sudo kremove lab up"
        )
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "tests.fleet", command, "--dir", str(directory.resolve()), *extra],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@app.command("up", epilog="Example: sudo kremove lab up --dir /tmp/rehearsal")
def lab_up(
    directory: Path = LabDirOpt,
    kinds: str = typer.Option(
        LAB_KINDS, "--kinds", help="Simulated Linux hosts by kind (see tests/fleet/README.md)."
    ),
    windows_kinds: str = typer.Option(
        LAB_WINDOWS_KINDS,
        "--windows-kinds",
        help="Emulated Windows hosts (WinRM) by kind, '' for none "
        "(see tests/fleet/winrm_host/README.md).",
    ),
) -> None:
    """Start a practice fleet (REHEARSAL ONLY): ~20 simulated Linux hosts with dummy Kaspersky
    packages and a few emulated Windows hosts behind WinRM, some failing and unreachable, on
    127.0.0.1. Rehearse plans and waves against it."""
    from orchestrator.cli.console import err, out, safe

    done = _lab("up", directory, "--kinds", kinds, "--windows-kinds", windows_kinds)
    if done.returncode != 0:
        raise KremoveError(f"lab up failed: {_last(done.stderr or done.stdout)}")
    err.print("[bold yellow]REHEARSAL ENVIRONMENT[/] — simulated hosts, not real machines")
    for line in done.stdout.splitlines():
        # The fleet's own helper lines: its passwords (not needed by this lab) are not shown.
        if line.startswith(("export ", "# stop:", "# inventory:", "# windows inventory:")):
            continue
        out.print(safe(line.lstrip("# ")))
    out.print(f"inventory: {directory.resolve() / 'inventory.yml'}")
    if windows_kinds.strip():
        out.print(f"windows inventory: {directory.resolve() / 'windows.yml'}")
    out.print(f"stop it with: kremove lab down --dir {directory}")


@app.command("status", epilog="Example: kremove lab status")
def lab_status(directory: Path = LabDirOpt) -> None:
    """Show the practice fleet's Linux and Windows hosts and what is installed on each
    (REHEARSAL ONLY)."""
    from orchestrator.cli.console import out

    done = _lab("status", directory)
    out.print(done.stdout.rstrip())
    if done.returncode not in (0, 3):
        raise KremoveError(f"lab status: {_last(done.stderr or done.stdout)}")


@app.command("down", epilog="Example: kremove lab down")
def lab_down(directory: Path = LabDirOpt) -> None:
    """Stop the practice fleet (Linux and Windows hosts) and everything it started."""
    from orchestrator.cli.console import out

    done = _lab("down", directory)
    if done.returncode != 0:
        raise KremoveError(f"lab down: {_last(done.stderr or done.stdout)}")
    out.print(done.stdout.rstrip())


def _last(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"
