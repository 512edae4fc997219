"""What the ledger returns: plain frozen records, the status vocabularies, and the one clock."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orchestrator.errors import InputError

# Host statuses are the engine's vocabulary (engine/status.py; DESIGN.md "Host status"): the ledger
# checks only their shape, so a new status needs no ledger change. A host without one is pending.
HOST_STATUS_SHAPE = re.compile(r"[a-z][a-z_]*")
# A run is "running" from start_run until finish_run gives it one of these.
RUN_STATUSES: frozenset[str] = frozenset({"completed", "halted", "paused", "interrupted", "failed"})
RUNNING = "running"
# Key under which RunSummary.counts reports hosts that have no outcome yet.
PENDING = "pending"


def now() -> str:
    """The ledger's only clock: ISO 8601 UTC, microseconds (2026-11-25T12:00:00.123456+00:00)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


class RunNotFound(InputError):
    """A run id or prefix given by the user that names no run, or more than one."""


@dataclass(frozen=True)
class StepRecord:
    """One command sent to one host. ``finished`` is None: journaled, outcome never recorded."""

    key: int
    host: str
    seq: int
    step_id: str
    kind: str
    readonly: bool
    command: str
    started: str
    finished: str | None
    exit_code: int | None
    timed_out: bool
    stdout: str
    stderr: str
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "host": self.host,
            "seq": self.seq,
            "step_id": self.step_id,
            "kind": self.kind,
            "readonly": self.readonly,
            "command": self.command,
            "started": self.started,
            "finished": self.finished,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "error": self.error,
        }


@dataclass(frozen=True)
class HostRecord:
    """One host's outcome in one run; ``status`` is None until the host has finished."""

    host: str
    status: str | None
    reason: str | None
    findings: list[dict[str, Any]]
    started: str | None
    finished: str | None
    post_findings: list[dict[str, Any]] | None = None  # after removal, when there was one
    plan: list[dict[str, Any]] | None = None  # a dry run's steps for the host

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "status": self.status,
            "reason": self.reason,
            "findings": [dict(f) for f in self.findings],
            "post_findings": (
                None if self.post_findings is None else [dict(f) for f in self.post_findings]
            ),
            "plan": None if self.plan is None else [dict(s) for s in self.plan],
            "started": self.started,
            "finished": self.finished,
        }


@dataclass(frozen=True)
class EventRecord:
    host: str | None
    kind: str
    detail: dict[str, Any]
    at: str

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "kind": self.kind, "detail": dict(self.detail), "at": self.at}


@dataclass(frozen=True)
class RunSummary:
    """A line of `kremove runs list`. ``counts`` maps host status (or "pending") to a host count."""

    id: str
    kind: str
    status: str
    started: str
    finished: str | None
    operator: str
    hosts_selected: int
    counts: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
            "operator": self.operator,
            "hosts_selected": self.hosts_selected,
            "counts": dict(sorted(self.counts.items())),
        }


@dataclass(frozen=True)
class RunDetail:
    """A whole run: its parameters, every host in selection order, every step in journal order."""

    id: str
    kind: str
    status: str
    started: str
    finished: str | None
    operator: str
    command_line: str
    inventory_digest: str
    playbook_version: str
    meta: dict[str, Any]
    hosts: list[HostRecord]
    steps: list[StepRecord]
    events: list[EventRecord] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for h in self.hosts:
            key = h.status or PENDING
            counts[key] = counts.get(key, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
            "operator": self.operator,
            "command_line": self.command_line,
            "inventory_digest": self.inventory_digest,
            "playbook_version": self.playbook_version,
            "meta": dict(self.meta),
            "counts": dict(sorted(self.counts.items())),
            "hosts": [h.to_dict() for h in self.hosts],
            "steps": [s.to_dict() for s in self.steps],
            "events": [e.to_dict() for e in self.events],
        }
