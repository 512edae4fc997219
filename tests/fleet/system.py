"""What the fleet needs from this machine, checked (and installed) before a fleet starts.

The fleet runs real ``sshd`` processes in private mount namespaces with overlayfs views of /etc,
/var and /opt, so it needs root, util-linux's ``unshare``, overlayfs on the work directory's
filesystem, OpenSSH's server, ``sudo`` and ``doas``. The packages are installed with apt-get when
missing; the system sshd the Debian package would start is prevented (and never left running).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

SSHD = "/usr/sbin/sshd"
SUDO = "/usr/bin/sudo"
DOAS = "/usr/bin/doas"  # Debian's doas (OpenBSD's doas, ported): the doas_* kinds become with it
PACKAGES = {"openssh-server": SSHD, "sudo": SUDO, "doas": DOAS}
TOOLS = ("unshare", "mount", "dpkg-deb", "dpkg", "ssh-keygen", "ssh", "openssl", "bash")
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
SYSTEM_SSHD_PID = Path("/run/sshd.pid")
NOT_TO_BE_RUN = Path("/etc/ssh/sshd_not_to_be_run")
LOCK_FILE = Path(tempfile.gettempdir()) / "kremove-fleet-apt.lock"


class FleetUnavailable(RuntimeError):
    """This machine cannot run the fleet; the message says why and what would fix it."""


def check_prerequisites(workdir: Path) -> None:
    """Raise FleetUnavailable unless a fleet can run here with its files in ``workdir``."""
    if os.geteuid() != 0:
        raise FleetUnavailable("the SSH fleet needs root (mount namespaces and overlayfs)")
    ensure_packages()
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise FleetUnavailable(f"the SSH fleet needs these commands: {', '.join(missing)}")
    check_overlay(workdir)


def check_overlay(workdir: Path) -> None:
    """Mount a throwaway overlay with its upper dir in ``workdir`` inside a private namespace."""
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="overlay-check-", dir=workdir) as tmp:
        root = Path(tmp)
        for sub in ("lower", "upper", "work", "merged"):
            (root / sub).mkdir()
        (root / "lower" / "seen").write_text("lower\n")
        options = f"lowerdir={root}/lower,upperdir={root}/upper,workdir={root}/work"
        merged = root / "merged"
        script = f'mount -n -t overlay overlay -o "{options}" "{merged}" && echo up >"{merged}/new"'
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not (root / "upper" / "new").exists():
            detail = (result.stderr or result.stdout).strip() or f"exit {result.returncode}"
            raise FleetUnavailable(
                f"cannot mount overlayfs with its upper dir in {workdir} inside a private mount "
                f"namespace (unshare --mount): {detail}; use a work directory on ext4/xfs/tmpfs"
            )


def installed(package: str) -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0 and result.stdout.strip() == "install ok installed"


def ensure_packages() -> None:
    """Install openssh-server, sudo and doas with apt-get when missing; leave no system sshd
    running."""
    if all(installed(name) and Path(path).exists() for name, path in PACKAGES.items()):
        return
    with _apt_lock():
        missing = [name for name, path in PACKAGES.items() if not installed(name)]
        missing += [n for n, p in PACKAGES.items() if n not in missing and not Path(p).exists()]
        if not missing:
            return
        if shutil.which("apt-get") is None:
            raise FleetUnavailable(f"missing {', '.join(missing)} and there is no apt-get")
        sshd_before = _system_sshd_pid()
        with _no_service_starts():
            _apt_install(missing)
        if "openssh-server" in missing:
            # Keep init scripts from ever starting the system sshd (Debian honours this file).
            with contextlib.suppress(OSError):
                NOT_TO_BE_RUN.touch()
        started = _system_sshd_pid()
        if started is not None and started != sshd_before and _is_sshd(started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(started, 15)
        for name, path in PACKAGES.items():
            if not Path(path).exists():
                raise FleetUnavailable(f"apt-get installed {name} but {path} is missing")


def _apt_install(packages: list[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    first = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if first.returncode == 0:
        return
    # Package lists may be missing or stale on a fresh machine.
    subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
    second = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if second.returncode != 0:
        tail = (second.stderr or second.stdout).strip().splitlines()[-3:]
        raise FleetUnavailable(
            f"apt-get install {' '.join(packages)} failed: {' / '.join(tail)}; install them by hand"
        )


@contextlib.contextmanager
def _no_service_starts() -> Iterator[None]:
    """A policy-rc.d that forbids invoke-rc.d to start services, removed afterwards if ours."""
    if POLICY_RC_D.exists():
        yield
        return
    POLICY_RC_D.write_text(
        "#!/bin/sh\n# kremove test fleet: no service starts during install\nexit 101\n"
    )
    POLICY_RC_D.chmod(0o755)
    try:
        yield
    finally:
        POLICY_RC_D.unlink(missing_ok=True)


@contextlib.contextmanager
def _apt_lock() -> Iterator[None]:
    with LOCK_FILE.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _system_sshd_pid() -> int | None:
    try:
        return int(SYSTEM_SSHD_PID.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_sshd(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/exe").resolve().name == "sshd"
    except OSError:
        return False
