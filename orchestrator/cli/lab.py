"""kremove lab: the practice fleet (REHEARSAL ONLY), the test suite's simulated hosts.

The fleet's code is tests/fleet, which the package carries as ``orchestrator._lab`` (a link built
into the wheel), so a pip- or pipx-installed kremove runs it as ``python -m orchestrator._lab``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import typer

from orchestrator.cli.options import LabDirOpt
from orchestrator.errors import InputError, KremoveError

LAB_KINDS = (
    "clean=4,one_product=6,several_products=4,uninstall_fails=1,unreachable=1,slow=1,"
    "jump=1,behind_jump=1,unknown_kaspersky=1,windows_openssh=1"
)
# Windows hosts that remove cleanly (one a KSC 10-era agent), one that needs a reboot (3010) and
# one protected KES that fails without its uninstall password; none that hangs, so a wave over the
# lab ends quickly.
LAB_WINDOWS_KINDS = (
    "clean=1,kes_and_agent=2,french_agent=1,reboot_required=1,protected_kes=1,ksc10_agent=1"
)

app = typer.Typer(
    rich_markup_mode=None,
    help="A REHEARSAL environment: a practice fleet of simulated hosts on this machine.",
    epilog="Example: sudo kremove lab up; "
    "kremove plan -i .kremove/lab/inventory.yml -i .kremove/lab/windows.yml",
    no_args_is_help=True,
)


LAB_MODULE = "orchestrator._lab"
# What the practice fleet runs on this machine (Debian), and the package each comes from.
NEEDS = {
    "/usr/sbin/sshd": "openssh-server",
    "sudo": "sudo",
    "unshare": "util-linux",
    "mount": "mount",
    "dpkg": "dpkg",
    "dpkg-deb": "dpkg",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "openssl": "openssl",
    "bash": "bash",
}
# Installed by the fleet itself, which keeps the system sshd from starting (tests/fleet/system.py).
FLEET_INSTALLS = ("openssh-server", "sudo")


def _lab(command: str, directory: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run the practice fleet's own command line, ``python -m orchestrator._lab``."""
    if importlib.util.find_spec(LAB_MODULE) is None:
        raise InputError(
            f"this kremove installation has no practice fleet ({LAB_MODULE}); reinstall it "
            "from a kremove wheel or checkout"
        )
    if command == "up":
        _prerequisites()
    return subprocess.run(
        [sys.executable, "-m", LAB_MODULE, command, "--dir", str(directory.resolve()), *extra],
        cwd="/",  # not a checkout the current directory may be: the installed package runs
        capture_output=True,
        text=True,
        timeout=600,
    )


def _missing() -> list[str]:
    return sorted({package for tool, package in NEEDS.items() if not shutil.which(tool)})


def _packages(names: list[str]) -> str:
    return f"the Debian package{'s' if len(names) > 1 else ''} {', '.join(names)}"


def _prerequisites() -> None:
    """Root, and the Debian packages the fleet runs, installed with apt-get when missing."""
    missing = _missing()
    if os.geteuid() != 0:
        needs = f" and {_packages(missing)}" if missing else ""
        raise InputError(
            f"the practice fleet needs root{needs} (it runs sshd in private namespaces); run: "
            "sudo kremove lab up" + (" (it installs them with apt-get)" if missing else "")
        )
    if not missing:
        return
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        raise InputError(
            f"the practice fleet needs {_packages(missing)} and there is no apt-get: install "
            "them, then run kremove lab up again"
        )
    from orchestrator.cli.console import err

    err.print(f"kremove lab: installing {', '.join(missing)} with apt-get (the practice fleet)")
    ours = [package for package in missing if package not in FLEET_INSTALLS]
    if ours:
        _apt_get(apt_get, ours)
    still = [package for package in _missing() if package not in FLEET_INSTALLS]
    if still:
        raise InputError(
            f"apt-get install {' '.join(ours)} left {_packages(still)} missing: install them "
            "by hand, then run kremove lab up again"
        )


def _apt_get(apt_get: str, packages: list[str]) -> None:
    """``apt-get install``, non-interactive; on failure once more after ``apt-get update``."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait = ["-o", "DPkg::Lock::Timeout=300"]  # another apt-get may be running: wait for it

    def apt(*args: str) -> subprocess.CompletedProcess[str]:
        command = [apt_get, *wait, *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False)

    install = ("install", "-y", "-q", "--no-install-recommends", *packages)
    done = apt(*install)
    if done.returncode != 0:  # the package lists may be missing or stale on a fresh machine
        apt("update", "-q")
        done = apt(*install)
    if done.returncode != 0:
        raise InputError(
            f"apt-get install {' '.join(packages)} failed ({_last(done.stderr or done.stdout)}):"
            " install them by hand, then run kremove lab up again"
        )


@app.command("up", epilog="Example: sudo kremove lab up --dir /tmp/rehearsal")
def lab_up(
    directory: Path = LabDirOpt,
    kinds: str = typer.Option(
        LAB_KINDS,
        "--kinds",
        help="Simulated Linux hosts by kind (the practice fleet's README.md: tests/fleet/ in the "
        "source, orchestrator/_lab/ installed).",
    ),
    windows_kinds: str = typer.Option(
        LAB_WINDOWS_KINDS,
        "--windows-kinds",
        help="Emulated Windows hosts (WinRM) by kind, '' for none "
        "(see winrm_host/README.md beside it).",
    ),
) -> None:
    """Start a practice fleet (REHEARSAL ONLY): ~20 simulated Linux hosts with dummy Kaspersky
    packages, one emulated Windows host behind OpenSSH and a few behind WinRM, some failing and
    unreachable, on 127.0.0.1. Rehearse plans and waves against it."""
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
