"""Detection on one host: connect, run the read-only detect steps, parse findings, journal it."""

from __future__ import annotations

import platform as _platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator import transports
from orchestrator.engine import status as st
from orchestrator.engine.outcome import HostOutcome, StepOutcome
from orchestrator.errors import PlaybookError, TransportError
from orchestrator.inventory.model import Host
from orchestrator.ledger import Ledger
from orchestrator.playbook.loader import PlaybookSet
from orchestrator.playbook.model import Catalog, Finding, Step
from orchestrator.playbook.parsers import PARSERS, ParseError
from orchestrator.playbook.render import RenderedCommand
from orchestrator.secrets import Redactor
from orchestrator.transports.base import Deadline

CONNECT_TIMEOUT = 30.0


@dataclass(frozen=True)
class PreparedStep:
    step: Step
    command: RenderedCommand


@dataclass(frozen=True)
class HostJob:
    """A host with every command it will receive, rendered before anything connects."""

    host: Host
    platform: str
    steps: tuple[PreparedStep, ...]
    skip_reason: str | None = None


def host_platform(host: Host) -> str:
    if host.platform:
        return host.platform
    if host.transport == "local":
        return {"Darwin": "macos", "Windows": "windows"}.get(_platform.system(), "linux")
    return "windows" if host.transport == "winrm" else "linux"


def template_context(host: Host, playbooks: PlaybookSet) -> dict[str, Any]:
    return {
        "host": {
            "name": host.name,
            "address": host.address,
            "platform": host_platform(host),
            "vars": dict(host.vars),
        },
        "catalog": playbooks.catalog,
    }


def prepare_detect(
    hosts: Sequence[Host], playbooks: PlaybookSet, connector: transports.Connector
) -> list[HostJob]:
    """Render every detect command up front: a template error stops the run before it starts."""
    jobs = []
    for host in hosts:
        connector.check(host)  # an unsupported transport is an input error, found now
        platform = host_platform(host)
        playbook = playbooks.detect_playbook(platform)
        if playbook is None:
            jobs.append(HostJob(host, platform, (), f"no detect playbook for platform {platform}"))
            continue
        context = template_context(host, playbooks)
        steps = []
        for step in playbook.steps:
            if step.kind != "detect":
                continue
            try:
                command = playbooks.renderer.render(step.template, context)
            except PlaybookError as exc:
                raise PlaybookError(f"host {host.name!r}: step {step.id!r}: {exc}") from None
            steps.append(PreparedStep(step, command))
        jobs.append(HostJob(host, platform, tuple(steps)))
    return jobs


def run_host(
    job: HostJob,
    *,
    run_id: str,
    ledger: Ledger,
    catalog: Catalog,
    redactor: Redactor,
    connector: transports.Connector,
    host_timeout: float,
) -> HostOutcome:
    """Drive one host to its final status. Never raises for anything the host does."""
    started = time.monotonic()
    outcome = _detect(
        job,
        run_id=run_id,
        ledger=ledger,
        catalog=catalog,
        redactor=redactor,
        connector=connector,
        deadline=Deadline.after(host_timeout),
    )
    outcome = HostOutcome(
        outcome.host,
        outcome.status,
        outcome.reason,
        outcome.findings,
        outcome.steps,
        time.monotonic() - started,
    )
    ledger.host_finished(
        run_id,
        job.host.name,
        status=outcome.status,
        reason=outcome.reason,
        findings=[f.to_dict() for f in outcome.findings],
    )
    return outcome


def _detect(
    job: HostJob,
    *,
    run_id: str,
    ledger: Ledger,
    catalog: Catalog,
    redactor: Redactor,
    connector: transports.Connector,
    deadline: Deadline,
) -> HostOutcome:
    name = job.host.name
    if job.skip_reason:
        return HostOutcome(name, st.SKIPPED, job.skip_reason)
    steps: list[StepOutcome] = []
    findings: list[Finding] = []
    transport = connector.for_host(job.host)
    try:
        transport.connect(deadline.sooner(CONNECT_TIMEOUT))
        for prepared in job.steps:
            step = prepared.step
            key = ledger.step_started(
                run_id,
                name,
                step_id=step.id,
                kind=step.kind,
                readonly=step.readonly,
                command=prepared.command.shown,
            )
            result = transport.run(
                prepared.command.text, deadline.sooner(step.timeout), become=step.become
            )
            ledger.step_finished(
                key,
                exit_code=result.exit_code,
                stdout=redactor.scrub(result.stdout),
                stderr=redactor.scrub(result.stderr),
                timed_out=result.timed_out,
            )
            steps.append(
                StepOutcome(
                    step.id,
                    step.kind,
                    prepared.command.shown,
                    result.exit_code,
                    result.timed_out,
                    result.duration,
                )
            )
            if result.timed_out:
                return HostOutcome(
                    name,
                    st.TIMEOUT,
                    f"step {step.id!r} passed its deadline",
                    tuple(findings),
                    tuple(steps),
                )
            if result.exit_code != 0:
                detail = _last_line(redactor.scrub(result.stderr))
                return HostOutcome(
                    name,
                    st.FAILED,
                    f"step {step.id!r} exited {result.exit_code}{detail}",
                    tuple(findings),
                    tuple(steps),
                )
            if step.parser:
                try:
                    findings.extend(PARSERS[step.parser](result, catalog))
                except ParseError as exc:
                    return HostOutcome(
                        name, st.FAILED, f"step {step.id!r}: {exc}", tuple(findings), tuple(steps)
                    )
    except TransportError as exc:
        return HostOutcome(
            name, exc.status, redactor.scrub(str(exc)), tuple(findings), tuple(steps)
        )
    finally:
        transport.close()
    installed = any(f.kind == "installed" for f in findings)
    return HostOutcome(
        name, st.FOUND if installed else st.CLEAN, None, tuple(findings), tuple(steps)
    )


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return f": {lines[-1][:200]}" if lines else ""
