"""Runs: prepare every host's commands, record the run, drive the hosts in waves, close the record.

``detect``, ``plan``, ``run`` and ``rollback`` are the entry points the CLI calls; each builds a
``RunRequest`` and hands it to ``execute``, which goes through the stages in order.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Required, TypedDict, Unpack

from orchestrator.engine import record
from orchestrator.engine.events import (
    Event,
    HostClosed,
    RunFinished,
    RunStarted,
    RunStopped,
    StepExited,
    StepSent,
)
from orchestrator.engine.fanout import BatchStarted, HostDone, HostStarted, Stopping, reserve_files
from orchestrator.engine.host import HostDriver, HostRun, Restore, Reviewed
from orchestrator.engine.outcome import Kind, RunResult, Stop
from orchestrator.engine.prepare import prepare
from orchestrator.engine.request import (
    DEFAULT_FORKS,
    DEFAULT_HOST_TIMEOUT,
    RunInfo,
    RunRequest,
    RunSettings,
)
from orchestrator.engine.steps import HostJob
from orchestrator.engine.waves import WaveResult, WaveSettings, run_waves
from orchestrator.inventory.model import Host
from orchestrator.ledger import Ledger
from orchestrator.playbook.loader import PlaybookSet
from orchestrator.secrets import Secret, SecretStore
from orchestrator.transports.connector import Connector

__all__ = [
    "DEFAULT_FORKS",
    "DEFAULT_HOST_TIMEOUT",
    "BatchStarted",
    "Event",
    "HostClosed",
    "HostDone",
    "HostStarted",
    "Options",
    "RollbackOptions",
    "RunFinished",
    "RunInfo",
    "RunOptions",
    "RunRequest",
    "RunSettings",
    "RunStarted",
    "RunStopped",
    "StepExited",
    "StepSent",
    "Stop",
    "Stopping",
    "WaveSettings",
    "detect",
    "execute",
    "plan",
    "rollback",
    "run",
]


def _ignore(event: Event) -> None:
    """The default progress callback: a caller that shows nothing."""


def execute(
    request: RunRequest,
    *,
    ledger: Ledger,
    connector: Connector | None = None,
    secrets: SecretStore | None = None,
    template_secrets: Mapping[str, Secret] | None = None,
    on_event: Callable[[Event], None] = _ignore,
) -> RunResult:
    """Carry out ``request``: every host ends with one final status in the ledger.

    ``connector`` and ``secrets`` default to local-only ones (what engine tests need);
    ``template_secrets`` are run-wide secrets templates may use (the uninstall password).
    Bad input (a template error, an unsupported transport) and a closed change window raise
    before the run is recorded.
    """
    settings = request.settings
    reserve_files(settings.forks)
    connector = connector or Connector()
    secrets = secrets or SecretStore()
    jobs = prepare(request.hosts, request.playbooks, connector, template_secrets)
    settings.wave.refuse_outside_window()
    run_id, pending = record.open_run(ledger, request, jobs)
    on_event(_started(request, run_id, pending))
    record.watch_notes(ledger, run_id, connector)
    shared = _shared(request, run_id, ledger, connector, secrets, on_event)

    def batch_started(index: int, names: list[str]) -> None:
        ledger.record_event(run_id, None, "batch_started", {"batch": index, "hosts": names})

    try:
        waves = run_waves(
            pending,
            lambda job: HostDriver(job, shared).drive(),
            settings.wave,
            selected=len(request.hosts),
            forks=settings.forks,
            on_event=on_event,
            on_batch=batch_started,
        )
    finally:
        connector.close()
    return _close(ledger, request, run_id, pending, waves, on_event)


def _started(request: RunRequest, run_id: str, pending: Sequence[HostJob]) -> RunStarted:
    resumed = request.resume is not None
    hosts, stored = len(request.hosts), request.settings.stored()
    return RunStarted(
        run_id, request.kind, request.info.operator, hosts, len(pending), resumed, stored
    )


def _close(
    ledger: Ledger,
    request: RunRequest,
    run_id: str,
    pending: Sequence[HostJob],
    waves: WaveResult,
    on_event: Callable[[Event], None],
) -> RunResult:
    """Close the record, telling the stream why the run stopped early, which hosts it closed as
    skipped without working on them, and that it finished."""
    if waves.stop is not None:
        window = request.settings.wave.window
        shown = None if window is None else window.describe()
        spent = tuple(waves.budget.spent)
        on_event(RunStopped(waves.stop, waves.budget.limit, spent, shown))
    result = record.close_run(ledger, request, run_id, pending, waves)
    closed = {j.host.name for j in pending} - set(waves.outcomes)
    for outcome in result.outcomes:
        if outcome.host in closed:
            on_event(HostClosed(outcome))
    on_event(RunFinished(result))
    return result


def _shared(
    request: RunRequest,
    run_id: str,
    ledger: Ledger,
    connector: Connector,
    secrets: SecretStore,
    on_event: Callable[[Event], None],
) -> HostRun:
    """What every host of the run shares; changing runs lock each host while they work on it."""
    node, pid = socket.gethostname(), os.getpid()
    changes = request.kind != "detect"
    return HostRun(
        run_id=run_id,
        ledger=ledger,
        playbooks=request.playbooks,
        redactor=secrets.redactor,
        connector=connector,
        host_timeout=request.settings.host_timeout,
        mode=request.kind,
        reviewed=request.reviewed,
        allow_drift=request.allow_drift,
        allow_encrypted=request.allow_encrypted,
        restore=request.restore,
        lock=(lambda name: ledger.lock_host(run_id, name, node, pid)) if changes else None,
        unlock=(lambda name: ledger.unlock_host(run_id, name)) if changes else None,
        on_event=on_event,
    )


class Options(TypedDict, total=False):
    """The keywords every entry point takes: content, the ledger, who ran it, how hosts are reached
    (``connector`` and ``secrets`` default to local-only ones, what engine tests need), the
    run-wide secrets templates may use, and what the ledger keeps with the run (``meta``)."""

    playbooks: Required[PlaybookSet]
    ledger: Required[Ledger]
    info: Required[RunInfo]
    connector: Connector | None
    secrets: SecretStore | None
    template_secrets: Mapping[str, Secret] | None
    forks: int
    host_timeout: float
    on_event: Callable[[Event], None]
    meta: Mapping[str, Any] | None
    allow_encrypted: bool  # remove from hosts with KES encryption components (engine/preflight.py)


class RunOptions(Options, total=False):
    """``run`` is staged in waves, may resume a stopped run, and may follow a reviewed plan."""

    wave: WaveSettings | None
    resume: str | None
    reviewed: Mapping[str, Reviewed] | None
    allow_drift: bool


class RollbackOptions(Options, total=False):
    """``rollback`` is staged in waves and reinstalls, per host, what ``restore`` holds."""

    wave: WaveSettings | None
    restore: Mapping[str, Restore] | None


def detect(hosts: Sequence[Host], **options: Unpack[Options]) -> RunResult:
    """A read-only scan of ``hosts``, recorded in the ledger as a run of kind ``detect``."""
    return _execute(_request("detect", hosts, options), options)


def plan(hosts: Sequence[Host], **options: Unpack[Options]) -> RunResult:
    """The dry run: detect, and render the removal each host would get; nothing changes."""
    return _execute(_request("plan", hosts, options), options)


def run(hosts: Sequence[Host], **options: Unpack[RunOptions]) -> RunResult:
    """Detect, remove what was found, verify: a run of kind ``run`` in the ledger."""
    request = replace(
        _request("run", hosts, options, options.get("wave")),
        reviewed=options.get("reviewed"),
        allow_drift=options.get("allow_drift", False),
        resume=options.get("resume"),
    )
    return _execute(request, options)


def rollback(hosts: Sequence[Host], **options: Unpack[RollbackOptions]) -> RunResult:
    """Reinstall what an earlier run removed (``restore`` per host), then detect to prove it."""
    request = replace(
        _request("rollback", hosts, options, options.get("wave")), restore=options.get("restore")
    )
    return _execute(request, options)


def _request(
    kind: Kind, hosts: Sequence[Host], options: Options, wave: WaveSettings | None = None
) -> RunRequest:
    settings = RunSettings(
        forks=options.get("forks", DEFAULT_FORKS),
        host_timeout=options.get("host_timeout", DEFAULT_HOST_TIMEOUT),
        wave=wave or WaveSettings(),
        meta=dict(options.get("meta") or {}),
    )
    request = RunRequest(kind, tuple(hosts), options["playbooks"], options["info"], settings)
    return replace(request, allow_encrypted=options.get("allow_encrypted", False))


def _execute(request: RunRequest, options: Options) -> RunResult:
    return execute(
        request,
        ledger=options["ledger"],
        connector=options.get("connector"),
        secrets=options.get("secrets"),
        template_secrets=options.get("template_secrets"),
        on_event=options.get("on_event", _ignore),
    )
