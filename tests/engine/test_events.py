"""The run's one event stream (engine/events.py), in-process over the fake fleet: it starts with
the run, tells every step sent and exited, every host's final status (those closed as skipped
too), why the run stopped, and ends with the run; what it tells agrees with the ledger."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.engine import runner
from orchestrator.engine.outcome import Stop
from orchestrator.errors import TransportError
from orchestrator.inventory.model import Host
from orchestrator.ledger import Ledger
from orchestrator.playbook.loader import PlaybookSet, load_playbooks
from orchestrator.transports.base import CommandResult, Deadline, Transport
from tests.engine.fakes import FakeFleet, FakeHost, FakeTransport, installed
from tests.engine.fakes import unreachable as down
from tests.engine.test_wave_loop import INFO

World = tuple[Ledger, PlaybookSet]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A real ledger in tmp and the built-in playbooks."""
    with Ledger.open(tmp_path / "ledger.db") as book:
        yield book, load_playbooks()


class _Dropping(FakeTransport):
    """The connection drops while the removal runs: the step has no exit status."""

    def run(
        self, command: str, deadline: Deadline, stdin: bytes | None = None, *, become: bool = False
    ) -> CommandResult:
        if "dpkg --purge" in command:
            raise TransportError("connection to e lost")
        return super().run(command, deadline, stdin, become=become)


class _Fleet(FakeFleet):
    def for_host(self, host: Host) -> Transport:
        transport = super().for_host(host)
        return _Dropping(host, self.scripts[host.name], self) if host.name == "e" else transport


class _Seen(list[runner.Event]):
    """A subscriber that keeps what it is told (step events come from worker threads)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def __call__(self, event: runner.Event) -> None:
        with self._lock:
            self.append(event)

    def of(self, kind: type) -> list[runner.Event]:
        return [e for e in self if isinstance(e, kind)]


def test_a_wave_tells_its_start_steps_hosts_and_end(world: World) -> None:
    ledger, playbooks = world
    fleet = _Fleet({"a": installed(), "e": installed()})
    seen = _Seen()
    result = runner.run(
        fleet.hosts(), playbooks=playbooks, ledger=ledger, info=INFO, connector=fleet,
        forks=2, on_event=seen, meta={"limit": "all"},
    )  # fmt: skip
    started, finished = seen[0], seen[-1]
    assert isinstance(started, runner.RunStarted) and isinstance(finished, runner.RunFinished)
    assert (started.run_id, started.kind, started.operator) == (result.run_id, "run", INFO.operator)
    assert (started.hosts, started.pending, started.resumed) == (2, 2, False)
    assert started.settings == ledger.get_run(result.run_id).meta
    assert finished.result == result
    record = ledger.get_run(result.run_id)
    for host in ("a", "e"):
        sent = [e for e in seen.of(runner.StepSent) if e.host == host]
        exited = [e for e in seen.of(runner.StepExited) if e.host == host]
        journaled = [s for s in record.steps if s.host == host]
        assert (
            [e.step_id for e in sent]
            == [e.step_id for e in exited]
            == [s.step_id for s in journaled]
        )
        assert [e.exit_code for e in exited] == [s.exit_code for s in journaled]
        # each step is sent before it exits, and the host's end comes after its steps (its
        # start is told from the caller's thread, so it may come after its first step's)
        mine = [e for e in seen if getattr(e, "host", None) == host or _outcome_host(e) == host]
        assert isinstance(mine[-1], runner.HostDone)
        steps = [e for e in mine if isinstance(e, runner.StepSent | runner.StepExited)]
        assert [type(e) for e in steps] == [runner.StepSent, runner.StepExited] * len(sent)
    dropped = [e for e in seen.of(runner.StepExited) if e.error]
    assert [(e.host, e.exit_code, e.error) for e in dropped] == [
        ("e", None, "connection to e lost")
    ]
    done = {e.outcome.host: e.outcome.status for e in seen.of(runner.HostDone)}
    assert done == {h.host: h.status for h in record.hosts} == {"a": "removed", "e": "failed"}
    assert not seen.of(runner.RunStopped) and not seen.of(runner.HostClosed)


def _outcome_host(event: runner.Event) -> str | None:
    outcome = getattr(event, "outcome", None)
    return None if outcome is None else str(outcome.host)


def test_a_halted_wave_tells_why_and_closes_the_hosts_it_never_started(world: World) -> None:
    ledger, playbooks = world
    fleet = FakeFleet({"a": installed(), "b": down(), "c": installed(), "d": FakeHost()})
    seen = _Seen()
    wave = runner.WaveSettings(batches="2,100%", max_fail="0")
    result = runner.run(
        fleet.hosts(), playbooks=playbooks, ledger=ledger, info=INFO, connector=fleet,
        forks=1, wave=wave, on_event=seen,
    )  # fmt: skip
    assert result.stop is Stop.HALTED
    kinds = [type(e).__name__ for e in seen if not type(e).__name__.startswith("Step")]
    assert kinds == [
        *("RunStarted", "BatchStarted", "HostStarted", "HostDone", "HostStarted", "HostDone"),
        *("RunStopped", "HostClosed", "HostClosed", "RunFinished"),
    ]
    assert seen.of(runner.RunStopped) == [runner.RunStopped(Stop.HALTED, 0, ("b",), None)]
    told = {e.outcome.host: e.outcome.status for e in seen if isinstance(e, _HOST_ENDS)}
    record = ledger.get_run(result.run_id)
    assert told == {h.host: h.status for h in record.hosts}
    assert told == {"a": "removed", "b": "unreachable", "c": "skipped", "d": "skipped"}


_HOST_ENDS = (runner.HostDone, runner.HostClosed)


def test_a_resumed_run_says_so_and_how_many_hosts_are_left(world: World) -> None:
    ledger, playbooks = world
    fleet = FakeFleet({"a": installed(), "b": installed()})
    first = runner.run(
        fleet.hosts(), playbooks=playbooks, ledger=ledger, info=INFO, connector=fleet,
        forks=1, wave=runner.WaveSettings(batches="1", pause_after=1),
    )  # fmt: skip
    assert first.stop is Stop.PAUSED
    seen = _Seen()
    runner.run(
        fleet.hosts(), playbooks=playbooks, ledger=ledger, info=INFO, connector=fleet,
        forks=1, resume=first.run_id, on_event=seen,
    )  # fmt: skip
    started = seen.of(runner.RunStarted)[0]
    assert isinstance(started, runner.RunStarted)
    assert (started.run_id, started.hosts, started.pending, started.resumed) == (
        first.run_id, 2, 1, True
    )  # fmt: skip
