"""Plain result objects the engine hands back: per step, per host, per run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.playbook.model import Finding


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
    kind: str
    outcomes: tuple[HostOutcome, ...]
    interrupted: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    status: str = "completed"  # the run's: completed | halted | paused | interrupted
    stop: str | None = None  # why it stopped early: interrupted | halted | paused | window
    spent_by: tuple[str, ...] = ()  # hosts that counted against the failure budget
    budget: int | None = None
