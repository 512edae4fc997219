"""The simulated SSH fleet itself, checked with the real OpenSSH client (loopback only)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from orchestrator.inventory import load_inventories
from tests.cli_runner import kremove
from tests.fleet import (
    KEY_PASSPHRASE_ENV,
    KINDS,
    PASSWORD_ENV,
    SUDO_PASSWORD_ENV,
    WRONG_SUDO_PASSWORD_ENV,
    Fleet,
    FleetHost,
    procs,
    pytest_plugin,
    system,
)
from tests.fleet.fleet import parse_kinds
from tests.fleet.pytest_plugin import FleetFactory

ROOT = Path(__file__).resolve().parents[2]
REAL_DPKG_STATUS = Path("/var/lib/dpkg/status")
KESL = {"kesl": "12.1.0-1297"}


def one(fleet: Fleet, kind: str) -> FleetHost:
    return fleet.by_kind(kind)[0]


@pytest.fixture(scope="module")
def known_hosts(small_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_fleet.write_known_hosts(tmp_path_factory.mktemp("client") / "known_hosts")


@pytest.fixture(scope="module")
def ssh_config(small_fleet: Fleet, known_hosts: Path) -> Path:
    return small_fleet.write_ssh_config(known_hosts.parent / "ssh_config", known_hosts=known_hosts)


def ssh(
    host: FleetHost,
    command: str,
    known_hosts: Path,
    *,
    options: Sequence[str] = (),
    key: Path | None = None,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 30,
) -> subprocess.CompletedProcess[str]:
    """The real OpenSSH client with strict host key checking against the fleet's known_hosts."""
    argv = [
        "ssh",
        "-F",
        "/dev/null",
        *options,  # first: for each option ssh keeps the first value it is given
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "ConnectTimeout=10",
        "-i",
        str(key or host.key_file or "/dev/null"),
        "-p",
        str(host.port),
        f"{host.user}@{host.address}",
        command,
    ]
    return subprocess.run(
        argv,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=None if input is not None else subprocess.DEVNULL,
    )


@pytest.fixture
def restore(small_fleet: Fleet) -> Iterator[list[str]]:
    """Hosts a test changed; they are reset to their kind's state afterwards."""
    changed: list[str] = []
    yield changed
    for name in changed:
        small_fleet.reset(name)


def test_every_kind_comes_up_with_its_packages(small_fleet: Fleet) -> None:
    assert sorted({h.kind for h in small_fleet.hosts}) == sorted(KINDS)
    for host in small_fleet.hosts:
        assert small_fleet.running(host.name), host.name
        if host.has_system:
            assert small_fleet.kaspersky_packages(host.name) == host.expected_packages, host.name
            assert host.host_key_fingerprint and host.host_key_fingerprint.startswith("SHA256:")
    assert one(small_fleet, "several_products").expected_packages == {
        "kesl": "12.1.0-1297",
        "kesl-gui": "12.1.0-1297",
        "klnagent64": "14.0.0-4646",
    }
    assert small_fleet.files_exist(one(small_fleet, "one_product").name, "/opt/kaspersky/kesl")
    assert not small_fleet.files_exist(one(small_fleet, "clean").name, "/opt/kaspersky")


def test_hosts_have_a_lean_consistent_dpkg_database(small_fleet: Fleet, known_hosts: Path) -> None:
    host = one(small_fleet, "one_product")
    installed = small_fleet.dpkg_status(host.name)
    machine = {
        line.split(": ", 1)[1]
        for line in REAL_DPKG_STATUS.read_text().splitlines()
        if line.startswith("Package: ")
    }
    assert {"dpkg", "coreutils", "sudo", "openssh-server", "python3", "kesl"} <= set(installed)
    assert len(installed) < len(machine) / 2, (len(installed), len(machine))
    # Nothing broken for apt-get, and the machine's own file lists stay hidden from the host.
    check = ssh(host, "sudo -n apt-get check -q", known_hosts)
    assert check.returncode == 0, check.stdout + check.stderr
    info = Path("/var/lib/dpkg/info")
    hidden = next(  # a file list this machine has, of a package the host does not
        f"{info}/{name}.list"
        for name in sorted(set(machine) - set(installed))
        if (info / f"{name}.list").exists()
    )
    assert ssh(host, f"test ! -e {hidden}", known_hosts).returncode == 0, hidden
    assert ssh(host, "test -f /var/lib/dpkg/info/kesl.list", known_hosts).returncode == 0


