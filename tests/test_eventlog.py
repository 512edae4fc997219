"""The event log in-process (orchestrator/eventlog.py): the engine's events as JSON lines in a
file and as syslog datagrams on a UDP socket on 127.0.0.1 and on a Unix socket the test opens.

A whole run on the simulated fleet, checked against the ledger host for host, is in
tests/integration/test_eventlog.py.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import eventlog
from orchestrator.engine import runner
from orchestrator.engine.outcome import HostOutcome, RunResult, Stop
from orchestrator.errors import InputError
from orchestrator.eventlog import EventLog, LogTargets, open_targets, syslog_address
from orchestrator.findings import Finding
from orchestrator.secrets import Secret, SecretStore

SECRET = "hunter2-uninstall"
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
USER_INFO, USER_WARNING = 8 + 6, 8 + 4  # <PRI>: facility user (1) * 8 + severity


def a_run() -> list[runner.Event]:
    """A halted wave as the engine tells it: the step of w1 arrives before w1's start."""
    kesl = Finding(product="kesl", name="kesl", version="12.1", kind="installed")
    done = HostOutcome("w1", "removed", None, (kesl,), (), 1.23456)
    failed = HostOutcome("w2", "failed", f"step 'purge:kesl' exited 1: bad password {SECRET}")
    closed = HostOutcome("w3", "skipped", "not started: the failure budget (0) was spent by w2")
    result = RunResult(
        "20261125T220000-1a2b", "run", (done, failed, closed), counts={"removed": 1},
        status="halted", stop=Stop.HALTED, spent_by=("w2",), budget=0,
    )  # fmt: skip
    return [
        runner.RunStarted(result.run_id, "run", "ops@ctl", 3, 3, False, {"max_fail": "0"}),
        runner.BatchStarted(1, 2, 2, 0, 0),
        runner.StepSent("w1", "packages", "detect", True),
        runner.HostStarted("w1"),
        runner.HostStarted("w2"),
        runner.StepExited("w1", "packages", 0, False, 0.25),
        runner.StepExited("w2", "packages", None, error="connection lost"),
        runner.HostDone(done),
        runner.HostDone(failed),
        runner.RunStopped(Stop.HALTED, 0, ("w2",)),
        runner.HostClosed(closed),
        runner.RunFinished(result),
    ]


def scrub() -> Any:
    store = SecretStore()
    store.redactor.add(Secret(SECRET, "uninstall password"))
    return store.redactor.scrub


def logged(targets: LogTargets, after: Callable[[], object] = lambda: None) -> list[str]:
    """The run of ``a_run`` through an event log whose exit-code rule says 3 (halted); what
    ``close`` said went wrong. ``after`` is called after each event."""
    log = EventLog(targets, scrub(), lambda result: 3)
    for event in a_run():
        log(event)
        after()
    return log.close()


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_event_is_one_json_line_with_time_schema_run_and_name(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"earlier": "line"}\n')
    targets = open_targets(path, False, None)
    assert targets is not None
    assert logged(targets) == []
    lines = lines_of(path)
    assert lines[0] == {"earlier": "line"}  # appended, never truncated
    events = lines[1:]
    assert [e["event"] for e in events] == [
        "run_started", "batch_started", "host_started", "step_sent", "host_started",
        "step_exited", "step_exited", "host_done", "host_done", "halted", "host_done",
        "run_finished",
    ]  # fmt: skip
    for e in events:
        assert list(e)[:4] == ["time", "schema", "run", "event"] and TIME.match(e["time"])
        assert e["schema"] == "kremove.events/1" and e["run"] == "20261125T220000-1a2b"
    assert events[0]["settings"] == {"max_fail": "0"} and events[0]["operator"] == "ops@ctl"
    assert (events[0]["hosts"], events[0]["pending"], events[0]["resumed"]) == (3, 3, False)
    assert events[3] == {**events[3], "host": "w1", "step": "packages", "readonly": True}
    w1, w2, w3 = events[7], events[8], events[10]
    assert (w1["status"], w1["products"], w1["duration"], w1["worked"]) == (
        "removed", ["kesl 12.1"], 1.235, True,
    )  # fmt: skip
    assert (w3["status"], w3["worked"]) == ("skipped", False)
    assert events[9] == {**events[9], "budget": 0, "spent_by": ["w2"]}
    finished = events[-1]
    assert (finished["status"], finished["stop"], finished["exit_code"]) == ("halted", "halted", 3)
    assert finished["counts"] == {"removed": 1} and finished["hosts"] == 3
    text = path.read_text()
    assert SECRET not in text and "bad password ****" in w2["reason"]
    assert "command" not in text  # no command text, only step ids


