"""Running one command on an SSH channel, through sudo when the step asks for it.

With become, the command is wrapped (``become_command``) to print a marker made for this
command first: until the marker arrives, what comes back is sudo's (its password prompt, which
is answered once, or its refusal); after it, the command's own output. Stdin is sent only once
the command has started, so the sudo password and the command's input never mix.
"""

from __future__ import annotations

import secrets as _random
import selectors
from dataclasses import dataclass

import paramiko

from orchestrator.errors import AuthError
from orchestrator.inventory.model import Host
from orchestrator.transports.base import BoundedOutput, CommandResult, become_command

READ_CHUNK = 65536


@dataclass(frozen=True)
class Wrapped:
    """A command as sent: with become, the marker its output starts with and sudo's prompt."""

    command: str
    marker: str | None = None
    prompt: str | None = None


def wrap(command: str, host: Host, *, become: bool, with_password: bool) -> Wrapped:
    """The command to send for ``host``: through sudo when asked and the inventory enables it."""
    if not (become and host.become.enabled):
        return Wrapped(command)
    token = _random.token_hex(8)
    marker = f"kremove-become-{token}"
    prompt = f"[kremove-sudo-{token}]" if with_password else None
    wrapped = become_command(command, host.become.user, prompt=prompt, marker=marker)
    return Wrapped(wrapped, marker, prompt)


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
        self.marker = wrapped.marker.encode() + b"\n" if wrapped.marker else None
        self.prompt = wrapped.prompt.encode() if wrapped.prompt else None
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

    def drain(self) -> None:
        chan = self.chan
        if self.became:
            self._send_stdin()
        selector = selectors.DefaultSelector()
        selector.register(chan.fileno(), selectors.EVENT_READ)
        try:
            while True:
                self._read_ready()
                if self.wrong_password:
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
            # The command never started: what sudo said (without the prompt) is the error output.
            self.err.feed(self._without_prompt(self._pre_err))
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
        if self.stdin:
            self.chan.sendall(self.stdin)
        self.chan.shutdown_write()


def password_refused(host: Host) -> AuthError:
    """The error for sudo asking again: it refused the become password."""
    return AuthError(
        f"host {host.name!r}: sudo refused the become password "
        f"(as {host.become.user}); check the inventory's become password reference"
    )


def sudo_failure(host: Host, session: Session) -> AuthError | None:
    """The error for a command that sudo never started, None when it went through."""
    if session.became:
        return None
    detail = _last_line(session.err.text())
    return AuthError(
        f"host {host.name!r}: sudo to {host.become.user} failed"
        + (f": {detail}" if detail else "")
        + _hint(detail)
    )


def _hint(detail: str) -> str:
    """What fixes what sudo said: a password for it, or a login it lets through."""
    if "password is required" in detail:
        return "; pass -K or give the host a become password reference, or NOPASSWD sudo"
    if "sudoers" in detail or "not allowed" in detail or "may not run" in detail:
        return "; log in as root or as a user sudo lets become root (-u USER, ansible_user)"
    return ""


def result(session: Session, duration: float, *, timed_out: bool = False) -> CommandResult:
    """What the session collected, as a command's result."""
    return CommandResult(
        None if timed_out else session.exit_code,
        session.out.text(),
        session.err.text(),
        duration,
        timed_out=timed_out,
        truncated=session.truncated,
    )


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""
