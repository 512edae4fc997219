"""Plan review in-process: a saved plan becomes what `run --plan` holds each host to, and a host
whose findings changed since is skipped as drifted (local transport, real dpkg-query)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.engine import review, runner
from orchestrator.engine import status as st
from orchestrator.inventory.model import Host
from orchestrator.ledger import HostRecord, Ledger, RunDetail
from orchestrator.playbook.loader import load_playbooks
from tests.engine.test_prepare import INFO, fake_dpkg, local
from tests.engine.test_settings import stored

KESL = """\
Package: kesl
Status: install ok installed
Architecture: amd64
Version: {version}
Maintainer: Test <t@example.org>
Description: simulated
"""


def plan_record(hosts: list[HostRecord]) -> RunDetail:
    return replace(stored({}, kind="plan", status="completed"), hosts=hosts)


def test_reviewed_keeps_installed_findings_and_the_commands_shown() -> None:
    installed = {"product": "kesl", "version": "12", "kind": "installed", "evidence": {}}
    residue = {"product": "kesl", "version": "", "kind": "residue", "evidence": {"path": "/x"}}
    steps = [{"step": "remove", "readonly": False, "command": "dpkg --purge kesl"}]
    plan = plan_record(
        [
            HostRecord("web1", "planned", None, [installed, residue], None, None, plan=steps),
            HostRecord("web2", None, None, [], None, None),
        ]
    )
    reviewed = review.reviewed(plan)
    assert reviewed["web1"].status == "planned"
    assert reviewed["web1"].findings == (("kesl", "12", ""),)
    assert reviewed["web1"].steps == ("dpkg --purge kesl",)
    assert reviewed["web2"].status == "pending" and reviewed["web2"].steps == ()


def test_planned_hosts_are_the_plans_or_else_all() -> None:
    hosts = [Host(name=n, address="h", transport="local", port=0) for n in ("a", "b")]
    plan = review.reviewed(plan_record([HostRecord("b", "clean", None, [], None, None)]))
    assert [h.name for h in review.planned_hosts(hosts, plan)] == ["b"]
    assert [h.name for h in review.planned_hosts(hosts, {})] == ["a", "b"]


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs dpkg-query")
def test_a_host_whose_findings_changed_since_the_plan_is_skipped_as_drifted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = fake_dpkg(tmp_path, KESL.format(version="12.1.0-1297"))
    monkeypatch.setenv("DPKG_ADMINDIR", str(admin))
    content = load_playbooks()
    with Ledger.open(tmp_path / "ledger.db") as ledger:
        planned = runner.plan([local()], playbooks=content, ledger=ledger, info=INFO)
        reviewed = review.reviewed(ledger.get_run(planned.run_id))
        assert reviewed["controller"].status == st.PLANNED and reviewed["controller"].steps
        (admin / "status").write_text(KESL.format(version="12.2.0-2000"))
        result = runner.run(
            [local()], playbooks=content, ledger=ledger, info=INFO, reviewed=reviewed
        )
    (outcome,) = result.outcomes
    assert outcome.status == st.SKIPPED
    assert outcome.reason is not None and outcome.reason.startswith("drifted: found kesl")