def test_a_new_log_file_is_created_private(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        targets = open_targets(tmp_path / "new.jsonl", False, None)
    finally:
        os.umask(old)
    assert targets is not None and targets.file is not None
    targets.file.close()
    assert stat.S_IMODE((tmp_path / "new.jsonl").stat().st_mode) == 0o600


@pytest.mark.parametrize("where", ["missing/dir/events.jsonl", "."])
def test_a_log_file_that_cannot_be_appended_to_is_one_line(tmp_path: Path, where: str) -> None:
    with pytest.raises(InputError) as caught:
        open_targets(tmp_path / where, False, None)
    message = str(caught.value)
    assert message.startswith(f"--log-file {tmp_path / where}: cannot append to it (")
    assert "\n" not in message


def test_a_log_that_fails_mid_run_stops_quietly_and_says_so_at_the_end() -> None:
    targets = open_targets(Path("/dev/full"), False, None)  # opens, but every write fails
    assert targets is not None
    log = EventLog(targets, scrub(), lambda result: 0)
    for event in a_run():
        log(event)  # never raises: the run goes on, the ledger is the record
    assert log.close() == ["the event log /dev/full stopped: No space left on device"]


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        yield sock


def datagrams(sock: socket.socket, count: int) -> list[tuple[int, dict[str, Any]]]:
    """``count`` syslog messages: each "<PRI>kremove[PID]: {json}", one per datagram."""
    got = []
    for _ in range(count):
        data = sock.recv(65536).decode()
        m = re.fullmatch(r"<(\d+)>kremove\[(\d+)\]: (\{.*\})", data)
        assert m is not None, data
        assert int(m.group(2)) == os.getpid()
        got.append((int(m.group(1)), json.loads(m.group(3))))
    return got


def test_syslog_over_udp_gets_one_datagram_per_event(udp: socket.socket) -> None:
    port = udp.getsockname()[1]
    targets = open_targets(None, False, f"127.0.0.1:{port}")  # --syslog-address implies --syslog
    assert targets is not None and targets.file is None
    assert logged(targets) == []
    got = datagrams(udp, 12)
    assert [e["event"] for _, e in got][:3] == ["run_started", "batch_started", "host_started"]
    severity = {(e["event"], e.get("host")): pri for pri, e in got}
    assert severity[("run_started", None)] == USER_INFO
    assert severity[("host_done", "w1")] == USER_INFO
    assert severity[("host_done", "w2")] == USER_WARNING  # failed
    assert severity[("halted", None)] == USER_WARNING
    assert severity[("run_finished", None)] == USER_WARNING  # exit 3
    assert all(SECRET not in json.dumps(e) for _, e in got)


def test_syslog_over_a_unix_datagram_socket(tmp_path: Path) -> None:
    path = tmp_path / "log.sock"
    got: list[tuple[int, dict[str, Any]]] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(10)
        targets = open_targets(tmp_path / "events.jsonl", True, str(path))
        assert targets is not None
        # A syslog daemon reads as messages come (a Unix socket queues only a few).
        assert logged(targets, after=lambda: got.extend(datagrams(sock, 1))) == []
    in_file = lines_of(tmp_path / "events.jsonl")
    assert [e for _, e in got] == in_file  # the same objects in both places


def test_a_syslog_that_stops_reading_does_not_stall_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eventlog, "SEND_TIMEOUT", 0.05)
    path = tmp_path / "log.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))  # and never read: its queue fills
        targets = open_targets(tmp_path / "events.jsonl", True, str(path))
        assert targets is not None
        problems = logged(targets)
    assert len(problems) == 1
    assert re.fullmatch(rf"\d+ events could not be sent to syslog at {path}: .+", problems[0])
    assert len(lines_of(tmp_path / "events.jsonl")) == 12  # the file got every one


def test_an_unreachable_syslog_socket_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        open_targets(None, True, str(tmp_path / "no.sock"))
    message = str(caught.value)
    assert message.startswith(f"--syslog: cannot reach {tmp_path / 'no.sock'} (")
    assert "--syslog-address" in message and "\n" not in message


def test_syslog_addresses() -> None:
    assert syslog_address("/dev/log") == "/dev/log"
    assert syslog_address("127.0.0.1:5140") == ("127.0.0.1", 5140)
    assert syslog_address("logs.example.org") == ("logs.example.org", 514)
    assert syslog_address("[::1]:5140") == ("::1", 5140)
    for bad in ("host:99999", "host:0", "a b:514", ""):
        with pytest.raises(InputError, match="give HOST:PORT"):
            syslog_address(bad)


def test_nothing_asked_is_no_log() -> None:
    assert open_targets(None, False, None) is None
