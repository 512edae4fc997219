"""The event log: a run's events as JSON lines in a file and as syslog messages, for a log
shipper or a SIEM to follow during a wave (docs/logging.md is the schema).

It subscribes to the engine's one event stream (engine/events.py), beside the live display.
Every line is one object with the time (UTC, ISO 8601), the schema version, the run id and the
event's name. No command text is logged (step ids name the steps; the ledger keeps the
commands, masked), and every string is scrubbed with the run's secrets before it is written.
A target that fails during the run is not retried and does not stop the run: the ledger is the
record; the failure is said once, at the end.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from logging.handlers import SysLogHandler
from pathlib import Path
from typing import Any, TextIO

import orchestrator
from orchestrator.engine import events as ev
from orchestrator.engine import status as st
from orchestrator.engine.outcome import HostOutcome, RunResult, Stop
from orchestrator.errors import InputError

SCHEMA = "kremove.events/1"  # as reports name theirs: a change that breaks a reader bumps it
DEFAULT_SYSLOG = "/dev/log"
FACILITY = SysLogHandler.LOG_USER
SEND_TIMEOUT = 1.0  # seconds one syslog message may wait on a Unix socket
GIVE_UP = 5  # syslog messages that failed before the rest are not tried
_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\s]+))(?::(?P<port>\d+))?$")


@dataclass(frozen=True)
class LogTargets:
    """Where the events go, opened (and so checked) before anything is sent to a host."""

    file: TextIO | None = None
    file_path: Path | None = None
    syslog: _Syslog | None = None


def open_targets(log_file: Path | None, syslog: bool, address: str | None) -> LogTargets | None:
    """What ``--log-file``, ``--syslog`` and ``--syslog-address`` ask for, opened now: a file
    that cannot be appended to or a syslog socket that cannot be reached is a one-line input
    error. ``--syslog-address`` implies ``--syslog``."""
    if log_file is None and not syslog and address is None:
        return None
    handle = None if log_file is None else _open_file(log_file)
    sink = None if not (syslog or address) else _Syslog.open(address or DEFAULT_SYSLOG)
    return LogTargets(handle, log_file, sink)


def _open_file(path: Path) -> TextIO:
    """Append, created 0600 (the events name hosts and products); never truncated."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise InputError(
            f"--log-file {path}: cannot append to it ({exc.strerror or exc}); give a writable "
            "file in an existing directory"
        ) from None
    return os.fdopen(fd, "a", encoding="utf-8")


def syslog_address(text: str) -> str | tuple[str, int]:
    """A Unix socket path (it has a '/'), or HOST:PORT for UDP (PORT defaults to 514;
    [v6]:PORT for IPv6)."""
    if "/" in text:
        return text
    m = _HOST_PORT.match(text.strip())
    port = int(m.group("port") or 514) if m else 0
    if m is None or not 0 < port < 65536:
        raise InputError(
            f"--syslog-address {text!r}: give HOST:PORT (UDP, e.g. 127.0.0.1:514) or the path "
            "of a Unix socket (e.g. /dev/log)"
        )
    return (m.group("v6") or m.group("host"), port)


class _Syslog(SysLogHandler):
    """The stdlib's handler, one message per event; a send that fails is counted, not raised."""

    def __init__(self, address: str | tuple[str, int], shown: str) -> None:
        super().__init__(address=address, facility=FACILITY)  # UDP; a Unix datagram socket first
        # The stdlib keeps quiet about a Unix socket it cannot connect to (and retries at each
        # message); here that is an error before the run starts.
        sock = getattr(self, "socket", None)
        if isinstance(address, str) and (sock is None or sock.fileno() < 0):
            self._connect_unixsocket(address)  # raises why
        self.ident = f"kremove[{os.getpid()}]: "
        # A datagram is one message: the JSON object, nothing after it. On a stream socket the
        # NUL is what separates messages.
        self.append_nul = self.socktype != socket.SOCK_DGRAM
        self.setFormatter(logging.Formatter("%(message)s"))
        self.shown = shown
        self.failed = 0
        self.last_error = ""

    @classmethod
    def open(cls, text: str) -> _Syslog:
        address = syslog_address(text)
        try:
            return cls(address, text)
        except OSError as exc:
            raise InputError(
                f"--syslog: cannot reach {text} ({exc.strerror or exc}); is a syslog daemon "
                "listening there? Give another socket or HOST:PORT with --syslog-address"
            ) from None

    def _connect_unixsocket(self, address: str) -> None:
        """The stdlib's, with a timeout: a syslog daemon that stops reading (a full queue
        blocks a Unix datagram socket) must not stall the wave."""
        super()._connect_unixsocket(address)  # type: ignore[misc]
        self.socket.settimeout(SEND_TIMEOUT)  # type: ignore[attr-defined]

    def handleError(self, record: logging.LogRecord) -> None:
        self.failed += 1
        self.last_error = str(sys.exc_info()[1]) or type(sys.exc_info()[1]).__name__

    def send(self, line: str, warning: bool) -> None:
        if self.failed >= GIVE_UP:  # one that keeps failing is not tried for every event
            self.failed += 1
            return
        level = logging.WARNING if warning else logging.INFO
        self.handle(logging.LogRecord("kremove", level, __file__, 0, line, None, None))