def test_fingerprints_are_what_ssh_keygen_prints(small_fleet: Fleet) -> None:
    host = one(small_fleet, "clean")
    pub = small_fleet.workdir / "hosts" / host.name / "run" / "ssh_host_ed25519_key.pub"
    printed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(pub)], capture_output=True, text=True, check=True
    ).stdout
    assert printed.split()[1] == host.host_key_fingerprint


def test_inventory_is_accepted_by_kremove(small_fleet: Fleet, known_hosts: Path) -> None:
    path = small_fleet.write_inventory(
        known_hosts.parent / "inventory.yml", known_hosts=known_hosts
    )
    inventory = load_inventories([path])
    assert set(inventory.hosts) == {h.name for h in small_fleet.hosts}
    for host in small_fleet.hosts:
        loaded = inventory.hosts[host.name]
        assert (loaded.address, loaded.port, loaded.user) == (host.address, host.port, "kops")
        assert loaded.known_hosts == str(known_hosts.resolve())
        assert loaded.become.enabled
        assert host.kind in loaded.groups
    password_only = inventory.hosts[one(small_fleet, "password_only").name]
    assert password_only.key_file is None and password_only.password
    assert password_only.password.env == PASSWORD_ENV
    wrong = inventory.hosts[one(small_fleet, "wrong_sudo_password").name].become.password
    assert wrong is not None and wrong.env == WRONG_SUDO_PASSWORD_ENV
    behind = one(small_fleet, "behind_jump")
    assert inventory.hosts[behind.name].jump == behind.jump == one(small_fleet, "jump").name

    only = small_fleet.write_inventory(known_hosts.parent / "only.yml", include=["behind_jump"])
    assert set(load_inventories([only]).hosts) == {behind.name, behind.jump}
    done = kremove("inventory", "check", "-i", str(path), env=small_fleet.env, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ssh_with_strict_host_keys_sees_kesl(small_fleet: Fleet, known_hosts: Path) -> None:
    host = one(small_fleet, "one_product")
    done = ssh(host, "dpkg-query -W kesl; hostname", known_hosts)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "kesl\t12.1.0-1297"
    assert done.stdout.split("\n")[1] == host.name.replace("_", "-")
    assert small_fleet.commands_log(host.name)[-1] == "dpkg-query -W kesl; hostname"


def test_purge_changes_only_that_host(
    small_fleet: Fleet, known_hosts: Path, restore: list[str]
) -> None:
    real_before = hashlib.sha256(REAL_DPKG_STATUS.read_bytes()).hexdigest()
    target = one(small_fleet, "one_product")
    restore.append(target.name)
    done = ssh(target, "sudo -n dpkg --purge kesl", known_hosts)
    assert done.returncode == 0, done.stderr
    assert "kesl" not in small_fleet.dpkg_status(target.name)
    for path in (
        "/opt/kaspersky",
        "/var/opt/kaspersky",
        "/etc/opt/kaspersky",
        "/var/log/kaspersky",
    ):
        assert not small_fleet.files_exist(target.name, path), path
    assert not small_fleet.files_exist(target.name, "/etc/systemd/system/kesl.service")
    for other in ("slow", "password_only", "wrong_sudo_password", "behind_jump"):
        assert small_fleet.kaspersky_packages(one(small_fleet, other).name) == KESL
    assert hashlib.sha256(REAL_DPKG_STATUS.read_bytes()).hexdigest() == real_before
    assert not Path("/opt/kaspersky").exists() and not Path("/etc/opt/kaspersky").exists()

    small_fleet.reset(target.name)
    restore.remove(target.name)
    assert small_fleet.kaspersky_packages(target.name) == KESL
    assert small_fleet.files_exist(target.name, "/opt/kaspersky/kesl/bin/kesl-control")
    assert small_fleet.commands_log(target.name) == []
    assert ssh(target, "dpkg-query -W kesl", known_hosts).returncode == 0


def test_apt_get_purge_removes_several_products(
    small_fleet: Fleet, known_hosts: Path, restore: list[str]
) -> None:
    host = one(small_fleet, "several_products")
    restore.append(host.name)
    blocked = ssh(host, "sudo -n dpkg --purge kesl", known_hosts)
    assert blocked.returncode != 0 and "kesl-gui" in blocked.stderr + blocked.stdout
    done = ssh(host, "sudo -n apt-get purge -y -q kesl kesl-gui klnagent64", known_hosts)
    assert done.returncode == 0, done.stdout + done.stderr
    assert small_fleet.kaspersky_packages(host.name) == {}
    assert not small_fleet.files_exist(host.name, "/opt/kaspersky")
    assert not small_fleet.files_exist(host.name, "/var/opt/kaspersky")


def test_uninstall_fails_host_keeps_kesl(small_fleet: Fleet, known_hosts: Path) -> None:
    host = one(small_fleet, "uninstall_fails")
    done = ssh(host, "sudo -n dpkg --purge kesl", known_hosts)
    assert done.returncode != 0
    assert "removal refused" in done.stderr
    assert small_fleet.kaspersky_packages(host.name) == KESL


def test_changed_host_key_is_rejected(small_fleet: Fleet, known_hosts: Path) -> None:
    host = one(small_fleet, "changed_hostkey")
    done = ssh(host, "touch /tmp/reached", known_hosts)
    assert done.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in done.stderr
    assert small_fleet.commands_log(host.name) == []


def test_password_only_refuses_the_key_and_takes_the_password(
    small_fleet: Fleet, known_hosts: Path, tmp_path: Path
) -> None:
    host = one(small_fleet, "password_only")
    refused = ssh(host, "true", known_hosts, key=small_fleet.client_key)
    assert refused.returncode == 255 and "Permission denied (password)" in refused.stderr
    askpass = tmp_path / "askpass"
    askpass.write_text(f'#!/bin/sh\nprintf "%s\\n" "${PASSWORD_ENV}"\n')
    askpass.chmod(0o700)
    env = {**small_fleet.env, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force"}
    options = ["-o", "BatchMode=no", "-o", "PreferredAuthentications=password"]
    done = ssh(host, "dpkg-query -W kesl", known_hosts, options=options, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "kesl\t12.1.0-1297\n"


def test_wrong_sudo_password_host(small_fleet: Fleet, known_hosts: Path) -> None:
    host = one(small_fleet, "wrong_sudo_password")
    assert host.sudo_password_env == WRONG_SUDO_PASSWORD_ENV
    assert ssh(host, "sudo -n true", known_hosts).returncode != 0
    wrong = small_fleet.env[WRONG_SUDO_PASSWORD_ENV] + "\n"
    right = small_fleet.env[SUDO_PASSWORD_ENV] + "\n"
    assert ssh(host, "sudo -S -p '' id -u", known_hosts, input=wrong).returncode != 0
    done = ssh(host, "sudo -S -p '' id -u", known_hosts, input=right)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "0\n"


def test_behind_jump_is_reached_through_the_jump(small_fleet: Fleet, ssh_config: Path) -> None:
    host = one(small_fleet, "behind_jump")
    assert host.address.endswith(".fleet.invalid") and host.jump
    done = subprocess.run(
        ["ssh", "-F", str(ssh_config), host.name, "hostname; dpkg-query -W kesl"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{host.name.replace('_', '-')}\nkesl\t12.1.0-1297\n"
    assert small_fleet.commands_log(host.name)[-1] == "hostname; dpkg-query -W kesl"
    assert small_fleet.commands_log(host.jump) == []  # a jump only forwards


def test_unreachable_refuses_and_silent_never_answers(small_fleet: Fleet) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", one(small_fleet, "unreachable").port), timeout=5)
    with socket.create_connection(("127.0.0.1", one(small_fleet, "silent").port), 5) as sock:
        sock.sendall(b"SSH-2.0-probe\r\n")
        sock.settimeout(1.0)
        with pytest.raises(TimeoutError):
            sock.recv(1)


def test_slow_host_answers_only_after_its_delay(small_fleet: Fleet, known_hosts: Path) -> None:
    host = one(small_fleet, "slow")
    assert small_fleet.slow_delay == 3.0
    with socket.create_connection(("127.0.0.1", host.port), timeout=5) as sock:
        sock.settimeout(1.0)
        with pytest.raises(TimeoutError):
            sock.recv(1)
    started = time.monotonic()
    done = ssh(host, "dpkg-query -W kesl", known_hosts)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert took >= small_fleet.slow_delay


def test_command_log_and_pass_through(small_fleet: Fleet, known_hosts: Path) -> None:
    host = one(small_fleet, "clean")
    command = "cat; printf 'a\\\\b\\n'; exit 7 # two\nlines"
    done = ssh(host, command, known_hosts, input="from stdin\n")
    assert done.returncode == 7
    assert done.stdout == "from stdin\na\\b\n"
    entries = small_fleet.command_entries(host.name)
    assert entries[-1][1] == command
    assert abs(entries[-1][0] - time.time()) < 60


def test_secrets_cover_passwords_and_keys(small_fleet: Fleet) -> None:
    for value in small_fleet.env.values():
        assert value in small_fleet.secrets
    key_text = small_fleet.client_key.read_text()
    assert key_text in small_fleet.secrets
    body = [line for line in key_text.splitlines() if "-----" not in line]
    assert body and all(line in small_fleet.secrets for line in body)


def _fleet_traces(fleet_dir: Path, namespaces: set[str]) -> list[str]:
    """Processes still in the fleet's namespaces, and mounts anywhere that use its directory."""
    traces = [f"pid {pid}" for pid in procs.processes_in(namespaces)]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            mountinfo = (entry / "mountinfo").read_text()
        except OSError:
            continue
        if str(fleet_dir) in mountinfo:
            traces.append(f"mount seen by pid {entry.name}")
    return traces


def test_fifty_hosts_start_and_stop_without_a_trace(
    fleet_factory: FleetFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    kinds = {"clean": 10, "one_product": 20, "several_products": 10, "uninstall_fails": 5}
    kinds |= {"silent": 2, "unreachable": 2, "password_only": 1}
    started = time.monotonic()
    fleet = fleet_factory(kinds, slow_delay=0.5)
    took = time.monotonic() - started
    with capsys.disabled():
        print(f"\n[fleet] 50 hosts up in {took:.2f}s")
    assert len(fleet.hosts) == 50
    namespaces = fleet.namespaces()
    assert len(namespaces) == 46
    # A session that keeps running: stop must end it too (it left the sshd's process group).
    known_hosts = fleet.write_known_hosts(fleet.workdir / "known_hosts")
    host = one(fleet, "one_product")
    config = fleet.write_ssh_config(fleet.workdir / "cfg", known_hosts=known_hosts)
    session = subprocess.Popen(
        ["ssh", "-F", str(config), host.name, "sleep 300"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while "sleep 300" not in fleet.commands_log(host.name) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(procs.processes_in(namespaces)) > 46
    pids = fleet.pids()
    started = time.monotonic()
    fleet.stop()
    with capsys.disabled():
        print(f"[fleet] 50 hosts stopped in {time.monotonic() - started:.2f}s")
    fleet.stop()  # idempotent
    assert session.wait(timeout=10) != 0
    assert _fleet_traces(fleet.workdir, namespaces) == []
    assert len(pids) == 47 and not any(procs.alive(pid) for pid in pids)
    assert procs.listening([h.port for h in fleet.hosts]) == {}


def test_cli_up_status_down(small_fleet: Fleet, tmp_path: Path) -> None:
    # small_fleet: the CLI needs what the fixtures need (and skips, or fails in CI, the same way)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tests.fleet", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    workdir = tmp_path / "cli-fleet"
    up = cli("up", "--dir", str(workdir), "--kinds", "clean=1,one_product=1,silent=1")
    assert up.returncode == 0, up.stderr
    assert f"export {PASSWORD_ENV}=" in up.stdout
    inventory = workdir / "inventory.yml"
    assert str(inventory) in up.stdout
    assert set(load_inventories([inventory]).hosts) == {
        "h001-clean",
        "h002-one_product",
        "h003-silent",
    }
    status = cli("status", "--dir", str(workdir), "--json")
    assert status.returncode == 0, status.stderr
    hosts = json.loads(status.stdout)["hosts"]
    assert [h["running"] for h in hosts] == [True, True, True]
    namespaces = {h["mount_ns"] for h in hosts if h["mount_ns"]}
    assert len(namespaces) == 2
    down = cli("down", "--dir", str(workdir))
    assert down.returncode == 0, down.stderr
    assert _fleet_traces(workdir, namespaces) == []
    assert cli("status", "--dir", str(workdir)).returncode != 0


def test_a_fleet_started_where_one_ran_before_starts_afresh(
    small_fleet: Fleet, tmp_path: Path
) -> None:
    # small_fleet: this needs what the fixtures need (and skips, or fails in CI, the same way)
    workdir = tmp_path / "reused"
    for _ in range(2):  # `lab down`, then `lab up` in the same directory (./dev demo run twice)
        with Fleet.start(workdir, {"one_product": 1}) as fleet:
            pytest_plugin.SEEN.append((list(fleet.secrets), workdir))
            host = fleet.hosts[0]
            assert fleet.kaspersky_packages(host.name) == KESL
            known_hosts = fleet.write_known_hosts(tmp_path / "known_hosts")
            assert ssh(host, "sudo -n dpkg --purge kesl", known_hosts).returncode == 0


def test_encrypted_key_inventory_references_the_passphrase(
    small_fleet: Fleet, known_hosts: Path, tmp_path: Path
) -> None:
    path = small_fleet.write_inventory(tmp_path / "enc.yml", encrypted_key=True, include=["clean"])
    (host,) = load_inventories([path]).hosts.values()
    assert host.key_file == str(small_fleet.client_key_encrypted)
    assert host.key_passphrase is not None and host.key_passphrase.env == KEY_PASSPHRASE_ENV
    assert "KREMOVE_FLEET_KEY_PASSPHRASE" in path.read_text().splitlines()[1]
    askpass = tmp_path / "askpass"
    askpass.write_text(f'#!/bin/sh\nprintf "%s\\n" "${KEY_PASSPHRASE_ENV}"\n')
    askpass.chmod(0o700)
    env = {**small_fleet.env, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force"}
    clean = one(small_fleet, "clean")
    done = ssh(
        clean,
        "true",
        known_hosts,
        key=small_fleet.client_key_encrypted,
        options=["-o", "BatchMode=no"],
        env=env,
    )
    assert done.returncode == 0, done.stderr


def test_kinds_are_checked() -> None:
    assert parse_kinds({"clean": 2, "jump": 1}) == ["clean", "clean", "jump"]
    assert parse_kinds(["silent", "clean", "silent"]) == ["silent", "clean", "silent"]
    with pytest.raises(ValueError, match="unknown host kinds"):
        parse_kinds(["clean", "windows"])
    with pytest.raises(ValueError, match="need a jump host"):
        parse_kinds({"behind_jump": 1})
    with pytest.raises(TypeError):
        parse_kinds("clean")


def test_service_starts_are_forbidden_only_during_the_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy-rc.d"
    monkeypatch.setattr(system, "POLICY_RC_D", policy)
    with system._no_service_starts():
        assert policy.read_text().rstrip().endswith("exit 101") and os.access(policy, os.X_OK)
    assert not policy.exists()
    policy.write_text("#!/bin/sh\nexit 0\n")  # somebody else's stays as it is
    with system._no_service_starts():
        assert policy.read_text() == "#!/bin/sh\nexit 0\n"
    assert policy.exists()


def test_unavailable_fleet_skips_here_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not root"):
        pytest_plugin._unavailable("not root")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI machine: not root"):
        pytest_plugin._unavailable("not root")
