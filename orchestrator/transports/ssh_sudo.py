"""Running one command on an SSH channel, through sudo, su or doas when the step asks for it.

With become, the command is wrapped (``become_command``) to print a marker made for this
command first: until the marker arrives, what comes back is the become tool's (its password
prompt, which is answered once, or its refusal); after it, the command's own output. Stdin is
sent only once the command has started, so the password and the command's input never mix.

su, and doas with a password, read the password from a terminal only (as Ansible, kremove asks
for a pseudo-terminal on the channel and answers the prompt it sees there, never putting the
password on a command line); the command's stdout and stderr then come back on the one terminal
stream and are taken apart at a second marker (``on_terminal``).
"""

from __future__ import annotations

import re
import secrets as _random
import selectors
from dataclasses import dataclass

import paramiko

from orchestrator.errors import AuthError
from orchestrator.inventory.model import Host
from orchestrator.transports.base import (
    BoundedOutput,
    CommandResult,
    become_command,
    split_terminal,
)

READ_CHUNK = 65536
# A password prompt at the end of what a terminal showed: su's "Password: " (LC_ALL=C), doas's
# "doas (kops@host) password: ", and the localized forms Ansible's su plugin knows end the same.
TERMINAL_PROMPT = re.compile(rb"(?i)password ?(?::|\xef\xbc\x9a) ?\Z")


@dataclass(frozen=True)
class Wrapped:
    """A command as sent: with become, the marker its output starts with and sudo's prompt."""

    command: str
    marker: str | None = None
    prompt: str | None = None
    terminal: bool = False  # su / doas with a password: a pseudo-terminal, prompt seen on stdout


def wrap(command: str, host: Host, *, become: bool, with_password: bool) -> Wrapped:
    """The command to send for ``host``: through its become method (sudo, su, doas) when asked
    and the inventory enables it."""
    if not (become and host.become.enabled):
        return Wrapped(command)
    token = _random.token_hex(8)
    marker = f"kremove-become-{token}"
    method = host.become.method
    prompt = f"[kremove-sudo-{token}]" if with_password else None
    wrapped = become_command(command, host.become.user, method=method, prompt=prompt, marker=marker)
    terminal = method == "su" or (method == "doas" and with_password)
    return Wrapped(wrapped, marker, None if terminal else prompt, terminal)


