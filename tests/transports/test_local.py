"""The local transport against real processes: output, exit codes, and a deadline that kills."""

from __future__ import annotations

import os
import time
from pathlib import Path

from orchestrator.inventory.model import Host
from orchestrator.transports.base import BoundedOutput, Deadline
from orchestrator.transports.local import LocalTransport


def transport() -> LocalTransport:
    t = LocalTransport(Host(name="controller", address="localhost", transport="local", port=0))
    t.connect(Deadline.after(5))
    return t


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie has stopped running; its parent reaps it


def test_output_streams_and_exit_code() -> None:
    result = transport().run("echo out; echo err >&2; exit 7", Deadline.after(10))
    assert (result.exit_code, result.stdout, result.stderr, result.timed_out) == (
        7,
        "out\n",
        "err\n",
        False,
    )


def test_stdin_is_passed() -> None:
    assert (
        transport().run("cat", Deadline.after(10), stdin=b"secret-free input").stdout
        == "secret-free input"
    )


def test_deadline_kills_the_whole_process_group() -> None:
    started = time.monotonic()
    result = transport().run("sleep 300 & echo $!; trap '' TERM; sleep 300", Deadline.after(1.0))
    elapsed = time.monotonic() - started
    assert result.timed_out and result.exit_code is None
    assert elapsed < 5, f"took {elapsed:.1f}s"
    child = int(result.stdout.split()[0])
    for _ in range(50):
        if _gone(child):
            break
        time.sleep(0.1)
    assert _gone(child), f"background child {child} survived the deadline"


def test_command_that_closes_its_pipes_still_hits_the_deadline() -> None:
    result = transport().run("exec >&- 2>&-; sleep 300", Deadline.after(1.0))
    assert result.timed_out


def test_background_child_holding_the_pipe_does_not_make_a_timeout() -> None:
    result = transport().run("sleep 300 & echo done", Deadline.after(10))
    assert (result.exit_code, result.timed_out, result.stdout) == (0, False, "done\n")


def test_huge_output_is_bounded_and_invalid_utf8_is_replaced() -> None:
    result = transport().run(
        "head -c 20000000 /dev/zero; printf '\\377\\376 tail'", Deadline.after(30)
    )
    assert result.truncated and len(result.stdout) < 5_000_000
    assert result.stdout.endswith("\ufffd\ufffd tail")


def test_bounded_output_keeps_head_and_tail() -> None:
    buf = BoundedOutput(limit=10)
    for chunk in (b"HEAD", b"x" * 100, b"TAIL"):
        buf.feed(chunk)
    assert buf.text().startswith("HEADx") and buf.text().endswith("xTAIL") and buf.dropped == 98


def test_nonexistent_command_is_exit_127_not_an_exception() -> None:
    assert transport().run("definitely-not-a-command-kremove", Deadline.after(10)).exit_code == 127
    assert os.path.exists("/bin/sh")
