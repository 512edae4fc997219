"""Host key decisions against real known_hosts files and keys made by ssh-keygen."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
import subprocess
from pathlib import Path

import paramiko
import pytest

from orchestrator.errors import InputError
from orchestrator.transports.hostkeys import KnownHosts, fingerprint, known_hosts_name
from tests.cli_runner import kremove


def keygen(tmp_path: Path, name: str, kind: str = "ed25519") -> paramiko.PKey:
    path = tmp_path / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True, timeout=60
    )
    return paramiko.PKey.from_path(str(path))


def line(name: str, key: paramiko.PKey) -> str:
    return f"{name} {key.get_name()} {key.get_base64()}\n"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, paramiko.PKey]:
    d = tmp_path_factory.mktemp("keys")
    return {
        "a": keygen(d, "a"),
        "b": keygen(d, "b"),
        "rsa": keygen(d, "rsa", "rsa"),
    }


def test_fingerprint_is_what_ssh_keygen_prints(tmp_path: Path) -> None:
    key = keygen(tmp_path, "k")
    shown = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(tmp_path / "k.pub")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[1]
    assert fingerprint(key) == shown


def test_port_22_is_bare_and_other_ports_bracketed() -> None:
    assert known_hosts_name("db1", 22) == "db1"
    assert known_hosts_name("127.0.0.1", 2222) == "[127.0.0.1]:2222"


def test_known_unknown_and_changed(tmp_path: Path, keys: dict[str, paramiko.PKey]) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text("# comment\n\ngarbage line\n" + line("[10.0.0.1]:2222", keys["a"]))
    hosts = KnownHosts([kh], None)
    assert hosts.check("[10.0.0.1]:2222", keys["a"], None).state == "known"
    assert hosts.check("10.0.0.1", keys["a"], None).state == "unknown"  # port 22 is another host
    verdict = hosts.check("[10.0.0.1]:2222", keys["b"], None)
    assert verdict.state == "changed"
    assert verdict.expected == (f"ssh-ed25519 {fingerprint(keys['a'])}",)
    assert verdict.origin == f"{kh}:4"


def test_hashed_wildcard_and_negated_names(tmp_path: Path, keys: dict[str, paramiko.PKey]) -> None:
    salt = os.urandom(20)
    digest = hmac.new(salt, b"secret-host", hashlib.sha1).digest()
    hashed = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
    kh = tmp_path / "known_hosts"
    kh.write_text(line(hashed, keys["a"]) + line("*.corp.example,!bad.corp.example", keys["b"]))
    hosts = KnownHosts([kh], None)
    assert hosts.check("secret-host", keys["a"], None).state == "known"
    assert hosts.check("other-host", keys["a"], None).state == "unknown"
    assert hosts.check("web.corp.example", keys["b"], None).state == "known"
    assert hosts.check("bad.corp.example", keys["b"], None).state == "unknown"


def test_revoked_key_is_refused_even_when_also_listed(
    tmp_path: Path, keys: dict[str, paramiko.PKey]
) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text("@revoked " + line("*", keys["a"]) + line("h1", keys["a"]))
    assert KnownHosts([kh], None).check("h1", keys["a"], None).state == "revoked"


def test_inventory_file_counts_only_for_hosts_that_name_it(
    tmp_path: Path, keys: dict[str, paramiko.PKey]
) -> None:
    extra = tmp_path / "fleet_known_hosts"
    extra.write_text(line("h1", keys["a"]))
    hosts = KnownHosts([tmp_path / "missing"], None)
    assert hosts.check("h1", keys["a"], str(extra)).state == "known"
    assert hosts.check("h1", keys["a"], None).state == "unknown"


def test_pinning_writes_a_private_file_and_trusts_the_key(
    tmp_path: Path, keys: dict[str, paramiko.PKey]
) -> None:
    pin = tmp_path / "kremove" / "known_hosts"
    hosts = KnownHosts([], pin)
    hosts.pin("[127.0.0.1]:2201", keys["a"])
    assert hosts.check("[127.0.0.1]:2201", keys["a"], None).state == "known"
    assert stat.S_IMODE(pin.stat().st_mode) == 0o600
    assert pin.read_text() == line("[127.0.0.1]:2201", keys["a"])
    # A later run reads the pin back; OpenSSH can read the file too.
    assert KnownHosts([], pin).check("[127.0.0.1]:2201", keys["b"], None).state == "changed"
    found = subprocess.run(
        ["ssh-keygen", "-F", "[127.0.0.1]:2201", "-f", str(pin)], capture_output=True, text=True
    )
    assert found.returncode == 0 and keys["a"].get_base64() in found.stdout


def test_recorded_key_types_are_offered_first(
    tmp_path: Path, keys: dict[str, paramiko.PKey]
) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text(line("legacy", keys["rsa"]) + line("modern", keys["a"]))
    hosts = KnownHosts([kh], None)
    offered = list(paramiko.Transport._preferred_keys)
    legacy = hosts.preferred_algorithms("legacy", None, offered)
    assert legacy[:2] == ["rsa-sha2-512", "rsa-sha2-256"]
    assert sorted(legacy) == sorted(offered)
    assert hosts.preferred_algorithms("modern", None, offered)[0] == "ssh-ed25519"
    assert hosts.preferred_algorithms("nobody", None, offered) == offered


def test_a_large_file_keeps_file_order_across_plain_and_pattern_entries(
    tmp_path: Path, keys: dict[str, paramiko.PKey]
) -> None:
    # Plain names are looked up through an index, patterns one by one: the first record in the
    # file is still the one a changed key is reported against.
    kh = tmp_path / "known_hosts"
    fleet = "".join(line(f"[10.1.{i // 250}.{i % 250}]:22{i % 10}", keys["a"]) for i in range(5000))
    kh.write_text(line("*.corp.example", keys["b"]) + fleet + line("db.corp.example", keys["a"]))
    hosts = KnownHosts([kh], None)
    assert hosts.check("[10.1.19.249]:229", keys["a"], None).state == "known"
    assert hosts.check("[10.1.19.249]:228", keys["a"], None).state == "unknown"
    both = hosts.check("db.corp.example", keys["rsa"], None)
    assert both.state == "changed" and both.origin == f"{kh}:1"
    assert both.expected == (
        f"ssh-ed25519 {fingerprint(keys['b'])}",
        f"ssh-ed25519 {fingerprint(keys['a'])}",
    )
    assert hosts.check("db.corp.example", keys["a"], None).state == "known"


# -- issue 15 L4: the pin file beside the ledger is not trusted when someone else can write it ----

NOBODY = 65534


def plant(directory: Path, key: paramiko.PKey, mode: int) -> Path:
    """A known_hosts beside the ledger holding an attacker's key for a fleet host."""
    directory.mkdir(mode=0o700, exist_ok=True)
    pin = directory / "known_hosts"
    pin.write_text(line("[127.0.0.1]:2201", key))
    pin.chmod(mode)
    return pin


