"""How --resume and --plan take a stored run's settings back: in-process, no fleet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.engine import runner
from orchestrator.engine.settings import (
    RunSettings,
    refuse_both,
    restore,
    resume_order,
    run_meta,
    source_run,
)
from orchestrator.errors import InputError
from orchestrator.inventory.model import Host
from orchestrator.ledger import HostRecord, RunDetail


def stored(
    meta: dict[str, Any], *, kind: str = "run", status: str = "halted", hosts: tuple[str, ...] = ()
) -> RunDetail:
    return RunDetail(
        id="20261125T120000-ab12",
        kind=kind,
        status=status,
        started="2026-11-25T12:00:00Z",
        finished=None,
        operator="alice@ops",
        command_line="kremove run",
        inventory_digest="0" * 64,
        playbook_version="1",
        meta=meta,
        hosts=[HostRecord(h, None, None, [], None, None) for h in hosts],
        steps=[],
    )


META = {
    "inventory": ["/srv/fleet.yml"],
    "limit": "web",
    "playbooks": ["/srv/playbooks"],
    "uninstall_password_env": "KLPASS",
    "uninstall_password_file": None,
    "batches": "1,100%",
    "max_fail": "2",
    "window": "22:00-06:00",
    "tz": "local time",
    "forks": 7,
    "host_timeout": 30.0,
}


class Book:
    """The one ledger method source_run needs."""

    def __init__(self, run: RunDetail) -> None:
        self.run = run

    def get_run(self, run_id: str) -> RunDetail:
        assert self.run.id.startswith(run_id)
        return self.run


def test_resume_restores_the_stored_settings() -> None:
    settings = restore(RunSettings(), stored(META), resume=True)
    assert settings == RunSettings(
        inventory=(Path("/srv/fleet.yml"),),
        limit="web",
        playbooks=(Path("/srv/playbooks"),),
        uninstall_password_env="KLPASS",
        batches="1,100%",
        max_fail="2",
        window="22:00-06:00",
        tz=None,  # "local time" is what a run without --tz records
        forks=7,
        host_timeout=30.0,
    )


def test_flags_given_win_except_forks_and_host_timeout_of_a_resumed_run() -> None:
    given = RunSettings(limit="db", batches="5", forks=99, host_timeout=5.0)
    settings = restore(given, stored(META), resume=True)
    assert (settings.limit, settings.batches) == ("db", "5")
    assert (settings.forks, settings.host_timeout) == (7, 30.0)


def test_a_plan_gives_its_selection_but_not_its_staging() -> None:
    settings = restore(RunSettings(batches="3"), stored(META, kind="plan"), resume=False)
    assert settings.inventory == (Path("/srv/fleet.yml"),) and settings.limit == "web"
    assert (settings.batches, settings.max_fail, settings.window) == ("3", None, None)
    assert settings.forks == runner.DEFAULT_FORKS
    assert settings.host_timeout == runner.DEFAULT_HOST_TIMEOUT


def test_resume_and_plan_together_are_refused() -> None:
    with pytest.raises(InputError, match="cannot be combined"):
        refuse_both("A", "B")
    with pytest.raises(InputError, match="cannot be combined"):
        source_run(Book(stored(META)), "A", "B")  # type: ignore[arg-type]


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_a_finished_run_cannot_be_resumed(status: str) -> None:
    with pytest.raises(InputError, match=f"is {status}; only a halted"):
        source_run(Book(stored(META, status=status)), "2026", None)  # type: ignore[arg-type]


def test_only_a_plan_is_executed_with_plan() -> None:
    with pytest.raises(InputError, match="is a run run, not a plan"):
        source_run(Book(stored(META)), None, "2026")  # type: ignore[arg-type]


def test_a_run_without_its_inventory_needs_one_given() -> None:
    with pytest.raises(InputError, match="does not record its inventory"):
        restore(RunSettings(), stored({}), resume=True)


def host(name: str) -> Host:
    return Host(name=name, address="localhost", transport="local", port=0, platform="linux")


def test_resume_keeps_the_runs_host_order_and_needs_every_host() -> None:
    run = stored(META, hosts=("c", "a", "b"))
    ordered = resume_order([host("a"), host("b"), host("c"), host("d")], run)
    assert [h.name for h in ordered] == ["c", "a", "b"]
    with pytest.raises(InputError, match="hosts b are no longer in the inventory"):
        resume_order([host("a"), host("c")], run)


def test_the_meta_a_run_keeps_is_what_restore_reads(tmp_path: Path) -> None:
    given = RunSettings(inventory=(tmp_path / "inv.yml",), limit="x", uninstall_password_env="E")
    meta = run_meta([host("a")], given)
    assert meta["groups"] == {"a": []} and meta["tls_validation_off"] == []
    again = restore(RunSettings(), stored(meta, kind="plan"), resume=False)
    assert again.inventory == (tmp_path / "inv.yml",) and again.limit == "x"
    assert again.uninstall_password_env == "E"
