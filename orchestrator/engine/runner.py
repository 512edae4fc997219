"""Runs: prepare every host's commands, record the run, fan the hosts out, close the record."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.engine import status as st
from orchestrator.engine.detect import prepare
from orchestrator.engine.fanout import Event, FanOut, HostDone, HostStarted, Stopping
from orchestrator.engine.host import HostDriver, HostJob, HostRun
from orchestrator.engine.outcome import HostOutcome, RunResult
from orchestrator.inventory.model import Host
from orchestrator.ledger import Ledger
from orchestrator.playbook.loader import PlaybookSet
from orchestrator.secrets import Secret, SecretStore
from orchestrator.transports import Connector

__all__ = ["Event", "HostDone", "HostStarted", "RunInfo", "Stopping", "detect", "run"]

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


def run(hosts: Sequence[Host], **kwargs: Any) -> RunResult:
    """Detect, remove what was found, verify: a run of kind ``run`` in the ledger."""
    return _execute("run", hosts, **kwargs)


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
) -> RunResult:
    """``connector`` and ``secrets`` default to local-only ones (what engine tests need);
    ``template_secrets`` are run-wide secrets templates may use (the uninstall password)."""
    connector = connector or Connector()
    secrets = secrets or SecretStore()
    jobs = prepare(hosts, playbooks, connector, template_secrets)  # bad input records nothing
    run_id = ledger.start_run(
        kind=kind,
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

    shared = HostRun(
        run_id=run_id,
        ledger=ledger,
        playbooks=playbooks,
        redactor=secrets.redactor,
        connector=connector,
        host_timeout=host_timeout,
        remove=kind == "run",
    )

    def work(job: HostJob) -> HostOutcome:
        return HostDriver(job, shared).drive()

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
        kind=kind,
        outcomes=ordered,
        interrupted=result.interrupted,
        counts=dict(Counter(o.status for o in ordered)),
    )


def _record(ledger: Ledger, run_id: str, host: str, reason: str) -> HostOutcome:
    outcome = HostOutcome(host, st.SKIPPED, reason)
    ledger.host_finished(run_id, host, status=outcome.status, reason=reason, findings=[])
    return outcome
