"""What the engine tests share: the built-in playbooks (loaded once per module), a fresh ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.ledger import Ledger
from orchestrator.playbook.loader import PlaybookSet, load_playbooks


@pytest.fixture(scope="module")
def playbooks() -> PlaybookSet:
    return load_playbooks()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(tmp_path / "ledger.db") as book:
        yield book