class EventLog:
    """The subscriber: call it with each event (from any thread); ``close`` says what failed."""

    def __init__(
        self,
        targets: LogTargets,
        scrub: Callable[[str], str],
        exit_code: Callable[[RunResult], int],
    ) -> None:
        self.targets = targets
        self._scrub = scrub
        self._exit_code = exit_code
        self._lock = threading.Lock()
        self._run: str | None = None
        self._started: set[str] = set()
        self._file_error: str | None = None

    def __call__(self, event: ev.Event) -> None:
        with self._lock:
            if isinstance(event, ev.RunStarted):
                self._run = event.run_id
            # A host's start is told from the runner's thread, its steps from the host's own:
            # the log says the host started before its first step, whichever comes first.
            if isinstance(event, ev.HostStarted | ev.StepSent | ev.StepExited):
                if event.host not in self._started:
                    self._started.add(event.host)
                    self._emit(self._fields(ev.HostStarted(event.host)))
                if isinstance(event, ev.HostStarted):
                    return
            self._emit(self._fields(event))

    def _emit(self, fields: dict[str, Any]) -> None:
        name = fields.pop("event")
        record = {"time": _now(), "schema": SCHEMA, "run": self._run, "event": name}
        line = json.dumps(_scrubbed({**record, **fields}, self._scrub), ensure_ascii=False)
        self._write(line, _is_warning(name, fields))

    def _write(self, line: str, warning: bool) -> None:
        handle = self.targets.file
        if handle is not None and self._file_error is None:
            try:
                handle.write(line + "\n")
                handle.flush()  # a shipper tailing the file sees each event as it happens
            except OSError as exc:
                self._file_error = exc.strerror or str(exc)
        if self.targets.syslog is not None:
            self.targets.syslog.send(line, warning)

    def close(self) -> list[str]:
        """Close the targets; one sentence per target that failed during the run."""
        problems = []
        if self.targets.file is not None:
            try:
                self.targets.file.close()
            except OSError as exc:
                self._file_error = self._file_error or exc.strerror or str(exc)
            if self._file_error:
                where = self.targets.file_path
                problems.append(f"the event log {where} stopped: {self._file_error}")
        sink = self.targets.syslog
        if sink is not None:
            sink.close()
            if sink.failed:
                problems.append(
                    f"{sink.failed} events could not be sent to syslog at {sink.shown}: "
                    f"{sink.last_error}"
                )
        return problems

    def _fields(self, event: ev.Event) -> dict[str, Any]:
        """The event as the log's object: its name under "event", then its fields."""
        match event:
            case ev.RunStarted():
                return _run_started(event)
            case ev.BatchStarted():
                return {
                    "event": "batch_started",
                    "batch": event.index,
                    "batches": event.count,
                    "size": event.size,
                    "budget": event.budget,
                    "budget_left": event.budget_left,
                }
            case ev.HostStarted():
                return {"event": "host_started", "host": event.host}
            case ev.StepSent():
                step = {"step": event.step_id, "kind": event.kind, "readonly": event.readonly}
                return {"event": "step_sent", "host": event.host, **step}
            case ev.StepExited():
                return _step_exited(event)
            case ev.HostDone() | ev.HostClosed():
                return _host_done(event.outcome, worked=isinstance(event, ev.HostDone))
            case ev.Stopping():
                return {"event": "stopping", "in_flight": event.in_flight}
            case ev.RunStopped():
                return _run_stopped(event)
            case ev.RunFinished():
                return self._run_finished(event.result)

    def _run_finished(self, result: RunResult) -> dict[str, Any]:
        return {
            "event": "run_finished",
            "status": result.status,
            "stop": None if result.stop is None else str(result.stop),
            "hosts": len(result.outcomes),
            "counts": dict(sorted(result.counts.items())),
            "exit_code": self._exit_code(result),
        }


def _run_started(event: ev.RunStarted) -> dict[str, Any]:
    return {
        "event": "run_started",
        "kind": event.kind,
        "operator": event.operator,
        "hosts": event.hosts,
        "pending": event.pending,
        "resumed": event.resumed,
        "settings": dict(event.settings),
        "kremove": orchestrator.__version__,
        "pid": os.getpid(),
    }


def _step_exited(event: ev.StepExited) -> dict[str, Any]:
    duration = None if event.duration is None else round(event.duration, 3)
    return {
        "event": "step_exited",
        "host": event.host,
        "step": event.step_id,
        "exit_code": event.exit_code,
        "timed_out": event.timed_out,
        "duration": duration,
        "error": event.error,
    }


def _host_done(outcome: HostOutcome, *, worked: bool) -> dict[str, Any]:
    return {
        "event": "host_done",
        "host": outcome.host,
        "status": str(outcome.status),
        "reason": outcome.reason,
        "products": [f.label() for f in outcome.findings if f.kind == "installed"],
        "duration": round(outcome.duration, 3),
        "worked": worked,  # false: closed as skipped at the run's end without being started
    }


_STOPS = {
    Stop.HALTED: "halted",
    Stop.PAUSED: "paused",
    Stop.WINDOW: "window_closed",
    Stop.INTERRUPTED: "interrupted",
}


def _run_stopped(event: ev.RunStopped) -> dict[str, Any]:
    fields: dict[str, Any] = {"event": _STOPS[event.stop]}
    if event.stop is Stop.HALTED:
        fields.update(budget=event.budget, spent_by=list(event.spent_by))
    if event.stop is Stop.WINDOW:
        fields["window"] = event.window
    return fields


def _is_warning(name: str, fields: Mapping[str, Any]) -> bool:
    """Syslog severity: warning for a failed host, a halt, an interruption or a run that did not
    end 0; info for the rest."""
    if name == "host_done":
        return fields["status"] in st.FAILURES
    if name == "run_finished":
        return bool(fields["exit_code"])
    return name in ("halted", "interrupted", "stopping")


def _scrubbed(value: Any, scrub: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {k: _scrubbed(v, scrub) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(v, scrub) for v in value]
    return value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
