"""Windows batch scripts on a host, as both Windows transports run them (WinRM, and SSH to
Windows' OpenSSH): through a temporary ``.cmd`` file, deleted whatever happens.

The playbooks render cmd.exe batch scripts of many lines. A script never goes on a command line
(cmd.exe stops at 8191 characters, and a command line is what process auditing records): it is
sent as the stdin of ``findstr``, which copies it into ``%TEMP%\\kremove-<random>.cmd``, run
with ``cmd /d /q /c``, then deleted. The file is real, so scripts that read themselves (``%~f0``,
the data lines after ``exit /b`` that carry uninstall passwords) work. A script that could not be
deleted (the connection broke, the deadline closed the shell or channel) is swept, with every
other ``kremove-*`` file of ``%TEMP%`` and the msiexec logs beside them, by the first script
after it and when the connection closes.

A transport gives this module cmd.exe command lines (``CmdHost``): WinRM runs each as
``cmd.exe /d /q /c LINE`` in its shell; Windows' OpenSSH hands the exec request's text to the
login shell, ``cmd.exe /c``. Over SSH the exit status of a session is not to be trusted alone
(the OpenSSH test hosts, a Linux sshd, carry 8 bits of it; old Windows builds sent 0), so the
script's run there prints its exit code after it (``reported_run``, ``read_report``).
"""

from __future__ import annotations

import contextlib
import re
import secrets as _random
import time
from typing import Protocol

from orchestrator.errors import TransportError
from orchestrator.transports.base import CommandResult, Deadline

__all__ = [
    "CLEANUP_S",
    "CMD_LINE_LIMIT",
    "NEVER_MATCHES",
    "SWEEP",
    "CmdHost",
    "Scripts",
    "batch_bytes",
    "read_report",
    "reported_run",
]

# cmd.exe's longest command line; a batch line beyond it is truncated by cmd itself.
CMD_LINE_LIMIT = 8191
# What the script-writing findstr drops: a line nobody writes.
NEVER_MATCHES = "kremove-never-matches-this-line"
# kremove's own files in a host's %TEMP%: scripts (some hold the uninstall password) and the
# msiexec logs beside them. A host is worked by one run at a time, so any such file is a leftover.
# (Versions before issue 15 left msiexec's logs in %WINDIR%\Temp: swept too.)
SWEEP = (
    'del /f /q "%TEMP%\\kremove-*.cmd" "%TEMP%\\kremove-*.log" "%WINDIR%\\Temp\\kremove-*.log" '
    ">nul 2>&1"
)
# Bounded budget for deleting a script once its step ended, and for the sweep at close.
CLEANUP_S = 10.0
# What a reported run prints around the script's own output (with a token of its own).
_STARTED = "kremove-run-"
_EXITED = "kremove-exit-"


class CmdHost(Protocol):
    """What a transport gives the scripts: cmd.exe command lines run on one host."""

    @property
    def cmd_open(self) -> bool:
        """False once a deadline or a broken connection may have left a command running."""

    def cmd_ready(self, deadline: Deadline) -> None:
        """Have a shell to run in (WinRM opens one after a deadline closed the last)."""

    def cmd_line(self, line: str, deadline: Deadline, stdin: bytes | None = None) -> CommandResult:
        """Run ``line`` as ``cmd /c`` does, with ``stdin`` as its input."""

    def cmd_script(self, path: str, deadline: Deadline) -> CommandResult:
        """Run the batch file at ``path`` (``%TEMP%\\kremove-….cmd``) with ``cmd /d /q /c``."""


