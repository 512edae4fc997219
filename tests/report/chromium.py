"""Debian's headless Chromium for the report tests: apt-get installs it when missing; runs offline.

Chromium only ever loads ``file://`` pages here, with every background service that would phone
home switched off; as root it also runs in a network namespace of its own (``unshare --net``),
where there is no network to reach.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

# Shared with tests/fleet/system.py so that two suites never run apt-get at once.
APT_LOCK = Path(tempfile.gettempdir()) / "kremove-fleet-apt.lock"
NAMES = ("chromium", "chromium-browser")
OFFLINE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
)
RUN_TIMEOUT = 60


class ChromiumUnavailable(Exception):
    """This machine has no Chromium and cannot install one."""


def find() -> str | None:
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure() -> tuple[str, float]:
    """The Chromium binary, installed from Debian if missing, and the install's seconds."""
    found = find()
    if found:
        return found, 0.0
    if os.geteuid() != 0:
        raise ChromiumUnavailable("chromium is not installed and installing it needs root")
    if shutil.which("apt-get") is None:
        raise ChromiumUnavailable("chromium is not installed and there is no apt-get")
    began = time.monotonic()
    with _apt_lock():
        if find() is None:
            _apt_install("chromium")
    found = find()
    if found is None:
        raise ChromiumUnavailable("apt-get installed chromium but no chromium binary is on PATH")
    return found, time.monotonic() - began


def _apt_install(package: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-q", package]
    if subprocess.run(command, env=env, capture_output=True, check=False).returncode == 0:
        return
    # Package lists may be missing or stale on a fresh machine.
    subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
    second = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if second.returncode != 0:
        tail = (second.stderr or second.stdout).strip().splitlines()[-3:]
        raise ChromiumUnavailable(f"apt-get install {package} failed: {' / '.join(tail)}")


@contextmanager
def _apt_lock() -> Iterator[None]:
    with APT_LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def run(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium invocation with a throwaway profile; raises if it fails."""
    command = [*_isolation(), binary, *OFFLINE_FLAGS, f"--user-data-dir={profile}", *args]
    # HOME too: Chromium writes caches and crash dumps under it whatever the profile.
    env = {**os.environ, "HOME": str(profile), "LANG": "C.UTF-8"}
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-5:]
        raise RuntimeError(f"chromium exited {result.returncode}: {' / '.join(tail)}")
    return result


@cache
def _isolation() -> tuple[str, ...]:
    """``unshare --net --`` when this machine lets us drop the network, else nothing."""
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        return ()
    probe = subprocess.run([unshare, "--net", "--", "true"], capture_output=True, check=False)
    return (unshare, "--net", "--") if probe.returncode == 0 else ()
