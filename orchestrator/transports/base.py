"""The transport seam: connect, run a command under a deadline, close. One file per transport."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar

from orchestrator.inventory.model import Host

# Output kept per stream in memory. Beyond it the middle is dropped: the head carries what a
# parser needs, the tail carries the error a human needs.
MAX_OUTPUT_BYTES = 4 * 1024 * 1024


class Deadline:
    """A point on the monotonic clock. Every wait in kremove is bounded by one of these."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def sooner(self, seconds: float) -> Deadline:
        """This deadline or ``seconds`` from now, whichever comes first."""
        return Deadline(min(self.at, time.monotonic() + seconds))


@dataclass(frozen=True)
class CommandResult:
    """What came back from one command. ``exit_code`` is None when the command was killed."""

    exit_code: int | None
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    truncated: bool = False


class BoundedOutput:
    """Collects a byte stream, keeping at most ``limit`` bytes: the head and the tail."""

    def __init__(self, limit: int = MAX_OUTPUT_BYTES) -> None:
        self._head = bytearray()
        self._tail = bytearray()
        self._half = limit // 2
        self.dropped = 0

    def feed(self, data: bytes) -> None:
        room = self._half - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if not data:
            return
        self._tail += data
        excess = len(self._tail) - self._half
        if excess > 0:
            del self._tail[:excess]
            self.dropped += excess

    def text(self) -> str:
        """Decoded as UTF-8; bad bytes become U+FFFD rather than an error."""
        head = self._head.decode("utf-8", errors="replace")
        tail = self._tail.decode("utf-8", errors="replace")
        if self.dropped:
            return f"{head}\n[... {self.dropped} bytes of output omitted ...]\n{tail}"
        return head + tail


def become_command(
    command: str, user: str, *, prompt: str | None = None, marker: str | None = None
) -> str:
    """Wrap ``command`` for sudo.

    Without ``prompt``, ``sudo -n`` never asks for a password and fails at once if it needs one.
    With it, ``sudo -S`` shows ``prompt`` on stderr and reads the password from stdin. ``marker``,
    printed on stdout before the command runs, tells the caller that sudo let it through (and
    that what follows on stdin is the command's).
    """
    import shlex

    flag = f"-S -p {shlex.quote(prompt)}" if prompt is not None else "-n"
    inner = f"echo {shlex.quote(marker)}; {command}" if marker else command
    return f"sudo {flag} -H -u {shlex.quote(user)} -- /bin/sh -c {shlex.quote(inner)}"


class Transport(ABC):
    """One connection to one host, reused for every step of that host."""

    name: ClassVar[str]

    def __init__(self, host: Host) -> None:
        self.host = host

    @abstractmethod
    def connect(self, deadline: Deadline) -> None:
        """Open the connection, or raise UnreachableError, AuthError, HostKeyError or a timeout."""

    @abstractmethod
    def run(
        self, command: str, deadline: Deadline, stdin: bytes | None = None, *, become: bool = False
    ) -> CommandResult:
        """Run one command. Past ``deadline`` the command is killed and ``timed_out`` is set."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection. Safe to call twice."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