class Scripts:
    """One host's scripts: each written, run and deleted; what was left behind, swept."""

    def __init__(self, host_name: str) -> None:
        self.host_name = host_name
        # The next script written sweeps kremove's files from %TEMP% first (a new shell or
        # connection: files a broken connection or an earlier run may have left there).
        self._sweep = True
        # A script of ours may still be on the host: the next script and the close sweep.
        self.left_behind = False

    def new_shell(self) -> None:
        """A new shell or connection: its first script sweeps."""
        self._sweep = True

    def run(self, host: CmdHost, script: bytes, deadline: Deadline) -> CommandResult:
        """Write ``script`` (``batch_bytes``) to a new temporary file, run it, delete it."""
        started = time.monotonic()
        host.cmd_ready(deadline)
        path = f"%TEMP%\\kremove-{_random.token_hex(8)}.cmd"
        try:
            result = self._write_and_run(host, path, script, deadline)
        finally:  # whatever happened: the script may hold the uninstall password
            self._discard(host, path, deadline)
        return CommandResult(
            None if result.timed_out else result.exit_code,
            result.stdout,
            result.stderr,
            time.monotonic() - started,
            timed_out=result.timed_out,
            truncated=result.truncated,
        )

    def close(self, host: CmdHost) -> None:
        """Sweep once more if a script may have stayed (e.g. the last step timed out)."""
        if not self.left_behind:
            return
        with contextlib.suppress(Exception):  # best effort: the host may be the problem
            cleanup = Deadline.after(CLEANUP_S)
            host.cmd_ready(cleanup)
            if not host.cmd_line(SWEEP, cleanup).timed_out:
                self.left_behind = False

    def _write_and_run(
        self, host: CmdHost, path: str, script: bytes, deadline: Deadline
    ) -> CommandResult:
        write = f'findstr /v /l /x /c:"{NEVER_MATCHES}" > "{path}"'
        sweep = self._sweep or self.left_behind
        if sweep:
            write = f"{SWEEP} & {write}"
        written = host.cmd_line(write, deadline, stdin=script)
        if written.timed_out:
            return written
        if sweep:
            self._sweep = self.left_behind = False
        if written.exit_code not in (0, 1):  # findstr: 1 = nothing printed (empty script)
            raise TransportError(
                f"host {self.host_name!r}: could not write the script to {path} "
                f"(exit {written.exit_code}): {_last_line(written.stderr or written.stdout)}"
            )
        return host.cmd_script(path, deadline)

    def _discard(self, host: CmdHost, path: str, deadline: Deadline) -> None:
        """Delete the script now if the host lets us, else leave it to the next sweep."""
        if not host.cmd_open or deadline.expired:  # the deadline closed the shell or channel
            self.left_behind = True
            return
        try:
            done = host.cmd_line(f'del /f /q "{path}"', deadline.sooner(CLEANUP_S))
        except TransportError:  # the connection broke: the step's own error is what matters
            self.left_behind = True
            return
        if done.timed_out:
            self.left_behind = True


def batch_bytes(script: str, host_name: str) -> bytes:
    """The script as a batch file: UTF-8, CRLF lines (cmd.exe mis-parses labels after LF only)."""
    lines = script.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, 1):
        if len(line.encode("utf-8")) > CMD_LINE_LIMIT:
            raise TransportError(
                f"host {host_name!r}: line {number} of the script is longer than cmd.exe's "
                f"{CMD_LINE_LIMIT}-character limit"
            )
        if line == NEVER_MATCHES:
            raise TransportError(f"host {host_name!r}: line {number} of the script is reserved")
    return "".join(f"{line}\r\n" for line in lines).encode("utf-8")


def reported_run(path: str, token: str) -> str:
    """A ``cmd /c`` command line that runs the script as WinRM does (``cmd /d /q /c``) between
    two lines of its own on stdout: one before (whatever the login shell's AutoRun printed
    comes before it) and one after, with the script's exit code. ``%^ERRORLEVEL%`` survives
    the line's own expansion (no variable has that name); CALL expands it once the script ran.
    """
    return (
        f'echo {_STARTED}{token}& cmd /d /q /c ""{path}""& call echo {_EXITED}{token} %^ERRORLEVEL%'
    )


def read_report(result: CommandResult, token: str) -> CommandResult | None:
    """The script's own output and exit code from a ``reported_run``; None when its report is
    missing (the line did not run as cmd.exe runs it). A timed-out result is returned as it is."""
    if result.timed_out:
        return result
    out = result.stdout
    begin = out.find(_STARTED + token)
    found = list(re.finditer(re.escape(_EXITED + token) + r" (-?\d+)\r?\n?", out))
    if begin < 0 or not found:
        return None
    end = found[-1]
    body = out[begin + len(_STARTED) + len(token) : end.start()]
    body = body[2:] if body.startswith("\r\n") else body.removeprefix("\n")
    return CommandResult(
        int(end.group(1)),
        body,
        result.stderr,
        result.duration,
        truncated=result.truncated,
    )


def new_token() -> str:
    return _random.token_hex(8)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "no output"