class Session:
    """Drains one channel's stdout and stderr together, answering sudo's prompt on the way."""

    def __init__(
        self,
        chan: paramiko.Channel,
        stdin: bytes | None,
        wrapped: Wrapped,
        password: str | None,
    ) -> None:
        self.chan = chan
        self.stdin = stdin or b""
        self.wrapped = wrapped
        self.marker = wrapped.marker.encode() + b"\n" if wrapped.marker else None
        self.prompt = wrapped.prompt.encode() if wrapped.prompt else None
        self.terminal = wrapped.terminal
        self.wants_password = False  # a terminal asked for a password kremove does not have
        self.password = password
        self.out = BoundedOutput()
        self.err = BoundedOutput()
        self.became = wrapped.marker is None
        self.wrong_password = False
        self.done = False
        self.exit_code: int | None = None
        self._pre_out = bytearray()  # stdout before the become marker
        self._pre_err = bytearray()  # stderr before it: where sudo's prompt appears
        self._prompts_answered = 0

    @property
    def truncated(self) -> bool:
        return bool(self.out.dropped or self.err.dropped)

    def start(self, command: str) -> None:
        """Start ``command`` on the channel, on a pseudo-terminal where the become tool reads
        the password from one (the caller holds the deadline's watchdog over this)."""
        if self.terminal:
            self.chan.get_pty(term="dumb", width=0, height=0)
        self.chan.exec_command(command)

    def texts(self) -> tuple[str, str]:
        """The command's stdout and stderr."""
        if self.terminal and self.became and self.wrapped.marker:
            return split_terminal(self.out.text(), self.wrapped.marker)
        return self.out.text(), self.err.text()

    def drain(self) -> None:
        chan = self.chan
        if self.became:
            self._send_stdin()
        selector = selectors.DefaultSelector()
        selector.register(chan.fileno(), selectors.EVENT_READ)
        try:
            while True:
                self._read_ready()
                if self.wrong_password or self.wants_password:
                    return
                if chan.closed or (chan.eof_received and chan.exit_status_ready()):
                    self._read_ready()
                    break
                selector.select(timeout=1.0)
        finally:
            selector.close()
        # paramiko reports -1 when no exit status came (closed, or killed by a signal).
        if chan.exit_status_ready() and chan.recv_exit_status() != -1:
            self.done = True
            self.exit_code = chan.recv_exit_status()
        if not self.became:
            # The command never started: what the become tool said (without the prompt) is the
            # error output (on a terminal: all of it came on stdout).
            self.err.feed(self._without_prompt(self._pre_err))
            if self.terminal:
                self.err.feed(bytes(self._pre_out))
            else:
                self.out.feed(bytes(self._pre_out))

    def _read_ready(self) -> None:
        chan = self.chan
        while chan.recv_stderr_ready():
            data = chan.recv_stderr(READ_CHUNK)
            if self.became:
                self.err.feed(data)
            else:
                self._pre_err += data
                self._answer_prompt()
        while chan.recv_ready():
            data = chan.recv(READ_CHUNK)
            if not data:
                break
            if self.became:
                self.out.feed(data)
            else:
                self._pre_out += data
                self._check_marker()
                if not self.became and self.terminal:
                    self._answer_terminal()

    def _answer_prompt(self) -> None:
        if self.prompt is None or self.password is None:
            return
        seen = self._pre_err.count(self.prompt)
        if seen > self._prompts_answered:
            if self._prompts_answered >= 1:
                self.wrong_password = True  # asked again: the password was refused
                return
            self._prompts_answered += 1
            self.chan.sendall((self.password + "\n").encode())

    def _answer_terminal(self) -> None:
        """su's or doas's password prompt on the terminal: answered once; asked again, the
        password was refused; asked without a password to give, the run says so."""
        if TERMINAL_PROMPT.search(bytes(self._pre_out)) is None:
            return
        if self.password is None:
            self.wants_password = True
        elif self._prompts_answered >= 1:
            self.wrong_password = True
        else:
            self._prompts_answered += 1
            self.chan.sendall((self.password + "\n").encode())
            self._pre_out.clear()  # a second prompt is a new one

    def _check_marker(self) -> None:
        assert self.marker is not None
        at = self._pre_out.find(self.marker)
        if at < 0:
            return
        self.became = True
        self.out.feed(bytes(self._pre_out[at + len(self.marker) :]))
        self.err.feed(self._without_prompt(self._pre_err))
        self._pre_out.clear()
        self._pre_err.clear()
        self._send_stdin()

    def _without_prompt(self, data: bytearray) -> bytes:
        return bytes(data).replace(self.prompt, b"") if self.prompt is not None else bytes(data)

    def _send_stdin(self) -> None:
        if self.terminal:  # the command's stdin is /dev/null; a terminal has no end of input
            return
        if self.stdin:
            self.chan.sendall(self.stdin)
        self.chan.shutdown_write()


def password_refused(host: Host) -> AuthError:
    """The error for the become tool asking again: it refused the become password."""
    return AuthError(
        f"host {host.name!r}: {host.become.method} refused the become password "
        f"(as {host.become.user}); check the inventory's become password reference"
    )


def sudo_failure(host: Host, session: Session) -> AuthError | None:
    """The error for a command that the become tool never started, None when it went through."""
    if session.became:
        return None
    method = host.become.method
    if session.wants_password:
        return AuthError(
            f"host {host.name!r}: {method} to {host.become.user} asks for a password and none "
            f"is given; pass -K or give the host a become password reference"
        )
    detail = _last_line(session.err.text())
    return AuthError(
        f"host {host.name!r}: {method} to {host.become.user} failed"
        + (f": {detail}" if detail else "")
        + _hint(detail, method)
    )


def _hint(detail: str, method: str = "sudo") -> str:
    """What fixes what the become tool said: a password for it, or a login it lets through."""
    words = detail.lower()
    if "password is required" in words or "authentication required" in words:
        return f"; pass -K or give the host a become password reference, or let {method} " + (
            "in without one (NOPASSWD)" if method == "sudo" else "in without one (nopass)"
        )
    if "authentication failure" in words or "authentication failed" in words:
        return "; check the inventory's become password reference" + (
            " (su takes the password of the user it becomes)" if method == "su" else ""
        )
    if any(w in words for w in ("sudoers", "not allowed", "may not run", "not permitted")):
        return f"; log in as root or as a user {method} lets become root (-u USER, ansible_user)"
    return ""


def result(session: Session, duration: float, *, timed_out: bool = False) -> CommandResult:
    """What the session collected, as a command's result."""
    stdout, stderr = session.texts()
    return CommandResult(
        None if timed_out else session.exit_code,
        stdout,
        stderr,
        duration,
        timed_out=timed_out,
        truncated=session.truncated,
    )


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""
