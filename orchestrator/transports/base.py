"""The transport seam: connect, run a command under a deadline, close. One file per transport."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar

from orchestrator.deadline import Deadline as Deadline  # re-exported: every transport's
from orchestrator.inventory.model import Host

# Output kept per stream in memory. Beyond it the middle is dropped: the head carries what a
# parser needs, the tail carries the error a human needs.
MAX_OUTPUT_BYTES = 4 * 1024 * 1024


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


# Where root's commands are, first on PATH after su or doas (Debian's sudo secure_path).
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def become_command(
    command: str,
    user: str,
    *,
    method: str = "sudo",
    prompt: str | None = None,
    marker: str | None = None,
) -> str:
    """Wrap ``command`` for the become ``method`` (sudo, su or doas).

    sudo: without ``prompt``, ``sudo -n`` never asks for a password and fails at once if it
    needs one; with it, ``sudo -S`` shows ``prompt`` on stderr and reads the password from stdin.
    doas: without ``prompt``, ``doas -n``. su, and doas with a password (``prompt`` given, its
    value unused), read the password from a terminal only: the command is for a pseudo-terminal
    (``on_terminal``). ``marker``, printed on stdout before the command runs, tells the caller
    that the password was taken (and that what follows is the command's).
    """
    import shlex

    inner = f"echo {shlex.quote(marker)}; {command}" if marker else command
    as_user = shlex.quote(user)
    if method == "doas" and prompt is None:
        return f"doas -n -u {as_user} -- /bin/sh -c {shlex.quote(inner)}"
    if method in ("su", "doas"):
        return on_terminal(command, user, method, marker or "kremove-become")
    flag = f"-S -p {shlex.quote(prompt)}" if prompt is not None else "-n"
    return f"sudo {flag} -H -u {as_user} -- /bin/sh -c {shlex.quote(inner)}"


def on_terminal(command: str, user: str, method: str, marker: str) -> str:
    """``command`` through su or doas on a pseudo-terminal, where they ask for the password.

    Once become, the root shell turns off the terminal's echo and CR/LF translation, puts the
    system directories first on PATH (as sudo's secure_path; su keeps the login's PATH), prints
    ``marker`` and runs ``command`` as sudo would: stdin from /dev/null, stdout and stderr to
    private temporary files (no terminal, so no colours or prompts), printed afterwards with
    ``\n<marker>-stderr`` between them (``split_terminal`` takes them apart). LC_ALL=C: su's
    prompt and refusal in English.
    """
    import shlex

    err = shlex.quote(f"{marker}-stderr")
    inner = (
        "stty -echo -onlcr 2>/dev/null; o=$(mktemp) && e=$(mktemp) || exit 125; "
        "trap 'rm -f \"$o\" \"$e\"' EXIT; trap 'exit 129' HUP INT TERM; "
        f"PATH={ROOT_PATH}:$PATH; export PATH; echo {shlex.quote(marker)}; "
        f'/bin/sh -c {shlex.quote(command)} >"$o" 2>"$e" </dev/null; r=$?; '
        f'cat "$o"; printf \'\\n%s\\n\' {err}; cat "$e"; exit $r'
    )
    as_user = shlex.quote(user)
    if method == "su":
        return f"LC_ALL=C su {as_user} -c {shlex.quote(inner)}"
    return f"LC_ALL=C doas -u {as_user} -- /bin/sh -c {shlex.quote(inner)}"


def split_terminal(text: str, marker: str) -> tuple[str, str]:
    """What ``on_terminal``'s command printed after ``marker``: (stdout, stderr)."""
    at = text.rfind(f"\n{marker}-stderr\n")
    if at < 0:
        return text, ""
    return text[:at], text[at + len(marker) + len("-stderr") + 2 :]


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
