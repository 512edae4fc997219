"""Runs: prepare every host's commands, record the run, fan the hosts out, close the record."""

from __future__ import annotations

import os
import socket
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.engine import status as st
from orchestrator.engine.detect import prepare
from orchestrator.engine.fanout import (
    BatchStarted,
    Event,
    FanOut,
    HostDone,
    HostStarted,
    Stopping,
    reserve_files,
)
from orchestrator.engine.host import HostDriver, HostJob, HostRun, Restore, Reviewed
from orchestrator.engine.outcome import HostOutcome, RunResult
from orchestrator.engine.waves import Window, batch_sizes, failure_budget, split
from orchestrator.errors import WindowClosed
from orchestrator.inventory.model import Host
from orchestrator.ledger import Ledger
from orchestrator.playbook.loader import PlaybookSet
from orchestrator.secrets import Secret, SecretStore
from orchestrator.transports import Connector

__all__ = [
    "BatchStarted",
    "Event",
    "HostDone",
    "HostStarted",
    "RunInfo",
    "Stopping",
    "WaveSettings",
    "detect",
    "plan",
    "rollback",
    "run",
]

DEFAULT_FORKS = 50
DEFAULT_HOST_TIMEOUT = 600.0


@dataclass(frozen=True)
class RunInfo:
    """Who ran what, for the ledger."""

    operator: str
    command_line: str
    inventory_digest: str


def detect(hosts: Sequence[Host], **kwargs: Any) -> RunResult:
    """A read-only scan of ``hosts``, recorded in the ledger as a run of kind ``detect``."""
    return _execute("detect", hosts, **kwargs)


def plan(hosts: Sequence[Host], **kwargs: Any) -> RunResult:
    """The dry run: detect, and render the removal each host would get; nothing changes."""
    return _execute("plan", hosts, **kwargs)


def rollback(hosts: Sequence[Host], **kwargs: Any) -> RunResult:
    """Reinstall what an earlier run removed (``restore`` per host), then detect to prove it."""
    return _execute("rollback", hosts, **kwargs)


def run(hosts: Sequence[Host], **kwargs: Any) -> RunResult:
    """Detect, remove what was found, verify: a run of kind ``run`` in the ledger."""
    return _execute("run", hosts, **kwargs)


@dataclass(frozen=True)
class WaveSettings:
    """How a run is staged. Stored with the run so that --resume continues it the same way."""

    batches: str | None = None  # "1,5,10%,100%"
    max_fail: str | None = None  # "3" or "5%"
    pause_after: int | None = None
    window: Window | None = None
    confirm: Callable[[int, int], bool] | None = None  # between batches: (done, total) -> go on?

    def meta(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "max_fail": self.max_fail,
            "pause_after": self.pause_after,
            "window": None if self.window is None else self.window.spec,
            "tz": None if self.window is None else self.window.tz_name,
        }


