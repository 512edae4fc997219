"""Plain result objects the engine hands back: per step, per host, per run."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from orchestrator.playbook.model import Finding

Kind = Literal["detect", "plan", "run", "rollback"]  # a run's kind, as the ledger records it
RunStatus = Literal["completed", "halted", "paused", "interrupted"]


class Stop(StrEnum):
    """Why a run stopped before every host was worked on.

    A ``StrEnum`` so that ``result.stop == "halted"`` and the JSON output read as they always did.
    """

    INTERRUPTED = "interrupted"  # Ctrl-C
    HALTED = "halted"  # the failure budget was spent
    PAUSED = "paused"  # --pause-after, or the operator said no at --confirm
    WINDOW = "window"  # the change window closed

    @property
    def run_status(self) -> RunStatus:
        """The status the run record ends with: a closed window pauses the run."""
        return _RUN_STATUS[self]


_RUN_STATUS: dict[Stop, RunStatus] = {
    Stop.INTERRUPTED: "interrupted",
    Stop.HALTED: "halted",
    Stop.PAUSED: "paused",
    Stop.WINDOW: "paused",
}


@dataclass(frozen=True)
class StepOutcome:
    step_id: str
    kind: str
    command: str  # as shown: secrets masked
    exit_code: int | None
    timed_out: bool
    duration: float


@dataclass(frozen=True)
class HostOutcome:
    host: str
    status: str
    reason: str | None = None
    findings: tuple[Finding, ...] = ()
    steps: tuple[StepOutcome, ...] = ()
    duration: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "status": self.status,
            "reason": self.reason,
            "findings": [f.to_dict() for f in self.findings],
            "steps": [vars(s) for s in self.steps],
            "duration": round(self.duration, 3),
        }


@dataclass(frozen=True)
class RunResult:
    run_id: str
    kind: Kind
    outcomes: tuple[HostOutcome, ...]
    interrupted: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    status: RunStatus = "completed"
    stop: Stop | None = None  # None: every host was worked on
    spent_by: tuple[str, ...] = ()  # hosts that counted against the failure budget
    budget: int | None = None
