"""The SSH transport against real sshd hosts of the simulated fleet (one host of every kind)."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.errors import AuthError, InputError, TransportError, UnreachableError
from orchestrator.inventory import load_inventories
from orchestrator.inventory.model import Host, Inventory, SecretRef
from orchestrator.secrets import SecretStore
from orchestrator.transports.base import Deadline
from orchestrator.transports.hostkeys import KnownHosts
from orchestrator.transports.ssh import SshPool, SshTransport
from orchestrator.transports.ssh_banner import MAX_PRE_BANNER_LINES, BannerGuard, BannerRefused
from orchestrator.transports.sshconfig import SshConfig
from tests.fleet.fleet import KEY_PASSPHRASE_ENV, PASSWORD_ENV, SUDO_PASSWORD_ENV, Fleet
from tests.integration.relay import pipe


@pytest.fixture(scope="module")
def inventory(small_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    d = tmp_path_factory.mktemp("ssh")
    known = small_fleet.write_known_hosts(d / "known_hosts")
    return load_inventories([small_fleet.write_inventory(d / "fleet.yml", known_hosts=known)])


@pytest.fixture(autouse=True)
def fleet_env(small_fleet: Fleet, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in small_fleet.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOME", str(tmp_path))  # no user known_hosts, config or agent
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


def ssh_run(inventory: Inventory, config: SshConfig | None = None) -> SshPool:
    return SshPool(
        secrets=SecretStore(),
        known_hosts=KnownHosts([], None),
        inventory=inventory.hosts,
        config=config,
    )


def kind(small_fleet: Fleet, inventory: Inventory, name: str) -> Host:
    return inventory.hosts[small_fleet.by_kind(name)[0].name]


@pytest.fixture
def one_product(small_fleet: Fleet, inventory: Inventory) -> Iterator[SshTransport]:
    transport = SshTransport(kind(small_fleet, inventory, "one_product"), ssh_run(inventory))
    transport.connect(Deadline.after(20))
    yield transport
    transport.close()


def test_every_step_of_a_host_uses_its_one_connection(
    small_fleet: Fleet, one_product: SshTransport
) -> None:
    before = small_fleet.sshd_log(one_product.host.name).count("Accepted publickey")
    results = [one_product.run(f"echo step{i}", Deadline.after(10)) for i in range(3)]
    assert [r.stdout for r in results] == ["step0\n", "step1\n", "step2\n"]
    one_product.close()
    assert small_fleet.sshd_log(one_product.host.name).count("Accepted publickey") == before


def test_large_output_on_both_streams_is_drained_and_bounded(one_product: SshTransport) -> None:
    # 12 MiB on stdout and 6 MiB on stderr, interleaved: reading one stream only would stall.
    command = (
        "i=0; while [ $i -lt 6 ]; do head -c 2097152 /dev/zero | tr '\\0' o;"
        " head -c 1048576 /dev/zero | tr '\\0' e >&2; i=$((i+1)); done; echo END; exit 3"
    )
    result = one_product.run(command, Deadline.after(60))
    assert result.exit_code == 3 and not result.timed_out and result.truncated
    assert result.stdout.endswith("END\n") and result.stdout.startswith("oooo")
    assert len(result.stdout.encode()) < 4 * 1024 * 1024 + 200
    assert "bytes of output omitted" in result.stdout and result.stderr.startswith("eeee")


def test_stdin_reaches_the_command_with_and_without_sudo(one_product: SshTransport) -> None:
    plain = one_product.run("cat; id -un", Deadline.after(10), stdin=b"line one\n")
    assert plain.stdout == "line one\nkops\n" and plain.exit_code == 0
    root = one_product.run("cat; id -un", Deadline.after(10), stdin=b"as root\n", become=True)
    assert root.stdout == "as root\nroot\n" and root.exit_code == 0


def test_a_command_past_its_deadline_is_cut_and_the_connection_survives(
    one_product: SshTransport,
) -> None:
    started = time.monotonic()
    result = one_product.run("echo begun; sleep 60", Deadline.after(1.5))
    assert result.timed_out and result.exit_code is None and result.stdout == "begun\n"
    assert time.monotonic() - started < 5
    assert one_product.run("echo after", Deadline.after(10)).stdout == "after\n"


def test_sudo_password_right_and_wrong(small_fleet: Fleet, inventory: Inventory) -> None:
    host = kind(small_fleet, inventory, "wrong_sudo_password")
    started = time.monotonic()
    with SshTransport(host, ssh_run(inventory)) as wrong:
        wrong.connect(Deadline.after(20))
        with pytest.raises(AuthError, match="sudo refused the become password"):
            wrong.run("id -u", Deadline.after(30), become=True)
    assert time.monotonic() - started < 15  # refused at sudo's second prompt, not at a deadline

    right_ref = replace(host.become, password=SecretRef(env=SUDO_PASSWORD_ENV))
    with SshTransport(replace(host, become=right_ref), ssh_run(inventory)) as right:
        right.connect(Deadline.after(20))
        result = right.run("cat; id -u", Deadline.after(30), stdin=b"after sudo\n", become=True)
    assert (result.exit_code, result.stdout) == (0, "after sudo\n0\n")
    assert small_fleet.env[SUDO_PASSWORD_ENV] not in result.stdout + result.stderr
    assert "kremove-sudo" not in result.stderr


def test_sudo_that_needs_a_password_without_one_says_what_to_do(
    small_fleet: Fleet, inventory: Inventory
) -> None:
    host = kind(small_fleet, inventory, "wrong_sudo_password")
    no_password = replace(host, become=replace(host.become, password=None))
    with SshTransport(no_password, ssh_run(inventory)) as t:
        t.connect(Deadline.after(20))
        with pytest.raises(AuthError, match=r"password is required.*become password reference"):
            t.run("id -u", Deadline.after(30), become=True)


def test_password_login(small_fleet: Fleet, inventory: Inventory) -> None:
    host = kind(small_fleet, inventory, "password_only")
    with SshTransport(host, ssh_run(inventory)) as t:
        t.connect(Deadline.after(20))
        assert t.run("id -un", Deadline.after(10)).stdout == "kops\n"
    wrong = replace(host, password=SecretRef(env="KREMOVE_TEST_WRONG_PASSWORD"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KREMOVE_TEST_WRONG_PASSWORD", "not-the-password")
        with SshTransport(wrong, ssh_run(inventory)) as t, pytest.raises(AuthError):
            t.connect(Deadline.after(20))


def test_encrypted_key_needs_its_passphrase(
    small_fleet: Fleet, inventory: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = replace(
        kind(small_fleet, inventory, "one_product"),
        key_file=str(small_fleet.client_key_encrypted),
        key_passphrase=SecretRef(env=KEY_PASSPHRASE_ENV),
    )
    with SshTransport(host, ssh_run(inventory)) as t:
        t.connect(Deadline.after(20))
        assert t.run("echo in", Deadline.after(10)).stdout == "in\n"
    with pytest.raises(InputError, match="encrypted; reference its passphrase"):
        ssh_run(inventory).ready([replace(host, key_passphrase=None)])
    monkeypatch.setenv(KEY_PASSPHRASE_ENV, "wrong passphrase")
    with pytest.raises(InputError, match="cannot be decrypted"):
        ssh_run(inventory).ready([host])


def test_behind_a_jump_host(small_fleet: Fleet, inventory: Inventory) -> None:
    host = kind(small_fleet, inventory, "behind_jump")
    assert host.jump and host.address.endswith(".invalid")
    run = ssh_run(inventory)
    with SshTransport(host, run) as t:
        t.connect(Deadline.after(20))
        assert t.run("hostname", Deadline.after(10)).exit_code == 0
    run.close()


def test_ssh_config_names_the_host_and_its_proxyjump(
    small_fleet: Fleet, inventory: Inventory, tmp_path: Path
) -> None:
    behind = small_fleet.by_kind("behind_jump")[0]
    jump = small_fleet.by_kind("jump")[0]
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host inner-alias\n  HostName {behind.address}\n  Port {behind.port}\n"
        f"  ProxyJump {jump.name}\n  User kops\n"
    )
    base = kind(small_fleet, inventory, "behind_jump")
    aliased = replace(
        base, name="inner-alias", address="inner-alias", port=22, jump=None, user=None
    )
    run = ssh_run(inventory, SshConfig(config))
    with SshTransport(aliased, run) as t:
        t.connect(Deadline.after(20))
        assert t.run("echo via config", Deadline.after(10)).stdout == "via config\n"
    run.close()


class DroppingRelay:
    """Closes the first ``drops`` connections at once (as sshd does past MaxStartups), then
    relays the rest to ``target``, after sending ``prefix`` to the client."""

    def __init__(self, target: tuple[str, int], drops: int, prefix: bytes = b"") -> None:
        self.target = target
        self.drops = drops
        self.prefix = prefix
        self.accepted = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted <= self.drops:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            client.sendall(self.prefix)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self.listener.close()


def test_connections_dropped_before_the_banner_are_retried(
    small_fleet: Fleet, inventory: Inventory, tmp_path: Path
) -> None:
    host = kind(small_fleet, inventory, "one_product")
    relay = DroppingRelay((host.address, host.port), drops=2)
    known = tmp_path / "known_hosts"
    entry = (Path(host.known_hosts or "").read_text()).splitlines()
    line = next(ln for ln in entry if ln.startswith(f"[{host.address}]:{host.port} "))
    known.write_text(line.replace(f":{host.port} ", f":{relay.port} ", 1) + "\n")
    relayed = replace(host, port=relay.port, known_hosts=str(known))
    try:
        with SshTransport(relayed, ssh_run(inventory)) as t:
            t.connect(Deadline.after(20))
            assert t.run("echo third time", Deadline.after(10)).stdout == "third time\n"
        assert relay.accepted == 3
        always = DroppingRelay((host.address, host.port), drops=100)
        never = replace(relayed, port=always.port)
        with (
            SshTransport(never, ssh_run(inventory)) as t,
            pytest.raises(
                UnreachableError, match="closed the connection before its SSH banner, 4 times"
            ),
        ):
            t.connect(Deadline.after(20))
        always.close()
    finally:
        relay.close()


def test_ssh_agent_keys_are_used_when_the_inventory_names_no_key(
    small_fleet: Fleet, inventory: Inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(
            ["ssh-add", str(small_fleet.client_key)], env=env, check=True, capture_output=True
        )
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        host = replace(kind(small_fleet, inventory, "one_product"), key_file=None)
        with SshTransport(host, ssh_run(inventory)) as t:
            t.connect(Deadline.after(20))
            assert t.run("echo agent", Deadline.after(10)).stdout == "agent\n"
        monkeypatch.delenv("SSH_AUTH_SOCK")
        with SshTransport(host, ssh_run(inventory)) as t, pytest.raises(AuthError):
            t.connect(Deadline.after(20))  # no agent, no key file, no default identity
    finally:
        agent.terminate()
        agent.wait(10)


@pytest.fixture
def loose_copy(tmp_path: Path) -> Iterator[Callable[[Path, str, int], Path]]:
    """Copies of secret files with a chosen mode, removed afterwards (the session's leak scan
    reads every file left under the temporary directory)."""
    made: list[Path] = []

    def copy(source: Path | None, text: str, mode: int) -> Path:
        path = tmp_path / f"secret{len(made)}"
        path.write_text(source.read_text() if source is not None else text)
        path.chmod(mode)
        made.append(path)
        return path

    yield lambda source, text, mode: copy(source, text, mode)
    for path in made:
        path.unlink(missing_ok=True)


def test_a_key_file_others_can_read_is_refused_up_front(
    small_fleet: Fleet, inventory: Inventory, loose_copy: Callable[..., Path]
) -> None:
    key = loose_copy(small_fleet.client_key, "", 0o644)
    host = replace(kind(small_fleet, inventory, "one_product"), key_file=str(key))
    with pytest.raises(InputError) as caught:
        ssh_run(inventory).ready([host])
    message = str(caught.value)
    assert "\n" not in message and str(key) in message and "chmod 600" in message
    assert "0644" in message and "one_product" in message
    key.chmod(0o600)
    run = ssh_run(inventory)
    run.ready([host])
    with SshTransport(host, run) as t:
        t.connect(Deadline.after(20))
        assert t.run("echo private", Deadline.after(10)).stdout == "private\n"


def test_an_ssh_config_key_others_can_read_is_not_used_and_the_failure_says_why(
    small_fleet: Fleet, inventory: Inventory, loose_copy: Callable[..., Path], tmp_path: Path
) -> None:
    key = loose_copy(small_fleet.client_key, "", 0o640)
    config = tmp_path / "ssh_config"
    config.write_text(f"Host *\n  IdentityFile {key}\n")
    host = replace(kind(small_fleet, inventory, "one_product"), key_file=None)
    run = ssh_run(inventory, SshConfig(config))
    with SshTransport(host, run) as t, pytest.raises(AuthError) as caught:
        t.connect(Deadline.after(20))
    assert f"key {key}" in str(caught.value) and "chmod 600" in str(caught.value)


def test_a_password_file_others_can_read_is_refused(
    small_fleet: Fleet, inventory: Inventory, loose_copy: Callable[..., Path]
) -> None:
    secret = small_fleet.env[PASSWORD_ENV]
    loose = loose_copy(None, secret + "\n", 0o666)
    host = replace(
        kind(small_fleet, inventory, "password_only"), password=SecretRef(file=str(loose))
    )
    with pytest.raises(InputError) as caught:
        SecretStore().preload([host])
    message = str(caught.value)
    assert "\n" not in message and secret not in message
    assert str(loose) in message and "chmod 600" in message and "password_only" in message
    loose.chmod(0o600)
    with SshTransport(host, ssh_run(inventory)) as t:
        t.connect(Deadline.after(20))
        assert t.run("id -un", Deadline.after(10)).stdout == "kops\n"


class BannerServer:
    """A TCP server on 127.0.0.1 that is not sshd: it sends ``chunk`` forever, or ``lines``
    lines, without ever an SSH banner."""

    def __init__(self, chunk: bytes, lines: int | None = None) -> None:
        self.chunk = chunk
        self.lines = lines
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.clients: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.clients.append(client)
            threading.Thread(target=self._talk, args=(client,), daemon=True).start()

    def _talk(self, client: socket.socket) -> None:
        try:
            if self.lines is not None:
                client.sendall(self.chunk * self.lines)
                client.recv(1 << 20)  # then wait for the client to give up
                return
            while True:
                client.sendall(self.chunk)
        except OSError:
            pass
        finally:
            client.close()

    def close(self) -> None:
        self.listener.close()
        for client in self.clients:
            client.close()


def _connect_failure(host: Host, inventory: Inventory, deadline_s: float) -> TransportError:
    with SshTransport(host, ssh_run(inventory)) as t, pytest.raises(TransportError) as caught:
        t.connect(Deadline.after(deadline_s))
    return caught.value


def test_an_endless_banner_line_fails_the_host_quickly_without_starving_others(
    small_fleet: Fleet, inventory: Inventory
) -> None:
    server = BannerServer(b"x" * 65536)
    real = kind(small_fleet, inventory, "one_product")
    hostile = replace(real, name="endless", address="127.0.0.1", port=server.port)
    failures: list[TransportError] = []
    took: list[float] = []

    def hostile_connect() -> None:
        started = time.monotonic()
        failures.append(_connect_failure(hostile, inventory, 60))
        took.append(time.monotonic() - started)

    worker = threading.Thread(target=hostile_connect)
    try:
        worker.start()
        started = time.monotonic()
        with SshTransport(real, ssh_run(inventory)) as t:
            t.connect(Deadline.after(60))
            assert t.run("echo meanwhile", Deadline.after(30)).stdout == "meanwhile\n"
        real_took = time.monotonic() - started
        worker.join(90)
    finally:
        server.close()
    (error,) = failures
    assert type(error) is TransportError and error.status == "failed", error
    assert "8192" in str(error) and "banner" in str(error) and "\n" not in str(error)
    assert took[0] < 30 and real_took < 30  # both far inside the 60 s deadline


def test_a_server_that_talks_without_an_ssh_banner_fails_the_host(
    small_fleet: Fleet, inventory: Inventory
) -> None:
    server = BannerServer(b"\x1b[31mhello there\r\n", lines=2000)
    hostile = replace(
        kind(small_fleet, inventory, "one_product"), address="127.0.0.1", port=server.port
    )
    try:
        started = time.monotonic()
        error = _connect_failure(hostile, inventory, 60)
    finally:
        server.close()
    assert type(error) is TransportError and error.status == "failed", error
    assert "no SSH banner" in str(error) and "\x1b" not in str(error)
    assert time.monotonic() - started < 30


def test_lines_before_the_banner_within_the_limits_are_passed_over(
    small_fleet: Fleet, inventory: Inventory, tmp_path: Path
) -> None:
    host = kind(small_fleet, inventory, "one_product")
    # RFC 4253 lets a server send other lines first; 60 of 8,000 bytes stay inside every limit.
    relay = DroppingRelay((host.address, host.port), drops=0, prefix=(b"n" * 7998 + b"\r\n") * 60)
    known = tmp_path / "known_hosts"
    entry = Path(host.known_hosts or "").read_text().splitlines()
    line = next(ln for ln in entry if ln.startswith(f"[{host.address}]:{host.port} "))
    known.write_text(line.replace(f":{host.port} ", f":{relay.port} ", 1) + "\n")
    try:
        relayed = replace(host, port=relay.port, known_hosts=str(known))
        with SshTransport(relayed, ssh_run(inventory)) as t:
            t.connect(Deadline.after(20))
            assert t.run("echo past the preamble", Deadline.after(10)).stdout == (
                "past the preamble\n"
            )
    finally:
        relay.close()


def test_the_banner_guard_counts_lines_as_openssh_does() -> None:
    near, far = socket.socketpair()
    with near, far:
        guard = BannerGuard(near)
        far.sendall(b"hello\r\n" * MAX_PRE_BANNER_LINES + b"SSH-2.0-x\r\n\x00\x00")
        received = b""
        while b"SSH-" not in received or not received.endswith(b"\x00\x00"):
            received += guard.recv(4096)
        assert guard.done and guard.lines == MAX_PRE_BANNER_LINES and guard.problem is None
        far.sendall(b"\n" * 10)  # after the banner nothing is counted
        assert guard.recv(4096) == b"\n" * 10 and guard.lines == MAX_PRE_BANNER_LINES

    near, far = socket.socketpair()
    with near, far:
        guard = BannerGuard(near)
        far.sendall(b"hello\r\n" * (MAX_PRE_BANNER_LINES + 1))
        with pytest.raises(BannerRefused, match=f"more than {MAX_PRE_BANNER_LINES} lines"):
            while True:
                guard.recv(4096)
        assert guard.problem is not None
