"""Privilege on the fleet, with an Ansible INI inventory that logs in as the non-root user kops and
says nothing about become (in Ansible, become lives in the playbook).

plan shows each host's privilege and never promises a removal run would refuse; run becomes root
with sudo on the host whose sudo needs no password (its command log shows sudo) and refuses the
others before any change (skipped, never failed); with the sudo password (a 0600 file, or -K on
a pseudo-terminal) the password-sudo host is removed too; the password is in no output, ledger
or log. The command line's -u and --private-key stand in for an inventory that names neither.
"""

from __future__ import annotations

import json
import os
import pty
import select
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import KREMOVE, cli_env, kremove
from tests.fleet.fleet import SUDO_PASSWORD_ENV, Fleet
from tests.fleet.winrm_host import WinrmFleet

KINDS = {"one_product": 1, "sudo_password": 1, "no_sudo": 1}
CHANGING = ("dpkg --purge", "rm -rf", "rmdir")


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(KINDS)


@pytest.fixture
def home(fleet: Fleet, tmp_path: Path) -> Iterator[Path]:
    """An operator's home: the fleet's host keys in ~/.ssh/known_hosts, as ssh would keep them."""
    (tmp_path / ".ssh").mkdir()
    fleet.write_known_hosts(tmp_path / ".ssh" / "known_hosts")
    yield tmp_path
    fleet.reset()


