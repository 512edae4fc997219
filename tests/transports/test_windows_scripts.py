"""The Windows script logic both transports share (windows_scripts) and the SSH transport's
Windows path (ssh_windows), without a host: reading a script's report, the write/run/delete/
sweep sequence against a recording CmdHost, and what the SSH transport refuses up front.
The same against real sshd processes: tests/integration/test_windows_openssh.py."""

from __future__ import annotations

import pytest

from orchestrator.errors import InputError, TransportError
from orchestrator.inventory.model import Host
from orchestrator.transports import kinds
from orchestrator.transports.base import CommandResult, Deadline
from orchestrator.transports.ssh_windows import check, is_windows, refuse_cmd_answer
from orchestrator.transports.windows_scripts import (
    SWEEP,
    Scripts,
    batch_bytes,
    read_report,
    reported_run,
)

TOKEN = "0123456789abcdef"


def out(stdout: str, code: int | None = 0, *, timed_out: bool = False) -> CommandResult:
    return CommandResult(code, stdout, "", 0.1, timed_out=timed_out)


def test_the_run_line_runs_the_script_as_winrm_does_and_reports_its_code() -> None:
    line = reported_run("%TEMP%\\kremove-1.cmd", TOKEN)
    assert f'cmd /d /q /c ""%TEMP%\\kremove-1.cmd""& call echo kremove-exit-{TOKEN} ' in line
    assert line.startswith(f"echo kremove-run-{TOKEN}& ")
    assert line.endswith(" %^ERRORLEVEL%")  # expanded by CALL once the script ran


@pytest.mark.parametrize(
    ("stdout", "body", "code"),
    [
        (
            f"kremove-run-{TOKEN}\r\nline 1\r\nline 2\r\nkremove-exit-{TOKEN} 1603\r\n",
            "line 1\r\nline 2\r\n",
            1603,
        ),
        # What the login shell's AutoRun printed comes before the script's output, not in it.
        (f"Welcome\r\nkremove-run-{TOKEN}\r\nx\r\nkremove-exit-{TOKEN} 0\r\n", "x\r\n", 0),
        # Output without a final newline; a terminated process's code is negative, as cmd shows it.
        (
            f"kremove-run-{TOKEN}\r\npartialkremove-exit-{TOKEN} -1073741510\r\n",
            "partial",
            -1073741510,
        ),
        # The host cannot end the report early: only this run's token counts, and the last one.
        (
            f"kremove-run-{TOKEN}\r\nkremove-exit-ffff 1\r\nkremove-exit-{TOKEN} 7\r\n"
            f"kremove-exit-{TOKEN} 3010\r\n",
            f"kremove-exit-ffff 1\r\nkremove-exit-{TOKEN} 7\r\n",
            3010,
        ),
    ],
)
def test_a_report_gives_the_scripts_own_output_and_code(stdout: str, body: str, code: int) -> None:
    report = read_report(out(stdout, code=67), TOKEN)
    assert report is not None and (report.stdout, report.exit_code) == (body, code)


def test_a_missing_report_is_none_and_a_timeout_stays_a_timeout() -> None:
    assert read_report(out("The ampersand (&) character is not allowed.", 1), TOKEN) is None
    assert read_report(out(f"kremove-run-{TOKEN}\r\nhalf", None), TOKEN) is None
    cut = out("half", None, timed_out=True)
    assert read_report(cut, TOKEN) is cut


class Recorder:
    """A CmdHost that records the lines it is given and answers each with a canned result."""

    def __init__(self, *, run_times_out: bool = False) -> None:
        self.lines: list[str] = []
        self.run_times_out = run_times_out
        self.cmd_open = True

    def cmd_ready(self, deadline: Deadline) -> None:
        pass

    def cmd_line(self, line: str, deadline: Deadline, stdin: bytes | None = None) -> CommandResult:
        self.lines.append(line)
        return out("", 0)

    def cmd_script(self, path: str, deadline: Deadline) -> CommandResult:
        self.lines.append(f"run {path}")
        if self.run_times_out:
            self.cmd_open = False  # as when the deadline closed the shell or channel
            return out("", None, timed_out=True)
        return out("done\r\n", 0)


def test_a_script_left_behind_is_swept_by_the_next_script_and_at_close() -> None:
    host, scripts = Recorder(), Scripts("w1")
    script = batch_bytes("@echo off\necho done\n", "w1")
    assert scripts.run(host, script, Deadline.after(5)).stdout == "done\r\n"
    assert host.lines[0].startswith(SWEEP + " & findstr ")  # a new connection's first script
    assert host.lines[2].startswith('del /f /q "%TEMP%\\kremove-')
    scripts.run(host, script, Deadline.after(5))
    assert not host.lines[3].startswith(SWEEP)
    host.run_times_out = True
    assert scripts.run(host, script, Deadline.after(0.2)).timed_out
    host.lines.clear()
    scripts.close(host)  # the run was cut: nothing deleted it, so closing sweeps
    assert host.lines == [SWEEP]
    host.run_times_out, host.cmd_open = False, True
    scripts.left_behind = True  # as when closing could not reach the host either
    scripts.run(host, script, Deadline.after(5))
    assert host.lines[1].startswith(SWEEP + " & findstr ")


def windows_host(**settings: object) -> Host:
    base: dict[str, object] = {"name": "w1", "address": "127.0.0.1", "source": "site.ini:3"}
    return Host(**{**base, **settings})  # type: ignore[arg-type]


def test_the_shell_type_makes_an_ssh_host_windows() -> None:
    assert kinds.implied_platform("ssh", "cmd") == "windows"
    assert kinds.implied_platform("ssh", "powershell") == "windows"
    assert kinds.implied_platform("ssh", "sh") is None
    assert kinds.implied_platform("winrm", None) == "windows"
    assert is_windows(windows_host(shell_type="cmd"))
    assert is_windows(windows_host(platform="windows"))
    assert not is_windows(windows_host(shell_type="sh"))
    check(windows_host(shell_type="cmd"))
    check(windows_host(platform="windows"))


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"shell_type": "powershell"}, "ansible_shell_type=cmd"),
        ({"platform": "windows", "shell_type": "sh"}, "contradict"),
        ({"platform": "linux", "shell_type": "cmd"}, "platform: windows"),
    ],
)
def test_what_the_ssh_transport_cannot_do_is_one_line_before_connecting(
    settings: dict[str, object], says: str
) -> None:
    with pytest.raises(InputError) as caught:
        check(windows_host(**settings))
    message = str(caught.value)
    assert says in message and "host 'w1' (site.ini:3)" in message and "\n" not in message


def test_a_host_taken_for_linux_that_answers_as_cmd_is_stopped() -> None:
    host = windows_host()
    refuse_cmd_answer(host, out("0\n", 0))
    refuse_cmd_answer(host, CommandResult(127, "", "sh: 1: id: not found\n", 0.1))
    not_found = "'id' is not recognized as an internal or external command,\r\noperable program"
    with pytest.raises(TransportError, match="platform: windows"):
        refuse_cmd_answer(host, CommandResult(49, "", not_found, 0.1))
    with pytest.raises(TransportError, match="exit code 9009"):
        refuse_cmd_answer(host, CommandResult(9009, "", "", 0.1))
