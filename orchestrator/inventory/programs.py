"""Running an inventory program (an inventory script, ``ansible-inventory``) the way kremove runs
anything it did not write: only when nobody else can change it, stdin closed, its own process
group, a deadline, bounded output.

Output goes to anonymous temporary files rather than pipes, so a descendant that keeps a pipe open
cannot hold kremove past the deadline, and a flood is noticed by size instead of filling memory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from orchestrator import textsafe
from orchestrator.deadline import Deadline
from orchestrator.errors import InputError, InventoryError
from orchestrator.inventory.settings import Fail

TIMEOUT_ENV = "KREMOVE_INVENTORY_TIMEOUT"
MAX_OUTPUT = 256 * 1024 * 1024  # an inventory larger than this is a runaway program
STDERR_READ = 8192  # the tail of stderr kept for a message
STDERR_SHOWN = 400  # characters of it shown
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Finished:
    """A program that exited by itself: its status, its whole stdout and the tail of its stderr."""

    exit_code: int
    stdout: bytes
    stderr: bytes


def check_trusted(path: Path, kind: str) -> None:
    """Refuse, in one line, to run ``kind`` (an inventory script, a plugin config) when someone
    other than you or root owns it or its directory, or can write either (a sticky directory such
    as /tmp excepted), as ssh refuses a loose key."""
    if os.name == "nt":
        return
    real = path.resolve()
    for item, what in ((real, kind), (real.parent, f"directory of the {kind}")):
        info = item.stat()
        if info.st_uid not in (os.geteuid(), 0):
            raise InventoryError(
                f"the {what} {item} is owned by uid {info.st_uid}, not by you or root; kremove "
                f"runs an {kind} only when nobody else can change it (chown it)",
                file=path,
            )
        if info.st_mode & 0o022 and not (item.is_dir() and info.st_mode & stat.S_ISVTX):
            raise InventoryError(
                f"the {what} {item} can be changed by other users (mode "
                f"{info.st_mode & 0o777:04o}); kremove will not run it: chmod go-w {item}",
                file=path,
            )


def timeout(default: float) -> float:
    """Seconds an inventory program may take: ``KREMOVE_INVENTORY_TIMEOUT``, else ``default``."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < 86400:
        raise InputError(f"{TIMEOUT_ENV}={textsafe.line(text)[:20]}: give a number of seconds")
    return seconds


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None,
    deadline: Deadline,
    allowed: float,
    fail: Fail,
    env: Mapping[str, str] | None = None,
) -> Finished:
    """Run ``argv`` to its end; a program that cannot start, outlives ``deadline`` (its whole
    process group is killed; ``allowed`` is the deadline's length in seconds, for the message) or
    prints more than MAX_OUTPUT is ``fail(reason)``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=None if env is None else dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group: a deadline kills all of it
            )
        except OSError as exc:
            raise fail(f"cannot be run: {exc.strerror or exc}") from None
        problem = _wait(proc, deadline, allowed, out, err)
        if problem is not None:
            _kill(proc)
            raise fail(problem + stderr_said(_tail(err)))
        out.seek(0)
        return Finished(proc.returncode, out.read(), _tail(err))


def _wait(
    proc: subprocess.Popen[bytes], deadline: Deadline, allowed: float, *files: IO[bytes]
) -> str | None:
    """None once the program has exited by itself, else why it must be killed."""
    while True:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=min(POLL_SECONDS, deadline.remaining()))
        printed = sum(os.fstat(f.fileno()).st_size for f in files)
        if printed > MAX_OUTPUT:
            return f"printed more than {MAX_OUTPUT // (1024 * 1024)} MiB; killed it"
        if proc.returncode is not None:
            return None
        if deadline.expired:
            return (
                f"did not finish within {allowed:g} s; killed it (set {TIMEOUT_ENV}=SECONDS "
                "to allow longer)"
            )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group may be gone already
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _tail(err: IO[bytes]) -> bytes:
    size = os.fstat(err.fileno()).st_size
    err.seek(max(0, size - STDERR_READ))
    return err.read()


def stderr_said(data: bytes) -> str:
    """``; it printed on stderr: …`` — ``data`` on one line (its start and end when long),
    controls made visible — or nothing when it printed nothing there."""
    text = data.decode("utf-8", errors="replace")
    said = " / ".join(line.strip() for line in text.splitlines() if line.strip())
    if not said:
        return ""
    if len(said) > STDERR_SHOWN:  # the first complaint and the last words
        half = STDERR_SHOWN // 2
        said = f"{said[:half]} ... {said[-half:]}"
    return f"; it printed on stderr: {textsafe.line(said)}"
