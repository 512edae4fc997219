"""Start simulated hosts: each in new mount and UTS namespaces, with its own view of the system.

Run as ``python launcher.py`` (standard library only, so it starts fast) with a JSON request on
stdin: ``{"mode": "spawn" | "run", "hosts": [spec, ...]}``. For each spec it forks a child that

1. starts a new session (so the host is its own process group) and unshares its mount and UTS
   namespaces, with all mounts private (nothing propagates back to this machine);
2. mounts copy-on-write overlays on /etc, /var and /opt: lowerdirs are the spec's layers (top
   first) and, for /etc and /var, the real directory; the upper dir is the host's own;
3. builds a private tmpfs /run aside (the host dir may live under /run or /tmp, which get
   hidden), bind-mounts the host dir at /run/fleet-host inside it, and moves it onto /run;
   mounts private tmpfs on /tmp, /home (with kops's home) and /root;
4. sets the hostname, appends the host dir's ``hosts`` file to /etc/hosts;
5. makes / read-only for this namespace only (a bind remount: the filesystem is untouched), so
   nothing a session does, even as root, can change the real machine outside the overlays;
6. execs the spec's argv (sshd, or dpkg while a template layer is prepared).

A macOS-kind host (the spec has ``macos``; these are shims, not macOS: see macos.py) needs
top-level directories the real / lacks (/Library, /Applications, ...), and / is never written.
So before step 2 it gets a new root: a private tmpfs "skeleton" holding those directories as
empty mount points and the shim commands in usr/local/bin, under which the real / is merged by a
read-only overlay (lowerdir=skeleton:/; the skeleton must be a tmpfs because overlayfs refuses
a lower layer nested inside another). Steps 2-4 then mount inside that root, the Mac
directories as overlays like /etc; /dev, /proc and /sys are bound in; and instead of step 5 the
process pivots into it (pivot_root, then the old root is detached), so the host's root mount,
which ``nsenter --mount`` also enters, is the Mac view. Nothing is written outside the host dir.

``spawn`` prints ``{"pids": [...]}`` and exits at once, leaving the hosts running; ``run`` waits
for the single child and exits with its status. A child that fails writes why to its log (or
stderr) and exits 127. This is done with system calls from one small process instead of a shell
script running mount(8) ten times, because that made starting 300 hosts take ten seconds.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import traceback
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
OVERLAID = ("etc", "var", "opt")
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "i686": 217, "armv7l": 218}

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None
) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def enter(spec: dict[str, Any]) -> None:
    """Steps 1-5 above, in the calling process (a fresh child)."""
    os.setsid()
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWUTS), "unshare")
    mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    mac: dict[str, Any] | None = spec.get("macos")
    root = _mac_root(mac) if mac else ""
    layers: list[str] = spec["layers"]
    for name in (*OVERLAID, *(mac["dirs"] if mac else ())):
        lower = [f"{layer}/{name}" for layer in layers]
        if mac:
            lower = [path for path in lower if os.path.isdir(path)]
        if name in ("etc", "var"):  # /opt and the Mac directories show only the layers
            lower.append(f"/{name}")
        upper, work = f"{spec['upper']}/{name}", f"{spec['work']}/{name}"
        os.makedirs(upper, exist_ok=True)
        os.makedirs(work, exist_ok=True)
        options = f"lowerdir={':'.join(lower)},upperdir={upper},workdir={work}"
        mount(f"fleet-{name}", f"{root}/{name}", "overlay", 0, options)
    stage = spec["stage"]
    os.makedirs(stage, exist_ok=True)
    mount("fleet-run", stage, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=64m")
    for sub in ("sshd", "lock"):
        os.mkdir(f"{stage}/{sub}", 0o755)
    hostdir = spec.get("hostdir")
    if hostdir:
        os.mkdir(f"{stage}/fleet-host", 0o755)
        mount(hostdir, f"{stage}/fleet-host", None, MS_BIND, None)
    mount(stage, f"{root}/run", None, MS_MOVE, None)
    mount("fleet-tmp", f"{root}/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    mount("fleet-home", f"{root}/home", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=64m")
    mount("fleet-root", f"{root}/root", "tmpfs", MS_NOSUID | MS_NODEV, "mode=700,size=64m")
    if mac:
        for name in ("dev", "proc", "sys"):
            mount(f"/{name}", f"{root}/{name}", None, MS_BIND | MS_REC, None)
    uid = spec.get("uid")
    if uid is not None:
        os.mkdir(f"{root}/home/{spec['user']}", 0o700)
        os.chown(f"{root}/home/{spec['user']}", uid, uid)
    hostname = spec["hostname"].encode()
    _check(_libc.sethostname(hostname, ctypes.c_size_t(len(hostname))), "sethostname")
    if hostdir and os.path.exists(f"{root}/run/fleet-host/hosts"):
        with open(f"{root}/run/fleet-host/hosts") as extra, open(f"{root}/etc/hosts", "a") as hosts:
            hosts.write(extra.read())
    if mac:
        _pivot(root)
    else:
        mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
    os.chdir("/")


def _mac_root(mac: dict[str, Any]) -> str:
    """The read-only overlay root of a macOS-kind host: skeleton (tmpfs) over the real /."""
    skeleton, root = str(mac["skeleton"]), str(mac["root"])
    os.makedirs(skeleton, exist_ok=True)
    os.makedirs(root, exist_ok=True)
    mount("fleet-skeleton", skeleton, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=8m")
    for name in mac["dirs"]:
        os.mkdir(f"{skeleton}/{name}", 0o755)
    bindir = f"{skeleton}/usr/local/bin"
    os.makedirs(bindir, 0o755)
    for name in os.listdir(mac["shims"]):
        with open(f"{mac['shims']}/{name}", "rb") as source:
            data = source.read()
        fd = os.open(f"{bindir}/{name}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755)
        with os.fdopen(fd, "wb") as target:
            target.write(data)
    mount(None, skeleton, None, MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_RDONLY, None)
    mount("fleet-macos", root, "overlay", 0, f"lowerdir={skeleton}:/")
    return root


def _pivot(root: str) -> None:
    """Make ``root`` this namespace's root mount and detach the old one."""
    number = SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise OSError(f"pivot_root: unknown syscall number on {os.uname().machine}")
    os.chdir(root)
    _check(_libc.syscall(ctypes.c_long(number), b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", ctypes.c_int(MNT_DETACH)), "umount old root")


def child(spec: dict[str, Any], log: str | None) -> None:
    """Never returns: execs the host's command, or exits 127 after writing what went wrong."""
    try:
        if log:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
        enter(spec)
        os.execve(spec["argv"][0], spec["argv"], spec["env"])
    except BaseException:
        try:
            sys.stderr.write(f"fleet host {spec.get('hostname')}: {traceback.format_exc()}")
            sys.stderr.flush()
        finally:
            os._exit(127)


def main() -> int:
    request = json.loads(sys.stdin.read())
    if request["mode"] == "run":
        (spec,) = request["hosts"]
        pid = os.fork()
        if pid == 0:
            child(spec, None)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)
    pids = []
    for spec in request["hosts"]:
        pid = os.fork()
        if pid == 0:
            child(spec, spec["log"])
        pids.append(pid)
    sys.stdout.write(json.dumps({"pids": pids}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