def _execute(
    kind: str,
    hosts: Sequence[Host],
    *,
    playbooks: PlaybookSet,
    ledger: Ledger,
    info: RunInfo,
    connector: Connector | None = None,
    secrets: SecretStore | None = None,
    template_secrets: Mapping[str, Secret] | None = None,
    forks: int = DEFAULT_FORKS,
    host_timeout: float = DEFAULT_HOST_TIMEOUT,
    on_event: Callable[[Event], None] = lambda e: None,
    wave: WaveSettings | None = None,
    meta: Mapping[str, Any] | None = None,
    resume: str | None = None,
    reviewed: Mapping[str, Reviewed] | None = None,
    allow_drift: bool = False,
    restore: Mapping[str, Restore] | None = None,
) -> RunResult:
    """``connector`` and ``secrets`` default to local-only ones (what engine tests need);
    ``template_secrets`` are run-wide secrets templates may use (the uninstall password).
    ``resume``: continue that run; hosts with a final status other than skipped are left alone.
    """
    reserve_files(forks)
    connector = connector or Connector()
    secrets = secrets or SecretStore()
    wave = wave or WaveSettings()
    jobs = prepare(hosts, playbooks, connector, template_secrets)  # bad input records nothing
    if wave.window is not None and not wave.window.is_open():
        opening = wave.window.next_opening().strftime("%Y-%m-%d %H:%M %Z")
        raise WindowClosed(
            f"outside the change window {wave.window.describe()}; nothing was started. "
            f"It next opens {opening}"
        )
    settings = {"forks": forks, "host_timeout": host_timeout, **wave.meta(), **(meta or {})}
    if resume is None:
        run_id = ledger.start_run(
            kind=kind,
            operator=info.operator,
            command_line=info.command_line,
            inventory_digest=info.inventory_digest,
            playbook_version=playbooks.version,
            hosts=[h.name for h in hosts],
            meta=settings,
        )
        pending = [j for j in jobs]
    else:
        run_id = resume
        record = ledger.get_run(resume)
        done = {h.host for h in record.hosts if h.status not in (None, st.SKIPPED)}
        pending = [j for j in jobs if j.host.name not in done]
        ledger.reopen_run(run_id)
        ledger.record_event(run_id, None, "resumed", {"by": info.operator, "hosts": len(pending)})
    if connector.ssh is not None:

        def pinned(label: str, name: str, key_type: str, fp: str) -> None:
            detail = {"known_hosts_name": name, "key_type": key_type, "fingerprint": fp}
            ledger.record_event(run_id, label, "hostkey_pinned", detail)

        connector.ssh.on_pinned = pinned

    node, pid = socket.gethostname(), os.getpid()
    shared = HostRun(
        run_id=run_id,
        ledger=ledger,
        playbooks=playbooks,
        redactor=secrets.redactor,
        connector=connector,
        host_timeout=host_timeout,
        mode=kind,
        reviewed=reviewed,
        allow_drift=allow_drift,
        restore=restore,
        lock=None if kind == "detect" else (lambda name: ledger.lock_host(run_id, name, node, pid)),
        unlock=None if kind == "detect" else (lambda name: ledger.unlock_host(run_id, name)),
    )
    budget = failure_budget(wave.max_fail, len(hosts))
    spent: list[str] = []
    lock = threading.Lock()

    def over_budget() -> bool:
        with lock:
            return budget is not None and len(spent) > budget

    def window_open() -> bool:
        return wave.window is None or wave.window.is_open()

    def work(job: HostJob) -> HostOutcome:
        outcome = HostDriver(job, shared).drive()
        if outcome.status in st.FAILURES:
            with lock:
                spent.append(outcome.host)
        return outcome

    sizes = batch_sizes(wave.batches, len(pending))
    batches = split([j.host.name for j in pending], sizes)
    by_name = {j.host.name: j for j in pending}
    outcomes: dict[str, HostOutcome] = {}
    stop: str | None = None  # interrupted | halted | paused | window
    abandoned: list[str] = []
    try:
        for index, names in enumerate(batches):
            if over_budget():
                stop = "halted"
                break
            if not window_open():
                stop = "window"
                break
            left = None if budget is None else max(budget - len(spent), 0)
            on_event(BatchStarted(index + 1, len(batches), len(names), left, budget))
            if len(batches) > 1:
                ledger.record_event(
                    run_id, None, "batch_started", {"batch": index + 1, "hosts": names}
                )
            fan = FanOut(
                work,
                lambda job: job.host.name,
                forks=forks,
                on_event=on_event,
                may_start=lambda: not over_budget() and window_open(),
            )
            result = fan.run([by_name[n] for n in names])
            outcomes.update(result.outcomes)
            abandoned += result.abandoned
            if result.interrupted:
                stop = "interrupted"
                break
            if over_budget():
                stop = "halted"
                break
            if not window_open() and result.not_started:
                stop = "window"
                break
            if index + 1 < len(batches):
                if wave.pause_after is not None and index + 1 >= wave.pause_after:
                    stop = "paused"
                    break
                if wave.confirm is not None and not wave.confirm(index + 1, len(batches)):
                    stop = "paused"
                    break
    finally:
        connector.close()
    reasons = {
        "interrupted": "run interrupted before this host started",
        "halted": f"not started: the failure budget ({budget}) was spent by "
        + ", ".join(spent[: (budget or 0) + 1]),
        "paused": f"not started: the run paused; continue with kremove run --resume {run_id}",
        "window": "not started: the change window closed; continue with kremove run --resume "
        + run_id,
    }
    for name in abandoned:
        outcomes[name] = _record(
            ledger, run_id, name, "interrupted while in flight; its last step may not have finished"
        )
    for job in pending:
        if job.host.name not in outcomes:
            outcomes[job.host.name] = _record(
                ledger, run_id, job.host.name, reasons[stop or "interrupted"]
            )
    if resume is not None:
        record = ledger.get_run(run_id)
        for h in record.hosts:
            if h.host not in outcomes:
                outcomes[h.host] = HostOutcome(h.host, h.status or st.SKIPPED, h.reason)
    run_status = {
        None: "completed",
        "interrupted": "interrupted",
        "halted": "halted",
        "paused": "paused",
        "window": "paused",
    }[stop]
    if stop == "halted":
        ledger.record_event(run_id, None, "halted", {"budget": budget, "spent_by": spent})
    if stop == "window":
        ledger.record_event(
            run_id, None, "window_closed", {"window": wave.window and wave.window.describe()}
        )
    ledger.finish_run(run_id, run_status)
    names = [h.name for h in hosts]
    ordered = tuple(outcomes[n] for n in names if n in outcomes)
    return RunResult(
        run_id=run_id,
        kind=kind,
        outcomes=ordered,
        interrupted=stop == "interrupted",
        counts=dict(Counter(o.status for o in ordered)),
        status=run_status,
        stop=stop,
        spent_by=tuple(spent),
        budget=budget,
    )


def _record(ledger: Ledger, run_id: str, host: str, reason: str) -> HostOutcome:
    outcome = HostOutcome(host, st.SKIPPED, reason)
    ledger.host_finished(run_id, host, status=outcome.status, reason=reason, findings=[])
    return outcome