def ini(fleet: Fleet, path: Path, *, login: bool = True, extra: str = "") -> Path:
    """The fleet as an Ansible INI inventory: kops and its key in [linux:vars] (unless ``login``
    is false), nothing about become."""
    lines = ["[linux]"]
    lines += [
        f"{h.name} ansible_host={h.address} ansible_port={h.port}{extra}" for h in fleet.hosts
    ]
    if login:
        lines += ["", "[linux:vars]", "ansible_user=kops"]
        lines += [f"ansible_ssh_private_key_file={fleet.client_key}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def by_kind(fleet: Fleet, doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {fleet.host(h["host"]).kind: h for h in doc["hosts"]}


def sent(fleet: Fleet, kind: str) -> list[str]:
    return fleet.commands_log(fleet.by_kind(kind)[0].name)


def untouched(fleet: Fleet, kind: str) -> bool:
    host = fleet.by_kind(kind)[0]
    changed = [c for c in sent(fleet, kind) if any(word in c for word in CHANGING)]
    return not changed and fleet.kaspersky_packages(host.name) == host.expected_packages


def password_file(fleet: Fleet, home: Path) -> Path:
    path = home / "become-password"
    path.write_text(fleet.env[SUDO_PASSWORD_ENV] + "\n")
    path.chmod(0o600)
    return path


def test_plan_shows_each_hosts_privilege_and_promises_only_what_run_will_do(
    fleet: Fleet, home: Path
) -> None:
    inventory = ini(fleet, home / "hosts.ini")
    done = kremove("plan", "-i", str(inventory), "--json", home=home)
    assert done.returncode == 1, done.stderr  # two hosts will not be removed: not all planned
    hosts = by_kind(fleet, json.loads(done.stdout))
    sudoer = hosts["one_product"]
    assert sudoer["status"] == "planned"
    assert sudoer["privilege"]["shown"] == "sudo (passwordless, automatic)"
    assert sudoer["privilege"]["login"] == "kops" and sudoer["privilege"]["ok"] is True
    assert all(step["become"] for step in sudoer["steps"])
    for kind in ("sudo_password", "no_sudo"):
        refused = hosts[kind]
        assert refused["status"] == "skipped" and refused["steps"] == []
        assert refused["reason"].startswith("refused before any change: privilege MISSING: ")
        assert "login 'kops' is not root" in refused["reason"] and "-K" in refused["reason"]
        assert refused["privilege"]["ok"] is False
        installed = {f["product"] for f in refused["findings"] if f["kind"] == "installed"}
        assert installed == {"kesl"}  # found all the same
    human = kremove("plan", "-i", str(inventory), home=home)
    assert "privilege  sudo (passwordless, automatic)" in human.stdout
    assert "privilege  MISSING: login 'kops' is not root and sudo -n wants a password" in (
        human.stdout
    )
    assert all(untouched(fleet, kind) for kind in KINDS)


def test_run_removes_with_sudo_where_it_works_and_refuses_the_others_up_front(
    fleet: Fleet, home: Path
) -> None:
    inventory = ini(fleet, home / "hosts.ini")
    done = kremove("run", "-i", str(inventory), "--yes", "--json", home=home)
    assert done.returncode == 1, done.stderr
    hosts = by_kind(fleet, json.loads(done.stdout))
    assert {kind: h["status"] for kind, h in hosts.items()} == {
        "one_product": "removed",
        "sudo_password": "skipped",
        "no_sudo": "skipped",
    }
    assert fleet.kaspersky_packages(fleet.by_kind("one_product")[0].name) == {}
    purges = [c for c in sent(fleet, "one_product") if "dpkg --purge" in c]
    assert purges and all(c.startswith("sudo -n -H -u root -- /bin/sh -c ") for c in purges)
    probe = sent(fleet, "one_product")[0]
    assert "sudo -n -l" in probe and not probe.startswith("sudo ")  # asked as kops itself
    for kind in ("sudo_password", "no_sudo"):
        assert hosts[kind]["reason"].startswith("refused before any change: privilege MISSING")
        assert untouched(fleet, kind)  # never sent a changing step, the product still there


def test_with_the_sudo_password_from_a_file_the_password_host_is_removed_too(
    fleet: Fleet, home: Path
) -> None:
    inventory = ini(fleet, home / "hosts.ini")
    secret = password_file(fleet, home)
    try:
        done = kremove(
            "run", "-i", str(inventory), "--yes", "--json", "--become-password-file", str(secret),
            home=home,
        )  # fmt: skip
    finally:
        secret.unlink()  # what the session's secret scan would find is only the operator's file
    hosts = by_kind(fleet, json.loads(done.stdout))
    assert hosts["sudo_password"]["status"] == "removed", hosts["sudo_password"]
    assert hosts["one_product"]["status"] == "removed"
    # kops is in no sudoers rule: sudo takes the password, then refuses, before any change
    refused = hosts["no_sudo"]
    assert refused["status"] == "auth_failed"
    assert "kops is not in the sudoers file" in refused["reason"], refused
    assert "log in as root" in refused["reason"] and untouched(fleet, "no_sudo")
    assert done.returncode == 1
    run = kremove("runs", "show", json.loads(done.stdout)["run"], "--json", home=home)
    verdicts = {
        fleet.host(e["host"]).kind: e["detail"]["shown"]
        for e in json.loads(run.stdout)["events"]
        if e["kind"] == "privilege"
    }
    assert verdicts["sudo_password"] == "sudo (password from --become-password-file)"
    no_secret(fleet, home, done.stdout + done.stderr + run.stdout)


def test_ask_become_pass_on_a_terminal_asks_once_and_removes(fleet: Fleet, home: Path) -> None:
    inventory = ini(fleet, home / "hosts.ini")
    host = fleet.by_kind("sudo_password")[0].name
    args = ["run", "-i", str(inventory), "--limit", host, "--yes", "--json", "-K"]
    status, screen = on_terminal(args, home, answer=fleet.env[SUDO_PASSWORD_ENV])
    assert status == 0, screen
    assert screen.count("sudo password:") == 1  # asked once, not echoed
    assert '"status": "removed"' in screen
    assert fleet.kaspersky_packages(host) == {}
    no_secret(fleet, home, screen)
    refused = kremove("run", "-i", str(inventory), "--limit", host, "--yes", "-K", home=home)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1  # no terminal: one line
    assert "-K/--ask-become-pass needs a terminal" in refused.stderr
    assert "--become-password-file" in refused.stderr


def test_user_and_private_key_on_the_command_line_when_the_inventory_names_neither(
    fleet: Fleet, home: Path
) -> None:
    inventory = ini(fleet, home / "bare.ini", login=False)
    key = ["-u", "kops", "--private-key", str(fleet.client_key)]
    done = kremove("plan", "-i", str(inventory), *key, "--json", home=home)
    hosts = by_kind(fleet, json.loads(done.stdout))
    assert hosts["one_product"]["privilege"]["login"] == "kops"
    assert hosts["one_product"]["status"] == "planned"
    # ansible_become=false in the inventory wins over -b: refused, naming the inventory setting
    said = ini(fleet, home / "said.ini", extra=" ansible_become=false")
    done = kremove("plan", "-i", str(said), "-b", "--json", home=home)
    sudoer = by_kind(fleet, json.loads(done.stdout))["one_product"]
    assert sudoer["status"] == "skipped" and "ansible_become=true" in sudoer["reason"]


def on_terminal(args: list[str], home: Path, *, answer: str) -> tuple[int, str]:
    """Run kremove on a pseudo-terminal, typing ``answer`` at its password prompt."""
    env = cli_env(home=home, plain=True)
    env.pop("CI", None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: kremove, with the pty as its terminal
        try:
            os.chdir(home)
            os.execve(KREMOVE, [KREMOVE, *args], env)
        finally:
            os._exit(127)
    screen, typed, give_up = b"", False, time.monotonic() + 300
    try:
        while time.monotonic() < give_up:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:  # the child closed the terminal: it is done
                break
            if not data:
                break
            screen += data
            if not typed and b"password:" in screen:
                os.write(fd, answer.encode() + b"\n")
                typed = True
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), screen.decode("utf-8", "replace")


def no_secret(fleet: Fleet, home: Path, *texts: str) -> None:
    """The sudo password in nothing kremove printed or wrote (the ledger, its WAL, logs)."""
    password = fleet.env[SUDO_PASSWORD_ENV]
    written = [p.read_bytes() for p in home.rglob("*") if p.is_file()]
    assert len(written) > 2  # the ledger and its WAL at least
    assert not [t for t in texts if password in t]
    assert not [b for b in written if password.encode() in b]


def test_a_winrm_login_that_is_no_administrator_is_refused_before_any_change(
    winrm_fleet_factory: Callable[..., WinrmFleet], tmp_path: Path
) -> None:
    windows = winrm_fleet_factory({"kes_and_agent": 1, "not_admin": 1})
    inventory = windows.write_inventory(tmp_path / "windows.yml")
    planned = kremove("plan", "-i", str(inventory), "--json", home=tmp_path, env=windows.env)
    hosts = {windows.host(h["host"]).kind: h for h in json.loads(planned.stdout)["hosts"]}
    admin, user = hosts["kes_and_agent"], hosts["not_admin"]
    assert admin["status"] == "planned" and admin["privilege"]["access"] == "admin"
    assert admin["privilege"]["shown"].startswith("administrator (login ")
    assert user["status"] == "skipped" and user["steps"] == []
    assert "is not an elevated administrator (not a member of Administrators)" in user["reason"]
    done = kremove("run", "-i", str(inventory), "--yes", "--json", home=tmp_path, env=windows.env)
    assert done.returncode == 1, done.stderr
    ran = {windows.host(h["host"]).kind: h["status"] for h in json.loads(done.stdout)["hosts"]}
    assert ran == {"kes_and_agent": "removed", "not_admin": "skipped"}
    refused = windows.by_kind("not_admin")[0].name
    removed = windows.by_kind("kes_and_agent")[0].name
    assert [s for s in windows.scripts(removed) if "msiexec" in s.lower()]
    assert not [s for s in windows.scripts(refused) if "msiexec" in s.lower()]
    assert len(windows.kaspersky_products(refused)) == 2  # KES and the agent, still there
