"""Detection end to end on the local transport: real sh, real dpkg-query, real SQLite ledger."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orchestrator.engine import runner
from orchestrator.engine import status as st
from orchestrator.errors import PlaybookError
from orchestrator.inventory.model import Host
from orchestrator.ledger import Ledger
from orchestrator.playbook.loader import load_playbooks

pytestmark = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs dpkg-query")

INFO = runner.RunInfo(
    operator="tester@example", command_line="kremove detect", inventory_digest="0" * 64
)

STATUS = """\
Package: kesl
Status: install ok installed
Architecture: amd64
Version: 12.1.0-1297
Maintainer: Test <t@example.org>
Description: simulated

Package: klnagent64
Status: install ok installed
Architecture: amd64
Version: 14.0.0-4646
Maintainer: Test <t@example.org>
Description: simulated
"""


def fake_dpkg(tmp_path: Path, status: str) -> Path:
    admin = tmp_path / "dpkg"
    (admin / "info").mkdir(parents=True)
    (admin / "updates").mkdir()
    (admin / "available").touch()
    (admin / "status").write_text(status)
    return admin


def local(name: str = "controller") -> Host:
    return Host(name=name, address="localhost", transport="local", port=0, platform="linux")


def test_host_with_kaspersky_packages_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DPKG_ADMINDIR", str(fake_dpkg(tmp_path, STATUS)))
    with Ledger.open(tmp_path / "ledger.db") as ledger:
        result = runner.detect([local()], playbooks=load_playbooks(), ledger=ledger, info=INFO)
        run = ledger.get_run(result.run_id)
    (outcome,) = result.outcomes
    assert outcome.status == st.FOUND
    assert {(f.product, f.version) for f in outcome.findings} == {
        ("kesl", "12.1.0-1297"),
        ("klnagent", "14.0.0-4646"),
    }
    assert run.hosts[0].status == "found"
    assert {f["evidence"]["package"] for f in run.hosts[0].findings} == {"kesl", "klnagent64"}
    (probe, step) = run.steps  # detection asks who the login is first (engine/privilege.py)
    assert probe.step_id == "privilege" and probe.readonly and "sudo -n" in probe.command
    assert step.readonly and step.exit_code == 0 and "dpkg-query -W" in step.command
    assert "dpkg\tkesl\t12.1.0-1297" in step.stdout


def test_clean_host_and_many_hosts_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DPKG_ADMINDIR", str(fake_dpkg(tmp_path, "")))
    hosts = [local(f"h{i}") for i in range(12)]
    with Ledger.open(tmp_path / "ledger.db") as ledger:
        result = runner.detect(hosts, playbooks=load_playbooks(), ledger=ledger, info=INFO, forks=4)
        summary = ledger.list_runs()[0]
    assert [o.host for o in result.outcomes] == [h.name for h in hosts]
    assert result.counts == {"clean": 12}
    assert summary.counts.get("clean") == 12 and summary.status == "completed"


def one_step_playbooks(tmp_path: Path, template: str, extra: str = "") -> Path:
    """A --playbooks directory whose Linux detect playbook runs one step with ``template``."""
    playbooks = tmp_path / "pb"
    (playbooks / "linux").mkdir(parents=True)
    (playbooks / "linux" / "detect.yml").write_text(
        "name: linux-detect\nplatform: linux\ndescription: test\nsteps:\n"
        f"  - {{id: only, kind: detect, readonly: true, template: linux/t.sh.j2{extra}}}\n"
    )
    (playbooks / "linux" / "t.sh.j2").write_text(template)
    return playbooks


def test_a_step_past_its_deadline_ends_timeout(tmp_path: Path) -> None:
    playbooks = one_step_playbooks(tmp_path, "sleep 60", ", timeout: 0.5")
    with Ledger.open(tmp_path / "ledger.db") as ledger:
        result = runner.detect(
            [local()], playbooks=load_playbooks([playbooks]), ledger=ledger, info=INFO
        )
        run = ledger.get_run(result.run_id)
    assert result.outcomes[0].status == st.TIMEOUT
    assert run.steps[0].timed_out and run.steps[0].exit_code is None


def test_template_error_stops_before_the_run_is_recorded(tmp_path: Path) -> None:
    playbooks = one_step_playbooks(tmp_path, "echo {{ host.vars.site }}")
    with Ledger.open(tmp_path / "ledger.db") as ledger:
        with pytest.raises(PlaybookError, match="host 'controller'"):
            runner.detect(
                [local()], playbooks=load_playbooks([playbooks]), ledger=ledger, info=INFO
            )
        assert ledger.list_runs() == []


def test_secrets_never_reach_the_ledger(tmp_path: Path) -> None:
    from orchestrator.engine.host import HostDriver, HostJob, HostRun, PreparedStep
    from orchestrator.playbook.model import Step
    from orchestrator.playbook.render import Renderer
    from orchestrator.secrets import Redactor, Secret
    from orchestrator.transports.connector import Connector

    value = "kl-Uninst4ll-S3cret"
    secret = Secret(value, "uninstall password")
    command = Renderer([]).render_string(
        "echo {{ pw | sh }}; echo {{ pw | sh }} >&2; exit 3", {"pw": secret}
    )
    step = Step(id="echo", kind="detect", readonly=True, template="-")
    job = HostJob(local(), "linux", (PreparedStep(step, command),))
    redactor = Redactor()
    redactor.add(secret)
    with Ledger.open(tmp_path / "ledger.db") as ledger:
        run_id = ledger.start_run(
            kind="detect",
            operator="t",
            command_line="t",
            inventory_digest="0",
            playbook_version="0",
            hosts=["controller"],
        )
        shared = HostRun(run_id, ledger, load_playbooks(), redactor, Connector(), 30)
        outcome = HostDriver(job, shared).drive()
        ledger.finish_run(run_id, "completed")
    assert outcome.status == st.FAILED and value not in (outcome.reason or "")
    for path in tmp_path.iterdir():  # the database and its WAL, byte for byte
        assert value.encode() not in path.read_bytes(), path.name
    with Ledger.open(tmp_path / "ledger.db") as ledger:
        step_record = ledger.get_run(run_id).steps[0]
    assert (
        step_record.stdout.strip() == "********"
        and step_record.command == "echo ********; echo ******** >&2; exit 3"
    )
