"""Fan-out: run hosts ``forks`` at a time, report progress through a callback, record the run."""

from __future__ import annotations

import concurrent.futures as cf
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator.engine import status as st
from orchestrator.engine.detect import HostJob, prepare_detect, run_host
from orchestrator.engine.outcome import HostOutcome, RunResult
from orchestrator.inventory.model import Host
from orchestrator.ledger import Ledger
from orchestrator.playbook.loader import PlaybookSet
from orchestrator.secrets import Redactor

DEFAULT_FORKS = 50
DEFAULT_HOST_TIMEOUT = 600.0


@dataclass(frozen=True)
class HostStarted:
    host: str


@dataclass(frozen=True)
class HostDone:
    outcome: HostOutcome


Event = HostStarted | HostDone


@dataclass(frozen=True)
class RunInfo:
    """Who ran what, for the ledger."""

    operator: str
    command_line: str
    inventory_digest: str


def detect(
    hosts: Sequence[Host],
    *,
    playbooks: PlaybookSet,
    ledger: Ledger,
    info: RunInfo,
    forks: int = DEFAULT_FORKS,
    host_timeout: float = DEFAULT_HOST_TIMEOUT,
    on_event: Callable[[Event], None] = lambda e: None,
) -> RunResult:
    """A read-only scan of ``hosts``, recorded in the ledger as a run of kind ``detect``."""
    jobs = prepare_detect(hosts, playbooks)  # before the run exists: bad input records nothing
    run_id = ledger.start_run(
        kind="detect",
        operator=info.operator,
        command_line=info.command_line,
        inventory_digest=info.inventory_digest,
        playbook_version=playbooks.version,
        hosts=[h.name for h in hosts],
        meta={"forks": forks, "host_timeout": host_timeout},
    )
    redactor = Redactor()

    def work(job: HostJob) -> HostOutcome:
        on_event(HostStarted(job.host.name))
        outcome = run_host(
            job,
            run_id=run_id,
            ledger=ledger,
            catalog=playbooks.catalog,
            redactor=redactor,
            host_timeout=host_timeout,
        )
        on_event(HostDone(outcome))
        return outcome

    outcomes: dict[str, HostOutcome] = {}
    interrupted = False
    pool = cf.ThreadPoolExecutor(
        max_workers=max(1, min(forks, len(jobs))), thread_name_prefix="kremove-host"
    )
    futures = {pool.submit(work, job): job for job in jobs}
    try:
        for future in cf.as_completed(futures):
            outcome = future.result()
            outcomes[outcome.host] = outcome
    except KeyboardInterrupt:
        interrupted = True
        # Hosts not yet started never start; those in flight finish within their deadlines.
        pool.shutdown(wait=True, cancel_futures=True)
        for future, job in futures.items():
            if future.done() and not future.cancelled() and future.exception() is None:
                outcomes[job.host.name] = future.result()
        for job in jobs:
            if job.host.name not in outcomes:
                outcome = HostOutcome(
                    job.host.name, st.SKIPPED, "run interrupted before this host started"
                )
                ledger.host_finished(
                    run_id, job.host.name, status=outcome.status, reason=outcome.reason, findings=[]
                )
                outcomes[job.host.name] = outcome
    finally:
        pool.shutdown(wait=True)
    ordered = tuple(outcomes[h.name] for h in hosts)
    ledger.finish_run(run_id, "interrupted" if interrupted else "completed")
    return RunResult(
        run_id=run_id,
        kind="detect",
        outcomes=ordered,
        interrupted=interrupted,
        counts=dict(Counter(o.status for o in ordered)),
    )
