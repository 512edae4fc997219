"""Fixtures for the ledger tests: a real SQLite ledger in tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from orchestrator.ledger import Ledger

StartRun = Callable[..., str]


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ledger.db"


@pytest.fixture
def ledger(ledger_path: Path) -> Iterator[Ledger]:
    with Ledger.open(ledger_path) as opened:
        yield opened


@pytest.fixture
def start() -> StartRun:
    """Start a run with typical parameters; only hosts and kind vary between tests."""

    def start_run(ledger: Ledger, hosts: Sequence[str] = ("web1", "db1"), kind: str = "run") -> str:
        return ledger.start_run(
            kind=kind,
            operator="alice",
            command_line="kremove run -i inv.yml --batches 1,100%",
            inventory_digest="sha256:0f1e",
            playbook_version="2026.11.1",
            hosts=hosts,
            meta={"batches": [1, "100%"], "window": None},
        )

    return start_run
