"""Privilege: the verdict each probe answer leads to, and in-process runs that never send a changing
step a host's login cannot carry out (it is refused first, as skipped) and become root where the
inventory said nothing and sudo -n works."""

from __future__ import annotations

import dataclasses

from orchestrator.engine import runner
from orchestrator.engine.privilege import Verdict, decide, unprobed
from orchestrator.inventory.model import Become, Host, SecretRef
from orchestrator.ledger import Ledger
from orchestrator.playbook.loader import PlaybookSet
from orchestrator.playbook.parsers.privilege import Privilege
from orchestrator.transports.base import CommandResult, Deadline, Transport
from tests.engine.fakes import (
    DETECT,
    KESL,
    NOTHING,
    PROBE,
    FakeFleet,
    FakeHost,
    FakeTransport,
    Reply,
)

INFO = runner.RunInfo(operator="t@x", command_line="kremove run", inventory_digest="0" * 64)
AUTO = Become(enabled=True, auto=True)
NOPASSWD = "login\tops\t1001\nsudo\tok\t0\n"
PASSWORD = (
    "login\tops\t1001\nsudo\trefused\tsudo: a password is required\n"
    "sudo_list\tsudo: a password is required\n"
)


def ssh(become: Become = AUTO, *given: str) -> Host:
    return Host(name="h", address="h", become=become, given=frozenset(given))


def shown(host: Host, access: str, detail: str = "") -> Verdict:
    return decide(host, Privilege("ops", access, detail))  # type: ignore[arg-type]


def test_root_and_passwordless_sudo_can_remove() -> None:
    assert shown(ssh(), "root") == Verdict(True, False, "root", "ops", "root")
    auto = shown(ssh(), "nopasswd")
    assert (auto.ok, auto.become, auto.shown) == (True, True, "sudo (passwordless, automatic)")
    said = shown(ssh(Become(enabled=True), "become.enabled"), "nopasswd")
    assert (said.ok, said.become, said.shown) == (True, True, "sudo (passwordless)")


def test_a_password_needs_a_source_and_the_verdict_names_it() -> None:
    missing = shown(ssh(), "password")
    assert not missing.ok and missing.shown.startswith("MISSING: login 'ops' is not root")
    assert "pass -K" in missing.shown and "ansible_become_password" in missing.shown
    asked = ssh(dataclasses.replace(AUTO, password=SecretRef(prompt=True)))
    assert shown(asked, "password").shown == "sudo (password from -K)"
    filed = ssh(dataclasses.replace(AUTO, password=SecretRef(file="/run/pw")))
    assert shown(filed, "password").shown == "sudo (password from --become-password-file)"
    written = ssh(dataclasses.replace(AUTO, password=SecretRef(env="PW")), "become.password")
    assert shown(written, "password").shown == "sudo (password from the inventory's env:PW)"
    local = dataclasses.replace(asked, transport="local")
    assert "local transport cannot give" in shown(local, "password").shown


def test_what_cannot_become_root_is_missing_with_the_fix() -> None:
    off = shown(ssh(Become(enabled=False), "become.enabled"), "nopasswd")
    assert not off.ok and "turns become off; set become: true (ansible_become=true)" in off.shown
    other = shown(ssh(dataclasses.replace(AUTO, user="postgres")), "nopasswd")
    assert not other.ok and "--become-user root" in other.shown
    for access in ("denied", "missing"):
        verdict = shown(ssh(), access, "sudo said no")
        assert not verdict.ok and "-u USER, ansible_user" in verdict.shown
    winrm = dataclasses.replace(ssh(Become()), transport="winrm")
    assert shown(winrm, "admin").ok
    refused = shown(winrm, "not_admin", "not a member of Administrators")
    assert not refused.ok and "member of Administrators" in refused.shown
    assert refused.refusal.startswith("refused before any change: privilege MISSING:")


def test_without_a_probe_become_is_what_the_inventory_said() -> None:
    assert unprobed(ssh()).become is False  # automatic become needs the probe
    assert unprobed(ssh(Become(enabled=True))).become is True
    assert unprobed(ssh()).ok


SENT: list[tuple[str, str, bool]] = []  # (host, command, through sudo), per test


class Recording(FakeFleet):
    """The fake fleet, remembering for each command whether it was asked to go through sudo."""

    def for_host(self, host: Host) -> Transport:
        self.check(host)
        return RecordingTransport(host, self.scripts[host.name], self)


class RecordingTransport(FakeTransport):
    def run(
        self, command: str, deadline: Deadline, stdin: bytes | None = None, *, become: bool = False
    ) -> CommandResult:
        SENT.append((self.host.name, command, become))
        return super().run(command, deadline, stdin, become=become)


def fleet() -> Recording:
    def host(probe: str) -> FakeHost:
        return FakeHost([(PROBE, [Reply(probe)]), (DETECT, [Reply(KESL), Reply(NOTHING)])])

    return Recording({"sudoer": host(NOPASSWD), "needs-pw": host(PASSWORD)})


def automatic(hosts: list[Host]) -> list[Host]:
    """The hosts as the command line gives them when nothing says anything about become."""
    return [dataclasses.replace(h, become=AUTO) for h in hosts]


def test_run_becomes_root_where_sudo_works_and_refuses_the_rest_before_any_change(
    ledger: Ledger, playbooks: PlaybookSet
) -> None:
    SENT.clear()
    viewed, fake = fleet(), fleet()  # each host's script answers one detection and one verify
    planned = runner.plan(
        automatic(viewed.hosts()), playbooks=playbooks, ledger=ledger, info=INFO, connector=viewed
    )
    done = runner.run(
        automatic(fake.hosts()), playbooks=playbooks, ledger=ledger, info=INFO, connector=fake
    )
    for result in (planned, done):
        by_host = {o.host: o for o in result.outcomes}
        refused = by_host["needs-pw"]
        assert refused.status == "skipped"
        assert (refused.reason or "").startswith("refused before any change: privilege MISSING")
        assert {f.product for f in refused.findings} == {"kesl"}  # the product is still there
    assert {o.host: o.status for o in planned.outcomes}["sudoer"] == "planned"
    assert {o.host: o.status for o in done.outcomes}["sudoer"] == "removed"
    changing = [(h, c, b) for h, c, b in SENT if "dpkg --purge" in c]
    assert changing and all(h == "sudoer" and become for h, _, become in changing)
    probes = [(h, b) for h, c, b in SENT if PROBE in c]
    assert probes and not any(b for _, b in probes)  # the probe asks as the login itself
    detail = {e.host: e.detail for e in ledger.get_run(done.run_id).events if e.kind == "privilege"}
    assert detail["sudoer"]["shown"] == "sudo (passwordless, automatic)"
    assert detail["needs-pw"]["ok"] is False and detail["needs-pw"]["login"] == "ops"
