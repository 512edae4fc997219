"""A step's journal: recorded in the ledger before its command is sent and completed when it comes
back, and told to the run's event stream both times, so the event log follows the ledger."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.engine.events import Event, StepExited, StepSent
from orchestrator.engine.steps import PreparedStep
from orchestrator.ledger import Ledger
from orchestrator.transports.base import CommandResult


@dataclass(frozen=True)
class StepJournal:
    """One host's steps in one run."""

    ledger: Ledger
    run_id: str
    host: str
    on_event: Callable[[Event], None]

    def sent(self, prepared: PreparedStep) -> int:
        """Journal the step (committed) before its command goes out; return its key."""
        step = prepared.step
        key = self.ledger.step_started(
            self.run_id,
            self.host,
            step_id=prepared.ledger_id,
            kind=step.kind,
            readonly=step.readonly,
            command=prepared.command.shown,
        )
        self.on_event(StepSent(self.host, prepared.ledger_id, step.kind, step.readonly))
        return key

    def exited(self, key: int, prepared: PreparedStep, result: CommandResult) -> None:
        """The step's result, already scrubbed of secrets."""
        self.ledger.step_finished(
            key,
            exit_code=result.exit_code,
            stdout=result.stdout,
            stderr=result.stderr,
            timed_out=result.timed_out,
        )
        self.on_event(StepExited.of(self.host, prepared.ledger_id, result))

    def failed(self, key: int, prepared: PreparedStep, error: str) -> None:
        """The transport failed: no exit status; ``error`` is already scrubbed of secrets."""
        self.ledger.step_finished(
            key, exit_code=None, stdout="", stderr="", timed_out=False, error=error
        )
        self.on_event(StepExited(self.host, prepared.ledger_id, error=error))