@pytest.mark.parametrize("loose", [0o666, 0o602])
def test_a_pin_file_others_can_write_is_refused(
    tmp_path: Path, keys: dict[str, paramiko.PKey], loose: int
) -> None:
    pin = plant(tmp_path / "state", keys["a"], loose)
    with pytest.raises(InputError) as caught:
        KnownHosts([], pin)
    assert str(caught.value) == (
        f"pinned host key file {pin} is writable by others (mode {loose:04o}): a key could have"
        f" been added to it; check the keys in it, then run: chmod 600 {pin}"
    )


def test_a_pin_file_in_a_directory_others_can_write_is_refused(
    tmp_path: Path, keys: dict[str, paramiko.PKey]
) -> None:
    pin = plant(tmp_path / "state", keys["a"], 0o600)
    pin.parent.chmod(0o777)
    with pytest.raises(
        InputError, match=r"ledger directory .* is writable by others \(mode 0777\)"
    ):
        KnownHosts([], pin)
    pin.parent.chmod(0o700)
    os.chown(pin, NOBODY, NOBODY)
    with pytest.raises(InputError, match=f"pinned host key file {pin} belongs to nobody"):
        KnownHosts([], pin)


def test_a_pin_file_others_can_only_read_is_used(
    tmp_path: Path, keys: dict[str, paramiko.PKey]
) -> None:
    pin = plant(tmp_path / "state", keys["a"], 0o644)  # public keys: reading them is harmless
    assert KnownHosts([], pin).check("[127.0.0.1]:2201", keys["a"], None).state == "known"
    assert KnownHosts([], tmp_path / "new" / "known_hosts").pin_file is not None  # not there yet


def test_a_planted_pin_file_stops_a_scan_before_any_connection(
    tmp_path: Path, keys: dict[str, paramiko.PKey]
) -> None:
    ledger = tmp_path / "state" / "ledger.db"
    pin = plant(ledger.parent, keys["a"], 0o666)
    inventory = tmp_path / "fleet.yml"
    inventory.write_text(
        "version: 1\nhosts:\n  web1:\n    address: 127.0.0.1\n    port: 2201\n    transport: ssh\n"
    )
    done = kremove("detect", "-i", str(inventory), "--ledger", str(ledger), timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"kremove: error: pinned host key file {pin} is writable by others (mode 0666): a key"
        f" could have been added to it; check the keys in it, then run: chmod 600 {pin}"
    )
    assert not ledger.exists()  # no run was recorded
