"""Runs: prepare every host's commands, record the run, fan the hosts out, close the record."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator.engine import status as st
from orchestrator.engine.detect import HostJob, prepare_detect, run_host
from orchestrator.engine.fanout import Event, FanOut, HostDone, HostStarted, Stopping
from orchestrator.engine.outcome import HostOutcome, RunResult
from orchestrator.inventory.model import Host
from orchestrator.ledger import Ledger
from orchestrator.playbook.loader import PlaybookSet
from orchestrator.secrets import SecretStore
from orchestrator.transports import Connector

__all__ = ["Event", "HostDone", "HostStarted", "RunInfo", "Stopping", "detect"]

DEFAULT_FORKS = 50
DEFAULT_HOST_TIMEOUT = 600.0


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
    connector: Connector | None = None,
    secrets: SecretStore | None = None,
    forks: int = DEFAULT_FORKS,
    host_timeout: float = DEFAULT_HOST_TIMEOUT,
    on_event: Callable[[Event], None] = lambda e: None,
) -> RunResult:
    """A read-only scan of ``hosts``, recorded in the ledger as a run of kind ``detect``.

    ``connector`` and ``secrets`` default to local-only ones (what tests of the engine need).
    """
    connector = connector or Connector()
    secrets = secrets or SecretStore()
    jobs = prepare_detect(hosts, playbooks, connector)  # bad input records nothing
    run_id = ledger.start_run(
        kind="detect",
        operator=info.operator,
        command_line=info.command_line,
        inventory_digest=info.inventory_digest,
        playbook_version=playbooks.version,
        hosts=[h.name for h in hosts],
        meta={"forks": forks, "host_timeout": host_timeout},
    )
    if connector.ssh is not None:

        def pinned(label: str, name: str, key_type: str, fp: str) -> None:
            detail = {"known_hosts_name": name, "key_type": key_type, "fingerprint": fp}
            ledger.record_event(run_id, label, "hostkey_pinned", detail)

        connector.ssh.on_pinned = pinned

    def work(job: HostJob) -> HostOutcome:
        return run_host(
            job,
            run_id=run_id,
            ledger=ledger,
            catalog=playbooks.catalog,
            redactor=secrets.redactor,
            connector=connector,
            host_timeout=host_timeout,
        )

    fan = FanOut(work, lambda job: job.host.name, forks=forks, on_event=on_event)
    try:
        result = fan.run(jobs)
    finally:
        connector.close()
    outcomes = dict(result.outcomes)
    for name in result.abandoned:
        outcomes[name] = _record(
            ledger, run_id, name, "interrupted while in flight; its last step may not have finished"
        )
    for name in result.not_started:
        outcomes[name] = _record(ledger, run_id, name, "run interrupted before this host started")
    ordered = tuple(outcomes[h.name] for h in hosts)
    ledger.finish_run(run_id, "interrupted" if result.interrupted else "completed")
    return RunResult(
        run_id=run_id,
        kind="detect",
        outcomes=ordered,
        interrupted=result.interrupted,
        counts=dict(Counter(o.status for o in ordered)),
    )


def _record(ledger: Ledger, run_id: str, host: str, reason: str) -> HostOutcome:
    outcome = HostOutcome(host, st.SKIPPED, reason)
    ledger.host_finished(run_id, host, status=outcome.status, reason=reason, findings=[])
    return outcome
