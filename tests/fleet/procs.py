"""Process and socket helpers: who listens on a port, which processes live in a mount namespace.

The fleet kills only what it started: a host's sshd process group, then every process left in
that host's private mount namespace (SSH sessions call setsid, so they leave the group). A
namespace is never the caller's own, which is checked before anything is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Collection, Iterable


def mount_ns(pid: int) -> str | None:
    """'mnt:[4026532...]' for a live process, None when it is gone (or a zombie)."""
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


OWN_MOUNT_NS = mount_ns(os.getpid())
INIT_MOUNT_NS = mount_ns(1)


def processes_in(namespaces: Collection[str]) -> dict[int, str]:
    """pid -> namespace for every process in one of ``namespaces`` (never our own namespace)."""
    wanted = set(namespaces) - {OWN_MOUNT_NS, INIT_MOUNT_NS, None}
    found: dict[int, str] = {}
    if not wanted:
        return found
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        ns = mount_ns(int(entry.name))
        if ns in wanted:
            found[int(entry.name)] = ns
    return found


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def kill_namespaces(namespaces: Collection[str], timeout: float = 10.0) -> list[int]:
    """SIGKILL every process in ``namespaces`` until none is left; the pids still there."""
    deadline = time.monotonic() + timeout
    while True:
        left = processes_in(namespaces)
        if not left or time.monotonic() > deadline:
            return sorted(left)
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def listening(ports: Iterable[int] | None = None) -> dict[int, int]:
    """port -> socket inode for TCP sockets listening on 127.0.0.1 (or any address)."""
    wanted = set(ports) if ports is not None else None
    found: dict[int, int] = {}
    with open("/proc/net/tcp") as handle:
        next(handle)
        for line in handle:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            address, port_hex = fields[1].split(":")
            if address not in ("0100007F", "00000000"):
                continue
            port = int(port_hex, 16)
            if wanted is None or port in wanted:
                found[port] = int(fields[9])
    return found


def socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes
