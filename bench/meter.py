"""Run one command and measure its whole process tree: wall time, CPU time, peak memory.

Used as a wrapper process (``python -m bench.meter OUT.json -- CMD ...``) so that nothing but the
tool is counted:

- the wrapper makes itself a child subreaper, so processes that daemonize (Ansible's ControlPersist
  masters) stay in its tree instead of escaping to init;
- CPU is ``getrusage(RUSAGE_CHILDREN)`` of the wrapper after every descendant has been reaped:
  user + system of the tool and of all its descendants, summed by the kernel as each is waited for
  (the wrapper's own Python and its sampler are not children, so they are not counted);
- memory is sampled by walking the tree from the wrapper through ``/proc/PID/task/TID/children``
  and summing the resident pages (and the anonymous ones) of every descendant from
  ``/proc/PID/statm``; the peak of those sums is reported. A sum of RSS counts pages shared between
  processes (libraries, copy-on-write pages of forked workers) once per process: it is an upper
  bound for multi-process tools, exact for a single process;
- the sampler shares the machine with the tool, so its cost is bounded: it samples every
  ``INTERVAL`` seconds, or less often when the tree is large, so that it spends at most ``DUTY``
  of one core (a tree of 2,500 processes, Ansible's at 300 hosts with its ControlPersist masters,
  takes ~0.1 s of CPU to walk; sampled every 50 ms regardless, the walk took most of a core away
  from the tool it was timing). Its own CPU time is reported as ``sampler_cpu_s``;
- wall time runs from spawning the tool to its exit. Descendants still alive then (ControlPersist
  masters) are sent SIGTERM, waited for, and their CPU is counted, their lingering time is not.

The sshd processes serving the tool are children of the fleet, not of the tool: never counted.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

INTERVAL = 0.05
DUTY = 0.05  # at most this share of one core for the sampler
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
PR_SET_CHILD_SUBREAPER = 36


def descendants(root: int) -> list[int]:
    """Every live descendant of ``root`` (not root itself), by the kernel's children lists."""
    found: list[int] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            found.extend(kids)
            stack.extend(kids)
    return found


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How many cores were busy between two cpu_ticks() readings, on average."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total * (os.cpu_count() or 1) if total else 0.0


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) of one process in KiB; zeros once it is gone or a zombie.

    From /proc/PID/statm (one short line): resident pages, and resident minus shared
    (RssFile + RssShmem) for the anonymous ones."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            fields = f.read().split()
    except OSError:
        return 0, 0
    resident, shared = int(fields[1]), int(fields[2])
    return resident * PAGE_KIB, (resident - shared) * PAGE_KIB


class Sampler(threading.Thread):
    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak_rss = self.peak_anon = self.peak_procs = self.samples = 0
        self.cpu_s = 0.0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            began = time.thread_time()
            pids = descendants(self.root)
            rss = anon = 0
            for pid in pids:
                r, a = rss_kib(pid)
                rss += r
                anon += a
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_anon = max(self.peak_anon, anon)
            self.peak_procs = max(self.peak_procs, len(pids))
            self.samples += 1
            cost = time.thread_time() - began
            self.cpu_s += cost
            self.stopping.wait(max(INTERVAL, cost / DUTY - cost))


def measure(argv: list[str], stdout: Path, stderr: Path, env: dict[str, str]) -> dict[str, object]:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    sampler = Sampler(os.getpid())
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with stdout.open("wb") as out, stderr.open("wb") as err:
        ticks = cpu_ticks()
        started = time.monotonic()
        sampler.start()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, start_new_session=True)
        rc = proc.wait()
        wall = time.monotonic() - started
        machine_busy = busy_cores(ticks, cpu_ticks())
    sampler.stopping.set()
    sampler.join()
    lingering = descendants(os.getpid())
    for pid in lingering:  # our own tool's leftovers (ControlPersist masters), by pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if time.monotonic() > deadline:
                for left in descendants(os.getpid()):
                    os.kill(left, signal.SIGKILL)
            time.sleep(0.02)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user = after.ru_utime - before.ru_utime
    system = after.ru_stime - before.ru_stime
    return {
        "argv": argv,
        "exit_code": rc,
        "wall_s": wall,
        "user_s": user,
        "system_s": system,
        "cpu_s": user + system,
        "peak_rss_mib": sampler.peak_rss / 1024,
        "peak_rss_anon_mib": sampler.peak_anon / 1024,
        "peak_processes": sampler.peak_procs,
        "samples": sampler.samples,
        "sampler_cpu_s": sampler.cpu_s,
        # Everything busy on the machine during the run: the tool, the fleet's sshd serving it,
        # and anything else running (compare with the tool's own cpu_s / wall_s).
        "machine_busy_cores": machine_busy,
        "lingering": len(lingering),
    }


def main() -> None:
    args = sys.argv[1:]
    if len(args) < 5 or args[3] != "--":
        sys.exit("usage: python -m bench.meter OUT.json STDOUT STDERR -- CMD [ARG...]")
    result = measure(args[4:], Path(args[1]), Path(args[2]), dict(os.environ))
    Path(args[0]).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
