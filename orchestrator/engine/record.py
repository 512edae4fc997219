"""The run record: open it (or reopen the run being resumed), and close it with every host's result.

Every selected host ends the run with a final status in the ledger: hosts the waves never started
are recorded ``skipped``, with the reason the run stopped and how to continue it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from orchestrator.engine import status as st
from orchestrator.engine.outcome import HostOutcome, RunResult, Stop
from orchestrator.engine.request import RunRequest
from orchestrator.engine.steps import HostJob
from orchestrator.engine.waves import WaveResult
from orchestrator.ledger import Ledger
from orchestrator.transports.connector import Connector, Note

ABANDONED = "interrupted while in flight; its last step may not have finished"


def open_run(
    ledger: Ledger, request: RunRequest, jobs: Sequence[HostJob]
) -> tuple[str, list[HostJob]]:
    """Start the run's record, or reopen the one resumed; return its id and the jobs left to do."""
    info = request.info
    if request.resume is None:
        run_id = ledger.start_run(
            kind=request.kind,
            operator=info.operator,
            command_line=info.command_line,
            inventory_digest=info.inventory_digest,
            playbook_version=request.playbooks.version,
            hosts=[h.name for h in request.hosts],
            meta=request.settings.stored(),
        )
        return run_id, list(jobs)
    run_id = request.resume
    record = ledger.get_run(run_id)
    done = {h.host for h in record.hosts if h.status not in (None, st.SKIPPED)}
    pending = [j for j in jobs if j.host.name not in done]
    ledger.reopen_run(run_id)
    ledger.record_event(run_id, None, "resumed", {"by": info.operator, "hosts": len(pending)})
    return run_id, pending


def watch_notes(ledger: Ledger, run_id: str, connector: Connector) -> None:
    """Record in the run what its transports learn, e.g. an SSH host key pinned on first use."""

    def record(note: Note) -> None:
        ledger.record_event(run_id, note.host, note.name, dict(note.detail))

    connector.notes.listen(record)


def close_run(
    ledger: Ledger,
    request: RunRequest,
    run_id: str,
    pending: Sequence[HostJob],
    waves: WaveResult,
) -> RunResult:
    """Record the hosts the waves did not finish, the reason the run stopped, and close it."""
    outcomes = dict(waves.outcomes)
    for name in waves.abandoned:
        outcomes[name] = _skipped(ledger, run_id, name, ABANDONED)
    why = _not_started(waves, run_id)
    for job in pending:
        if job.host.name not in outcomes:
            outcomes[job.host.name] = _skipped(ledger, run_id, job.host.name, why)
    if request.resume is not None:  # hosts finished before the resume keep their results
        for h in ledger.get_run(run_id).hosts:
            if h.host not in outcomes:
                outcomes[h.host] = HostOutcome(h.host, h.status or st.SKIPPED, h.reason)
    budget = waves.budget
    if waves.stop is Stop.HALTED:
        ledger.record_event(
            run_id, None, "halted", {"budget": budget.limit, "spent_by": budget.spent}
        )
    window = request.settings.wave.window
    if waves.stop is Stop.WINDOW:
        ledger.record_event(run_id, None, "window_closed", {"window": window and window.describe()})
    status = "completed" if waves.stop is None else waves.stop.run_status
    ledger.finish_run(run_id, status)
    ordered = tuple(outcomes[h.name] for h in request.hosts if h.name in outcomes)
    return RunResult(
        run_id=run_id,
        kind=request.kind,
        outcomes=ordered,
        interrupted=waves.stop is Stop.INTERRUPTED,
        counts=dict(Counter(o.status for o in ordered)),
        status=status,
        stop=waves.stop,
        spent_by=tuple(budget.spent),
        budget=budget.limit,
    )


def _not_started(waves: WaveResult, run_id: str) -> str:
    """Why a host the waves never started is skipped, and how to continue the run."""
    budget = waves.budget
    if waves.stop is Stop.HALTED:
        spent = ", ".join(budget.spent[: (budget.limit or 0) + 1])
        return f"not started: the failure budget ({budget.limit}) was spent by {spent}"
    if waves.stop is Stop.PAUSED:
        return f"not started: the run paused; continue with kremove run --resume {run_id}"
    if waves.stop is Stop.WINDOW:
        return f"not started: the change window closed; continue with kremove run --resume {run_id}"
    return "run interrupted before this host started"


def _skipped(ledger: Ledger, run_id: str, host: str, reason: str) -> HostOutcome:
    outcome = HostOutcome(host, st.SKIPPED, reason)
    ledger.host_finished(run_id, host, status=outcome.status, reason=reason, findings=[])
    return outcome
