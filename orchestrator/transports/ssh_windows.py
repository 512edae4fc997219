"""Windows over its OpenSSH server (Windows Server 2019+, Windows 10/11): the SSH transport's
Windows path.

Windows' sshd hands an exec request's text to the login's default shell, ``cmd.exe /c``; so a
host is Windows here when its platform says so, or its shell type is Windows' (``cmd``, which
the inventory turns into ``platform: windows``). Steps then run as over WinRM, through the
scripts both share (``windows_scripts``): each written to ``%TEMP%\\kremove-<random>.cmd``
through findstr's stdin, run, deleted, swept when that failed. There is no become: the login
must be an administrator (the privilege probe says so before anything changes).

PowerShell as OpenSSH's DefaultShell (``ansible_shell_type=powershell``) is refused in one line:
kremove's scripts are batch files run by cmd.exe, and what PowerShell would make of the command
lines that write and run them cannot be tested here.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from orchestrator.errors import InputError, TransportError
from orchestrator.inventory.model import Host
from orchestrator.transports import kinds
from orchestrator.transports.base import CommandResult, Deadline
from orchestrator.transports.windows_scripts import (
    Scripts,
    batch_bytes,
    new_token,
    read_report,
    reported_run,
)

if TYPE_CHECKING:
    from orchestrator.transports.ssh import SshTransport

__all__ = ["WindowsCmd", "check", "is_windows", "refuse_cmd_answer"]

# What cmd.exe says of a program it cannot find (English Windows; exit code 9009).
NOT_RECOGNIZED = "is not recognized as an internal or external command"
_SHELL_HINT = "ansible_shell_type=cmd (kremove YAML: shell_type: cmd)"


def is_windows(host: Host) -> bool:
    return kinds.platform_of(host.transport, host.platform, host.shell_type) == "windows"


def check(host: Host) -> None:
    """Refuse, before anything connects, what the SSH transport cannot do with this host."""
    where = f"host {host.name!r} ({host.source})"
    windows = is_windows(host)
    if windows and host.shell_type == "powershell":
        raise InputError(
            f"{where}: kremove reaches Windows over OpenSSH through cmd.exe, OpenSSH's default "
            f"shell there, not PowerShell; set {_SHELL_HINT} and leave OpenSSH's DefaultShell "
            "unset, or reach the host over WinRM"
        )
    if windows and host.shell_type not in (None, "cmd"):
        raise InputError(
            f"{where}: platform windows and shell type {host.shell_type!r} contradict each "
            f"other; Windows over OpenSSH runs cmd.exe: set {_SHELL_HINT}"
        )
    if not windows and host.shell_type in ("cmd", "powershell"):
        raise InputError(
            f"{where}: shell type {host.shell_type!r} is Windows' but the platform is "
            f"{host.platform!r}; set platform: windows, or drop the shell type"
        )


def refuse_cmd_answer(host: Host, result: CommandResult) -> None:
    """A host taken for Linux or macOS that answers as Windows' cmd.exe does is stopped here,
    at its first (read-only) command, rather than sent commands of the wrong platform."""
    code = result.exit_code
    if (code is not None and code > 255) or NOT_RECOGNIZED in result.stderr:
        why = f"exit code {code}" if code is not None and code > 255 else "'… is not recognized'"
        raise TransportError(
            f"host {host.name!r} answers as Windows' cmd.exe does ({why}); set its platform: "
            f"windows ({_SHELL_HINT}) to reach it over OpenSSH"
        )


class WindowsCmd:
    """cmd.exe command lines on one host over its OpenSSH (``windows_scripts.CmdHost``), and the
    host's scripts."""

    def __init__(self, transport: SshTransport) -> None:
        self._transport = transport
        self._name = transport.host.name
        self._scripts = Scripts(self._name)

    def connected(self) -> None:
        self._scripts.new_shell()

    def run(self, command: str, deadline: Deadline, stdin: bytes | None) -> CommandResult:
        """Run ``command`` as a cmd.exe batch script; ``stdin`` is not supported (nor needed)."""
        if stdin:
            raise TransportError(f"host {self._name!r}: Windows scripts take no stdin")
        script = batch_bytes(command, self._name)
        if deadline.expired:  # nothing is started that could not be waited for
            return CommandResult(None, "", "", 0.0, timed_out=True)
        return self._scripts.run(self, script, deadline)

    def close(self) -> None:
        self._scripts.close(self)

    @property
    def cmd_open(self) -> bool:
        return self._transport.connected

    def cmd_ready(self, deadline: Deadline) -> None:
        pass  # a connection is all there is: every command gets a channel of its own

    def cmd_line(self, line: str, deadline: Deadline, stdin: bytes | None = None) -> CommandResult:
        result = self._transport.exec(line, deadline, stdin)
        code = result.exit_code
        if code is not None and code >= 1 << 31:  # SSH carries Windows' codes unsigned
            return dataclasses.replace(result, exit_code=code - (1 << 32))
        return result

    def cmd_script(self, path: str, deadline: Deadline) -> CommandResult:
        token = new_token()
        report = read_report(self._transport.exec(reported_run(path, token), deadline), token)
        if report is None:
            raise TransportError(
                f"host {self._name!r}: the script ran without reporting its exit code, so the "
                "host's shell is not cmd.exe; kremove needs OpenSSH's default shell there "
                f"({_SHELL_HINT}, DefaultShell unset)"
            )
        return report
