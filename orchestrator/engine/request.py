"""What a run is asked to do: one frozen, typed request, built by the CLI and read by the engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.engine.outcome import Kind
from orchestrator.engine.steps import Restore, Reviewed
from orchestrator.engine.waves import WaveSettings
from orchestrator.inventory.model import Host
from orchestrator.playbook.loader import PlaybookSet

DEFAULT_FORKS = 50
DEFAULT_HOST_TIMEOUT = 600.0


@dataclass(frozen=True)
class RunInfo:
    """Who ran what, for the ledger."""

    operator: str
    command_line: str
    inventory_digest: str


@dataclass(frozen=True)
class RunSettings:
    """How a run goes: how many hosts at once, how long each may take, how it is staged."""

    forks: int = DEFAULT_FORKS
    host_timeout: float = DEFAULT_HOST_TIMEOUT
    wave: WaveSettings = field(default_factory=WaveSettings)
    meta: Mapping[str, Any] = field(default_factory=dict)  # what else the caller keeps with it

    def stored(self) -> dict[str, Any]:
        """What the ledger keeps with the run, for --resume and reports."""
        return {
            "forks": self.forks,
            "host_timeout": self.host_timeout,
            **self.wave.meta(),
            **self.meta,
        }


@dataclass(frozen=True)
class RunRequest:
    """One run of ``kind`` over ``hosts``.

    ``reviewed``: run --plan, what was reviewed per host (``allow_drift`` lets hosts differ).
    ``restore``: rollback, what to reinstall per host. ``resume``: the id of a halted, paused or
    interrupted run to continue; only its hosts without a final result other than skipped run.
    """

    kind: Kind
    hosts: tuple[Host, ...]
    playbooks: PlaybookSet
    info: RunInfo
    settings: RunSettings = field(default_factory=RunSettings)
    reviewed: Mapping[str, Reviewed] | None = None
    allow_drift: bool = False
    allow_encrypted: bool = False  # --allow-encrypted-data-loss (engine/preflight.py)
    restore: Mapping[str, Restore] | None = None
    resume: str | None = None
