"""One host's WinRM shell and the WS-Man command protocol, every request bounded by a deadline.

Only pywinrm's low-level ``Protocol`` is used: open a shell, start a command, feed its stdin,
Receive, Signal, Delete. Its ``get_command_output`` is never called, because it retries WS-Man
operation timeouts forever; kremove loops on Receive itself and stops at its own deadline. Every
HTTP request is bounded: the WS-Man OperationTimeout and the HTTP read timeout are recomputed from
the deadline before each request (read timeout > operation timeout, as the server may hold a
Receive for the whole operation timeout), and the watchdog cuts a host that does not keep them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from winrm.exceptions import WinRMOperationTimeoutError
from winrm.protocol import Protocol

from orchestrator.errors import CommandTimeout, TransportError, UnreachableError
from orchestrator.inventory.model import Host
from orchestrator.transports.base import BoundedOutput, CommandResult, Deadline
from orchestrator.transports.watchdog import armed
from orchestrator.transports.winrm_errors import failure, is_timeout
from orchestrator.transports.winrm_guard import HttpGuard, install
from orchestrator.transports.winrm_settings import (
    OPERATION_TIMEOUT_S,
    READ_MARGIN_S,
    CheckedSettings,
)

# Script bytes per Send request: well inside WinRM's default MaxEnvelopeSize (150 KiB) once
# base64-encoded and wrapped in SOAP.
SEND_CHUNK = 48 * 1024
# Bounded budget for the cleanup requests after a deadline (Signal, Delete).
CLEANUP_S = 10.0

_T = TypeVar("_T")


class WinrmShell:
    """A cmd shell on one host: opened again after a deadline closed it, closed with the run."""

    def __init__(self, host: Host, settings: CheckedSettings) -> None:
        self.host = host
        self._settings = settings
        self._protocol: Protocol | None = None
        self._http: HttpGuard | None = None
        self._shell: str | None = None

    @property
    def connected(self) -> bool:
        return self._protocol is not None

    @property
    def is_open(self) -> bool:
        """False once a deadline closed the shell: a command may have been left running."""
        return self._shell is not None

    def connect(self, protocol: Protocol, deadline: Deadline) -> None:
        """Put the guard beneath ``protocol`` and open the first shell."""
        self._http = install(protocol)
        self._protocol = protocol
        self._shell = None
        self.ensure(deadline)

    def ensure(self, deadline: Deadline) -> bool:
        """Open a shell unless one is open; True when a new one was opened."""
        if self._protocol is None:
            raise UnreachableError(f"host {self.host.name!r}: not connected")
        if self._shell is not None:
            return False
        self._shell = self._call(
            deadline, "open a shell", lambda p: str(p.open_shell(codepage=65001, noprofile=True))
        )
        return True

    def close(self) -> None:
        """Delete the shell (within CLEANUP_S) and close the HTTP session. Safe to call twice."""
        protocol, self._protocol = self._protocol, None
        shell, self._shell = self._shell, None
        if protocol is None:
            return
        try:
            if shell is not None:
                self._cleanup(
                    protocol, Deadline.after(CLEANUP_S), [lambda: protocol.close_shell(shell)]
                )
        finally:
            protocol.transport.close_session()

    def execute(
        self, args: list[str], deadline: Deadline, stdin: bytes | None = None
    ) -> CommandResult:
        """Start ``cmd.exe ARGS`` in the shell, feed stdin, Receive until done or the deadline."""
        shell = self._shell
        assert shell is not None
        started = time.monotonic()

        def start(protocol: Protocol) -> str:
            return str(
                protocol.run_command(
                    shell, "cmd.exe", args, console_mode_stdin=stdin is None, skip_cmd_shell=True
                )
            )

        command_id = self._call(deadline, "start a command", start)
        out, err = BoundedOutput(), BoundedOutput()
        try:
            if stdin is not None:
                self._send(shell, command_id, stdin, deadline)
            return self._receive(shell, command_id, out, err, deadline, started)
        except _Expired:
            return self._terminate(command_id, out, err, started)

    def _send(self, shell: str, command_id: str, stdin: bytes, deadline: Deadline) -> None:
        chunks = [stdin[i : i + SEND_CHUNK] for i in range(0, len(stdin), SEND_CHUNK)] or [b""]
        for n, chunk in enumerate(chunks):
            last = n == len(chunks) - 1

            def send(protocol: Protocol, chunk: bytes = chunk, last: bool = last) -> None:
                protocol.send_command_input(shell, command_id, chunk, end=last)

            self._call(deadline, "send the script", send, timeout_ok=True)

    def _receive(
        self,
        shell: str,
        command_id: str,
        out: BoundedOutput,
        err: BoundedOutput,
        deadline: Deadline,
        started: float,
    ) -> CommandResult:
        def receive(protocol: Protocol) -> tuple[bytes, bytes, int, bool]:
            return protocol.get_command_output_raw(shell, command_id)

        while True:
            if deadline.expired:
                raise _Expired()
            try:
                got = self._call(deadline, "read output", receive, timeout_ok=True, poll=True)
            except _OperationTimeout:
                continue
            stdout, stderr, code, done = got
            out.feed(stdout)
            err.feed(stderr)
            if done:
                # Done without an exit code should not happen; pywinrm reports it as -1.
                return _result(code, out, err, started)

    def _terminate(
        self, command_id: str, out: BoundedOutput, err: BoundedOutput, started: float
    ) -> CommandResult:
        """The deadline passed: Signal terminate, close the shell, report a timeout."""
        protocol, shell = self._protocol, self._shell
        self._shell = None
        if protocol is not None and shell is not None:
            self._cleanup(
                protocol,
                Deadline.after(CLEANUP_S),
                [
                    lambda: protocol.cleanup_command(shell, command_id),
                    lambda: protocol.close_shell(shell, close_session=False),
                ],
            )
        return _result(None, out, err, started, timed_out=True)

    def _cleanup(
        self, protocol: Protocol, deadline: Deadline, steps: list[Callable[[], object]]
    ) -> None:
        """Best-effort requests after a deadline, each cut at ``deadline`` like any other."""
        for step in steps:
            try:
                self._bound(protocol, deadline)
                with armed(deadline.at, self._cut):
                    step()
            except Exception:  # the host may be the reason for the timeout
                pass

    def _cut(self) -> None:
        if self._http is not None:
            self._http.cut()

    # -- one bounded request -------------------------------------------------------------------

    def _bound(self, protocol: Protocol, deadline: Deadline, *, poll: bool = False) -> None:
        """Fit the next request into ``deadline``: WS-Man OperationTimeout and HTTP read timeout.

        A Receive (``poll``) is held by the host up to its OperationTimeout; any other request
        is answered at once, so its read timeout is simply what is left. These are what a host
        that behaves meets; the watchdog cuts one that does not at the deadline itself.
        """
        remaining = deadline.remaining()
        operation = max(1, min(OPERATION_TIMEOUT_S, int(remaining) - 1))
        protocol.operation_timeout_sec = operation
        if poll:
            read = operation + READ_MARGIN_S
        else:
            read = max(operation + 1, min(OPERATION_TIMEOUT_S, int(remaining) + 1))
        protocol.transport.read_timeout_sec = read

    def _call(
        self,
        deadline: Deadline,
        doing: str,
        request: Callable[[Protocol], _T],
        *,
        timeout_ok: bool = False,
        poll: bool = False,
    ) -> _T:
        """One WS-Man request, cut at the deadline, with every failure mapped to a typed error.

        With ``timeout_ok`` a deadline reached during the request raises ``_Expired`` (the
        caller then terminates the command) instead of CommandTimeout.
        """
        protocol = self._protocol
        if protocol is None:
            raise UnreachableError(f"host {self.host.name!r}: not connected")
        where = f"host {self.host.name!r} ({self.host.address}:{self.host.port})"
        self._bound(protocol, deadline, poll=poll)
        dog = armed(deadline.at, self._cut)
        try:
            with dog:
                return request(protocol)
        except Exception as exc:
            if dog.fired or (deadline.expired and is_timeout(exc)):
                if timeout_ok:
                    raise _Expired() from None
                raise CommandTimeout(
                    f"{where}: no answer in time while trying to {doing}"
                ) from None
            if isinstance(exc, WinRMOperationTimeoutError):
                if poll:
                    raise _OperationTimeout() from None
                raise TransportError(
                    f"{where}: WS-Man operation timeout while trying to {doing}"
                ) from None
            raise failure(
                exc,
                where,
                doing,
                auth=self._settings.auth,
                user=self.host.user,
                read_timeout=protocol.transport.read_timeout_sec,
                trust=self._settings.ca_trust_path,
            ) from None


class _Expired(Exception):
    """The deadline passed during a request."""


class _OperationTimeout(Exception):
    """A Receive that the host ended with its operation-timeout fault: nothing new yet."""


def _result(
    code: int | None,
    out: BoundedOutput,
    err: BoundedOutput,
    started: float,
    *,
    timed_out: bool = False,
) -> CommandResult:
    return CommandResult(
        code,
        out.text(),
        err.text(),
        time.monotonic() - started,
        timed_out=timed_out,
        truncated=bool(out.dropped or err.dropped),
    )
