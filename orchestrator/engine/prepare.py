"""Preparing hosts for a run: their platform, template context and detection commands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.engine import uninstall_passwords
from orchestrator.engine.steps import HostJob, PreparedStep
from orchestrator.errors import PlaybookError
from orchestrator.inventory.model import Host
from orchestrator.playbook.loader import PlaybookSet
from orchestrator.transports import kinds
from orchestrator.transports.connector import Connector

__all__ = ["HostJob", "PreparedStep", "host_platform", "prepare", "template_context"]

DEFAULT_LOGIN = "KLAdmin"  # the vendor's example login for KES password properties


def host_platform(host: Host) -> str:
    return kinds.platform_of(host.transport, host.platform, host.shell_type)


def template_context(
    host: Host, playbooks: PlaybookSet, secrets: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What every template of a host sees. ``secrets`` holds the run's template secrets (masked),
    of which the host gets its own uninstall passwords (engine/uninstall_passwords.py)."""
    return {
        "host": {
            "name": host.name,
            "address": host.address,
            "platform": host_platform(host),
            "become_method": host.become.method,  # the privilege probe checks that tool
            "vars": dict(host.vars),
        },
        "catalog": playbooks.catalog,
        "secrets": {
            **uninstall_passwords.run_wide_secrets(secrets),
            **uninstall_passwords.for_host(host, secrets or {}),
        },
        "uninstall_login": str(host.vars.get("kaspersky_login", DEFAULT_LOGIN)),
    }


def prepare(
    hosts: Sequence[Host],
    playbooks: PlaybookSet,
    connector: Connector,
    secrets: Mapping[str, Any] | None = None,
) -> list[HostJob]:
    """Render every detection command up front: a template error stops the run before it starts."""
    jobs = []
    for host in hosts:
        connector.check(host)  # an unsupported transport is an input error, found now
        platform = host_platform(host)
        context = template_context(host, playbooks, secrets)
        playbook = playbooks.playbook_for(platform, "detect")
        if playbook is None:
            jobs.append(
                HostJob(host, platform, (), f"no detect playbook for platform {platform}", context)
            )
            continue
        steps = []
        for step in playbook.steps:
            try:
                command = playbooks.renderer.render(step.template, context)
            except PlaybookError as exc:
                raise PlaybookError(f"host {host.name!r}: step {step.id!r}: {exc}") from None
            steps.append(PreparedStep(step, command))
        jobs.append(HostJob(host, platform, tuple(steps), None, context))
    return jobs
