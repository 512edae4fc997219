"""WinRM over pywinrm: one cmd shell per host, scripts through temporary .cmd files, our deadlines.

The playbooks render cmd.exe batch scripts of many lines. A script never goes on a command line
(cmd.exe stops at 8191 characters): it is sent as the stdin of ``findstr``, which copies it into a
temporary ``.cmd`` file, run with ``cmd /d /q /c``, then deleted whatever happened. The file is
real, so scripts that read themselves (``%~f0``) work. A script can hold an uninstall password:
one that could not be deleted (the connection broke, the deadline closed the shell) is swept,
with every other ``kremove-*`` file of ``%TEMP%``, by the first script of the next shell and when
the connection closes. ``become`` means nothing here: the login user must be an administrator.

Here: scripts, their deletion and the sweep. The settings and authentication are
``winrm_settings``; the shell and its bounded WS-Man requests ``winrm_shell``, with failures
typed in ``winrm_errors``; beneath pywinrm, ``winrm_guard`` bounds what a host can do to kremove
(the watchdog's sockets, capped answers never inflated, DTDs refused).
"""

from __future__ import annotations

import contextlib
import logging
import secrets as _random
import threading
import time
from collections.abc import Iterable

from orchestrator.errors import TransportError
from orchestrator.inventory.model import Host
from orchestrator.secrets import SecretStore
from orchestrator.transports.base import CommandResult, Deadline, Transport
from orchestrator.transports.connector import PoolSetup
from orchestrator.transports.winrm_settings import describe, insecure, make_protocol, settings
from orchestrator.transports.winrm_shell import CLEANUP_S, WinrmShell

__all__ = ["WinrmPool", "WinrmTransport", "describe", "insecure", "open_pool", "settings"]

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

# pywinrm and requests_ntlm warn through logging/warnings only; kremove reports errors itself.
logging.getLogger("winrm").addHandler(logging.NullHandler())


class WinrmPool:
    """What the WinRM connections of one run share: the secret store."""

    def __init__(self, *, secrets: SecretStore) -> None:
        self.secrets = secrets

    def check(self, host: Host) -> None:
        """Raise InputError for settings that must not or cannot be used, before any connection."""
        settings(host)

    def ready(self, hosts: Iterable[Host]) -> None:
        pass

    def transport(self, host: Host) -> WinrmTransport:
        return WinrmTransport(host, self)

    def close(self) -> None:
        pass


def open_pool(setup: PoolSetup) -> WinrmPool:
    return WinrmPool(secrets=setup.secrets)


class WinrmTransport(Transport):
    name = "winrm"

    def __init__(self, host: Host, run: WinrmPool) -> None:
        super().__init__(host)
        self._run = run
        self._settings = settings(host)
        self._shell = WinrmShell(host, self._settings)
        self._lock = threading.Lock()
        # The next script written sweeps kremove's files from %TEMP% first (a new shell: files a
        # broken connection or an earlier run may have left there).
        self._sweep = True
        # A script of ours may still be on the host: closing the connection sweeps once more.
        self._left_behind = False

    @property
    def insecure(self) -> bool:
        return insecure(self.host)

    def describe(self) -> str:
        return describe(self.host)

    def connect(self, deadline: Deadline) -> None:
        password = None
        if self.host.password is not None:
            what = f"host {self.host.name!r} password"
            password = self._run.secrets.get(self.host.password, what).reveal()
        protocol = make_protocol(self._settings, self.host, password)
        self._shell.connect(protocol, deadline)
        self._sweep = True

    def close(self) -> None:
        if not self._shell.connected:
            return
        if self._left_behind:  # e.g. the last step timed out: no next script will sweep
            with contextlib.suppress(Exception):  # best effort: the host may be the problem
                cleanup = Deadline.after(CLEANUP_S)
                self._ensure_shell(cleanup)
                if not self._shell.execute(["/d", "/q", "/c", SWEEP], cleanup).timed_out:
                    self._left_behind = False
        self._shell.close()

    def run(
        self, command: str, deadline: Deadline, stdin: bytes | None = None, *, become: bool = False
    ) -> CommandResult:
        """Run ``command`` as a cmd.exe batch script; ``stdin`` is not supported (nor needed)."""
        if stdin:
            raise TransportError(
                f"host {self.host.name!r}: the WinRM transport does not feed stdin to scripts"
            )
        script = _batch_bytes(command, self.host.name)
        started = time.monotonic()
        if deadline.expired:  # nothing is started that could not be waited for
            return CommandResult(None, "", "", 0.0, timed_out=True)
        with self._lock:
            self._ensure_shell(deadline)
            path = f"%TEMP%\\kremove-{_random.token_hex(8)}.cmd"
            try:
                result = self._write_and_run(path, script, deadline)
            finally:  # whatever happened: the script may hold the uninstall password
                self._discard(path, deadline)
        return CommandResult(
            None if result.timed_out else result.exit_code,
            result.stdout,
            result.stderr,
            time.monotonic() - started,
            timed_out=result.timed_out,
            truncated=result.truncated,
        )

    def _ensure_shell(self, deadline: Deadline) -> None:
        if self._shell.ensure(deadline):  # a new shell: sweep what the last one may have left
            self._sweep = True

    def _write_and_run(self, path: str, script: bytes, deadline: Deadline) -> CommandResult:
        write = f'findstr /v /l /x /c:"{NEVER_MATCHES}" > "{path}"'
        if self._sweep:
            write = f"{SWEEP} & {write}"
        written = self._shell.execute(["/d", "/q", "/c", write], deadline, stdin=script)
        if written.timed_out:
            return written
        if self._sweep:
            self._sweep = self._left_behind = False
        if written.exit_code not in (0, 1):  # findstr: 1 = nothing printed (empty script)
            raise TransportError(
                f"host {self.host.name!r}: could not write the script to {path} "
                f"(exit {written.exit_code}): {_last_line(written.stderr or written.stdout)}"
            )
        return self._shell.execute(["/d", "/q", "/c", f'""{path}""'], deadline)

    def _discard(self, path: str, deadline: Deadline) -> None:
        """Delete the script now if the host lets us, else leave it to the next sweep."""
        if not self._shell.is_open or deadline.expired:  # the deadline closed the shell
            self._left_behind = True
            return
        try:
            done = self._shell.execute(
                ["/d", "/q", "/c", f'del /f /q "{path}"'], deadline.sooner(CLEANUP_S)
            )
        except TransportError:  # the connection broke: the step's own error is what matters
            self._left_behind = True
            return
        if done.timed_out:
            self._left_behind = True


def _batch_bytes(script: str, host_name: str) -> bytes:
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


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "no output"
