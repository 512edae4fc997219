"""Windows over OpenSSH: `kremove detect`, `plan` and `run` against real sshd processes whose login
shell is the WinRM test host's emulated cmd.exe (the fleet's windows_openssh kinds,
tests/fleet/windows_openssh.py), from an Ansible INI inventory that says only
``ansible_connection=ssh ansible_shell_type=cmd``.

Everything between kremove and the hosts is real: SSH with pinned host keys and the fleet's key,
the exec requests sshd logs, the batch scripts of the Windows playbooks, reg.exe/sc.exe/msiexec
output formats. The hosts' sshd is Linux's, which carries 8 bits of an exit code (Windows' carries
32): the msiexec codes kremove reports come from the script's own report.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.transports.windows_scripts import SWEEP
from tests.cli_runner import kremove, start
from tests.fleet import Fleet
from tests.fleet.windows_openssh import AGENT_PASSWORD_ENV, KES_PASSWORD_ENV
from tests.fleet.winrm_host.kinds import AGENT_CODE, KES_CODE

PLAIN = "windows_openssh"
PROTECTED = "windows_openssh_protected"
HANGING = "windows_openssh_hanging"
HOST_TIMEOUT = 8


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory({PLAIN: 1, PROTECTED: 1, HANGING: 1})


def name_of(fleet: Fleet, kind: str) -> str:
    return fleet.by_kind(kind)[0].name


def write_ini(fleet: Fleet, path: Path, shell_type: str = "cmd", **per_host: str) -> Path:
    """An Ansible INI inventory of the Windows hosts: ssh and a shell type, nothing else about
    Windows; the protected host references each product's password by an env lookup."""
    lines = ["[windows]"]
    for host in fleet.hosts:
        entry = f"{host.name} ansible_host={host.address} ansible_port={host.port}"
        if host.kind == PROTECTED:
            entry += (
                f" kremove_uninstall_password_kes_windows=\"{{{{ lookup('env', "
                f"'{KES_PASSWORD_ENV}') }}}}\" kremove_uninstall_password_klnagent=\"{{{{ "
                f"lookup('env', '{AGENT_PASSWORD_ENV}') }}}}\""
            )
        lines.append(entry + per_host.get(host.kind, ""))
    lines += [
        "",
        "[windows:vars]",
        "ansible_connection=ssh",
        f"ansible_shell_type={shell_type}",
        "ansible_user=kops",
        f"ansible_ssh_private_key_file={fleet.client_key}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, fleet: Fleet) -> Path:
    home = tmp_path_factory.mktemp("windows-openssh")
    write_ini(fleet, home / "site.ini")
    return home


def run_kremove(home: Path, fleet: Fleet, *args: str, env: dict[str, str] | None = None) -> Any:
    done = kremove(
        *args, "-i", str(home / "site.ini"), "--accept-new-hostkeys", "--json",
        home=home, env={**fleet.env, **(env or {})},
    )  # fmt: skip
    no_secrets(fleet, done.stdout, done.stderr)
    return done


def no_secrets(fleet: Fleet, *texts: str | bytes) -> None:
    for text in texts:
        blob = text.encode() if isinstance(text, str) else text
        for secret in fleet.secrets:
            assert secret.encode() not in blob


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {h["host"]: h["status"] for h in doc["hosts"]}


def msiexec(fleet: Fleet, name: str) -> list[dict[str, Any]]:
    return [e for e in fleet.windows.log(name) if e["event"] == "msiexec"]


@pytest.fixture(scope="module")
def detected(fleet: Fleet, home: Path) -> dict[str, Any]:
    done = run_kremove(home, fleet, "detect")
    assert done.returncode == 1, done.stderr  # products found
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


@pytest.fixture(scope="module")
def removed(fleet: Fleet, home: Path, detected: dict[str, Any]) -> dict[str, Any]:
    """First a run on the protected host whose agent password is wrong (KES goes, the agent
    fails 1603), then the run with each product's own password, over the hosts that do not hang."""
    protected = name_of(fleet, PROTECTED)
    wrong = {AGENT_PASSWORD_ENV: "not-" + fleet.env[AGENT_PASSWORD_ENV]}
    first = run_kremove(home, fleet, "run", "--limit", protected, "--yes", env=wrong)
    assert first.returncode == 1, first.stderr
    assert statuses(json.loads(first.stdout))[protected] == "failed"
    reason = next(h["reason"] for h in json.loads(first.stdout)["hosts"] if h["host"] == protected)
    # sshd carried 1603 & 0xFF = 67: the code kremove names is the script's own report.
    assert "exited 1603" in reason and "klnagent" in reason, reason
    assert [e["exit_code"] for e in msiexec(fleet, protected)] == [0, 1603]
    done = run_kremove(home, fleet, "run", "--limit", f"all:!{name_of(fleet, HANGING)}", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def test_the_shell_type_makes_the_host_windows(fleet: Fleet, home: Path):
    done = kremove("inventory", "check", "-i", str(home / "site.ini"), "--json", home=home)
    assert done.returncode == 0, done.stderr
    hosts = json.loads(done.stdout)["hosts"]
    assert {(h["transport"], h["platform"], h["shell_type"]) for h in hosts} == {
        ("ssh", "windows", "cmd")
    }


def test_detect_finds_kes_and_the_agent_over_ssh(fleet: Fleet, detected: dict[str, Any]):
    for host in detected["hosts"]:
        installed = {f["product"] for f in host["findings"] if f["kind"] == "installed"}
        wanted = (
            {"kes-windows"}
            if host["host"] == name_of(fleet, HANGING)
            else {"kes-windows", "klnagent"}
        )
        assert (host["status"], installed) == ("found", wanted), host
    kes = next(
        f
        for h in detected["hosts"]
        for f in h["findings"]
        if h["host"] == name_of(fleet, PLAIN) and f["product"] == "kes-windows"
    )
    assert kes["evidence"]["product_code"] == KES_CODE and kes["version"] == "12.4.0.467"
    for host in fleet.hosts:  # read-only: the probe and the detection script, nothing removed
        assert not msiexec(fleet, host.name)
        assert all("dpkg" not in c and "sudo" not in c for c in fleet.commands_log(host.name))


def test_plan_shows_msiexec_and_each_products_password_reference(fleet: Fleet, home: Path):
    done = kremove(
        "plan", "-i", str(home / "site.ini"), "--accept-new-hostkeys", home=home, env=fleet.env
    )
    assert done.returncode == 0, done.stderr
    no_secrets(fleet, done.stdout, done.stderr)
    assert '"%SystemRoot%\\System32\\msiexec.exe" /x ' + KES_CODE in done.stdout
    assert "dpkg" not in done.stdout and "sudo" not in done.stdout
    assert "administrator (login" in done.stdout  # the privilege probe's Windows verdict
    assert KES_PASSWORD_ENV in done.stdout and AGENT_PASSWORD_ENV in done.stdout


def test_run_removes_each_product_with_its_own_password(fleet: Fleet, removed: dict[str, Any]):
    assert statuses(removed) == {
        name_of(fleet, PLAIN): "removed",
        name_of(fleet, PROTECTED): "removed",
    }
    for kind in (PLAIN, PROTECTED):
        name = name_of(fleet, kind)
        assert fleet.windows.kaspersky_products(name) == {}, name
        assert "klnagent" not in fleet.windows.state(name)["services"]
    protected = msiexec(fleet, name_of(fleet, PROTECTED))
    assert [(e["product_code"], e["exit_code"]) for e in protected[-1:]] == [(AGENT_CODE, 0)]
    assert "KLUNINSTPASSWD" in protected[-1]["properties"]
    kes = [e for e in protected if e["product_code"] == KES_CODE]
    assert kes and {"KLLOGIN", "KLPASSWD"} <= set(kes[0]["properties"]) and kes[0]["exit_code"] == 0
    plain = msiexec(fleet, name_of(fleet, PLAIN))
    assert [e["product_code"] for e in plain] == [KES_CODE, AGENT_CODE]  # the catalog's order
    assert all(e["properties"] == ["REBOOT"] for e in plain)  # no password where none is given


def test_verify_and_a_new_detection_find_nothing(fleet: Fleet, home: Path, removed: dict[str, Any]):
    done = run_kremove(
        home, fleet, "detect", "--limit", f"{name_of(fleet, PLAIN)},{name_of(fleet, PROTECTED)}"
    )
    assert done.returncode == 0, done.stderr
    assert set(statuses(json.loads(done.stdout)).values()) == {"clean"}


def test_every_script_is_deleted_and_secrets_stay_off_command_lines(
    fleet: Fleet, home: Path, removed: dict[str, Any]
):
    kes_password = fleet.env[KES_PASSWORD_ENV][-8:]  # its random tail: no quoting changes it
    agent_hex = fleet.env[AGENT_PASSWORD_ENV].encode("utf-16-le").hex().upper()
    for host in fleet.hosts:
        if host.kind == HANGING:
            continue
        assert fleet.windows.leftovers(host.name) == [], host.name
        received = fleet.commands_log(host.name)  # what sshd was asked to run, as it logged it
        written = [c.rsplit('> "', 1)[1].rstrip('"') for c in received if "findstr /v" in c]
        deleted = [
            c.split('del /f /q "', 1)[1].rstrip('"') for c in received if c.startswith("del ")
        ]
        assert written and set(written) <= set(deleted), host.name
        no_secrets(fleet, "\n".join(received), "\n".join(fleet.windows.commands_log(host.name)))
        no_secrets(fleet, fleet.windows.printed(host.name))
    # Each password went to its own product's script only, through stdin.
    scripts = fleet.windows.scripts(name_of(fleet, PROTECTED))
    with_kes = [s for s in scripts if kes_password in s]
    with_agent = [s for s in scripts if agent_hex in s]
    assert with_kes and all(KES_CODE in s and AGENT_CODE not in s for s in with_kes)
    assert with_agent and all(AGENT_CODE in s and KES_CODE not in s for s in with_agent)
    for path in home.glob("l.db*"):
        no_secrets(fleet, path.read_bytes())


def test_a_timeout_ends_the_step_and_the_script_is_swept(
    fleet: Fleet, home: Path, removed: dict[str, Any]
):
    name = name_of(fleet, HANGING)
    started = time.monotonic()
    done = run_kremove(
        home, fleet, "run", "--limit", name, "--yes", "--host-timeout", str(HOST_TIMEOUT)
    )
    assert done.returncode == 1, done.stderr
    assert statuses(json.loads(done.stdout)) == {name: "timeout"}
    assert time.monotonic() - started < HOST_TIMEOUT + 20  # not the step's 30 minutes
    # The channel closed at the deadline; the connection's close swept the script (it held
    # nothing secret here, but it would) and msiexec's log beside it.
    assert any("msiexec.exe" in s for s in fleet.windows.scripts(name))
    assert fleet.windows.leftovers(name) == []
    assert fleet.commands_log(name)[-1] == SWEEP
    fleet.reset(name)


def test_a_script_left_behind_is_swept_at_the_next_connection(
    fleet: Fleet, tmp_path: Path, removed: dict[str, Any]
):
    name = name_of(fleet, HANGING)
    inventory = write_ini(fleet, tmp_path / "site.ini")
    proc = start(
        "run", "-i", str(inventory), "--limit", name, "--yes", "--accept-new-hostkeys",
        home=tmp_path, env=fleet.env, keep_output=False,
    )  # fmt: skip
    try:
        until = time.monotonic() + 60
        while not running_msiexec(fleet, name):
            assert proc.poll() is None and time.monotonic() < until, "the removal never started"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)  # no deletion, no close, no sweep
        proc.wait()
    (left,) = fleet.windows.leftovers(name)  # (its log too, which the host saves at the end)
    assert left.endswith(".cmd")
    before = len(fleet.commands_log(name))
    again = kremove(
        "detect", "-i", str(inventory), "--limit", name, "--accept-new-hostkeys", home=tmp_path,
        env=fleet.env,
    )  # fmt: skip
    assert again.returncode == 1, again.stderr  # KES is still there
    assert fleet.windows.leftovers(name) == []
    # The next connection's first script swept them before it was written.
    assert fleet.commands_log(name)[before].startswith(SWEEP + " & findstr /v ")
    fleet.reset(name)


def running_msiexec(fleet: Fleet, name: str) -> bool:
    """The host received the line that runs a script calling msiexec (which hangs there)."""
    scripts = [s for s in fleet.windows.scripts(name) if "msiexec.exe" in s]
    received = fleet.commands_log(name)
    return bool(scripts) and bool(received) and received[-1].startswith("echo kremove-run-")


def test_powershell_is_refused_in_one_line(fleet: Fleet, tmp_path: Path):
    inventory = write_ini(fleet, tmp_path / "site.ini", shell_type="powershell")
    sent = {h.name: len(fleet.commands_log(h.name)) for h in fleet.hosts}
    done = kremove("detect", "-i", str(inventory), home=tmp_path, env=fleet.env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "ansible_shell_type=cmd" in lines[0] and "site.ini:" in lines[0]
    assert {h.name: len(fleet.commands_log(h.name)) for h in fleet.hosts} == sent


def test_a_windows_host_taken_for_linux_stops_at_its_first_command(fleet: Fleet, tmp_path: Path):
    name = name_of(fleet, PLAIN)
    fleet.reset(name)
    known = fleet.write_known_hosts(tmp_path / "known_hosts")
    inventory = fleet.write_inventory(tmp_path / "fleet.yml", known_hosts=known, include=[name])
    text = inventory.read_text().replace("    platform: windows\n", "")
    inventory.write_text(text.replace("  platform: linux\n", ""))
    done = kremove("run", "-i", str(inventory), "--yes", "--json", home=tmp_path, env=fleet.env)
    assert done.returncode == 1, done.stderr
    host = json.loads(done.stdout)["hosts"][0]
    assert host["status"] == "failed"
    assert "answers as Windows' cmd.exe does" in host["reason"]
    assert "platform: windows" in host["reason"]
    assert len(fleet.commands_log(name)) == 1  # the read-only privilege probe, nothing after
    assert fleet.windows.kaspersky_products(name) != {}
