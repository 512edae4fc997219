"""The one stream of events a run tells its caller as it goes: the live display and the event log
(orchestrator/eventlog.py) both follow it.

The fan-out's own events (a batch started, a host started or done, Ctrl-C's stopping) are in
fanout.py; these are the run's start and end, why it stopped early, the hosts closed as skipped
without being worked on, and each step as it is sent and as it exits. Step events come from the
hosts' worker threads, the others from the thread that called the runner: a subscriber that
keeps state must lock, and a host's first step may be told before its HostStarted is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.engine.fanout import BatchStarted, HostDone, HostStarted, Stopping
from orchestrator.engine.outcome import HostOutcome, RunResult, Stop
from orchestrator.transports.base import CommandResult

__all__ = [
    "BatchStarted",
    "Event",
    "HostClosed",
    "HostDone",
    "HostStarted",
    "RunFinished",
    "RunStarted",
    "RunStopped",
    "StepExited",
    "StepSent",
    "Stopping",
    "ignore",
]


@dataclass(frozen=True)
class RunStarted:
    """The run is recorded under ``run_id``; ``pending`` of its ``hosts`` are to be worked on
    now (fewer when it is resumed); ``settings`` as the ledger keeps them."""

    run_id: str
    kind: str
    operator: str
    hosts: int
    pending: int
    resumed: bool
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class StepSent:
    """A step's command is about to be sent (it is journaled in the ledger first)."""

    host: str
    step_id: str
    kind: str
    readonly: bool


@dataclass(frozen=True)
class StepExited:
    """A step came back: its exit code, or ``error`` when the transport failed (no exit code;
    the message is scrubbed of secrets, as in the ledger)."""

    host: str
    step_id: str
    exit_code: int | None = None
    timed_out: bool = False
    duration: float | None = None
    error: str | None = None

    @classmethod
    def of(cls, host: str, step_id: str, result: CommandResult) -> StepExited:
        return cls(host, step_id, result.exit_code, result.timed_out, result.duration)


@dataclass(frozen=True)
class RunStopped:
    """The run stopped before every host was worked on: the budget (``spent_by`` spent it), a
    pause, the change window (``window``) or Ctrl-C."""

    stop: Stop
    budget: int | None = None
    spent_by: tuple[str, ...] = ()
    window: str | None = None


@dataclass(frozen=True)
class HostClosed:
    """A host the waves did not work on (or abandoned), recorded skipped as the run closed."""

    outcome: HostOutcome


@dataclass(frozen=True)
class RunFinished:
    """The run's record is closed: every selected host has its final status."""

    result: RunResult


Event = (
    RunStarted
    | BatchStarted
    | HostStarted
    | StepSent
    | StepExited
    | HostDone
    | Stopping
    | RunStopped
    | HostClosed
    | RunFinished
)


def ignore(event: Event) -> None:
    """The subscriber that shows nothing (engine tests, callers without a display)."""
