"""WinRM settings as Ansible means them, against the WinRM test hosts, from Ansible inventories.

- ``ansible_port=5985`` and no scheme is http (Ansible's winrm plugin: ``'http' if port == 5985
  else 'https'``): a relay on 127.0.0.2:5985 leads to a test host's HTTP port, and detection
  speaks NTLM-encrypted HTTP to it.
- ``ansible_user=svc@CORP.EXAMPLE.COM`` and no transport is Kerberos (the plugin's rule when the
  kerberos library is present); without kremove's kerberos extra that is one line saying what to
  install and why Kerberos was chosen.
- ``ansible_winrm_transport=kerberos,ntlm`` (or a YAML list) is the first one kremove supports and
  has installed.
- ``ansible_winrm_transport=certificate`` with ``ansible_winrm_cert_pem``/``_cert_key_pem``: a
  removal on the client_certificate test host, whose HTTPS demands a client certificate signed by
  the fleet's CA; another CA's certificate is refused in the TLS handshake; a key file others can
  read is refused before anything connects.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.inventory import load_inventories
from tests.cli_runner import kremove
from tests.fleet.winrm_host.fleet import PASSWORD_ENV, WinrmFleet
from tests.integration.relay import relay
from tests.inventory.ansible_tools import ansible

LOGIN = "ansible_user=kops\nansible_password=\"{{ lookup('env', '" + PASSWORD_ENV + "') }}\""


@pytest.fixture(scope="module")
def fleet(winrm_fleet_factory: Callable[..., WinrmFleet]) -> WinrmFleet:
    return winrm_fleet_factory({"kes_and_agent": 1, "client_certificate": 1})


@pytest.fixture
def relay_5985(fleet: WinrmFleet) -> Iterator[str]:
    """127.0.0.2:5985 relayed to the kes_and_agent host's HTTP port (the test host's ports are
    the kernel's choice; Ansible's rule is about 5985)."""
    with relay("127.0.0.2", 5985, fleet.by_kind("kes_and_agent")[0].http_port) as address:
        yield address


def detect(fleet: WinrmFleet, home: Path, inventory: Path) -> dict[str, Any]:
    done = kremove("detect", "-i", str(inventory), "--json", home=home, env=fleet.env)
    assert done.returncode in (0, 1), done.stderr
    return {h["host"]: h for h in json.loads(done.stdout)["hosts"]}


def test_port_5985_without_a_scheme_is_http(
    fleet: WinrmFleet, tmp_path: Path, relay_5985: str
) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        f"[windows]\nw1 ansible_host={relay_5985} ansible_port=5985\n"
        f"[windows:vars]\nansible_connection=winrm\n{LOGIN}\n"
    )
    host = load_inventories([inventory]).hosts["w1"]
    assert (host.winrm.scheme, host.port, host.winrm.auth) == ("http", 5985, "ntlm")
    listed = json.loads(
        ansible("ansible-inventory", "-i", str(inventory), "--list", cwd=tmp_path).stdout
    )
    assert (
        listed["_meta"]["hostvars"]["w1"]["ansible_port"] == 5985
    )  # and no scheme: Ansible's rule
    found = detect(fleet, tmp_path, inventory)
    assert found["w1"]["status"] == "found"
    events = fleet.log(fleet.by_kind("kes_and_agent")[0].name)
    assert any(e["event"] == "auth" and e.get("tls") is False for e in events)


def test_a_upn_login_without_a_transport_is_kerberos(fleet: WinrmFleet, tmp_path: Path) -> None:
    import winrm.transport

    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[windows]\nw1 ansible_host=127.0.0.1 ansible_port=5986 ansible_connection=winrm "
        "ansible_user=svc@CORP.EXAMPLE.COM\n"
        "w2 ansible_host=127.0.0.1 ansible_connection=winrm ansible_user=svc@CORP.EXAMPLE.COM "
        "ansible_winrm_transport=ntlm\n"
    )
    hosts = load_inventories([inventory]).hosts
    assert hosts["w1"].winrm.auth == "kerberos" and hosts["w2"].winrm.auth == "ntlm"
    if winrm.transport.HAVE_KERBEROS:
        return
    done = kremove("detect", "-i", str(inventory), "--limit", "w1", home=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "host 'w1'" in done.stderr and "pip install 'kremove[kerberos]'" in done.stderr
    assert "user principal name" in done.stderr and "ansible_winrm_transport: ntlm" in done.stderr


@pytest.mark.parametrize(
    "transport", ["kerberos,ntlm", "credssp, ntlm", "['kerberos', 'ntlm']", "bogus,ntlm,basic"]
)
def test_a_transport_list_is_the_first_kremove_supports_and_has(
    fleet: WinrmFleet, tmp_path: Path, transport: str
) -> None:
    import winrm.transport

    if winrm.transport.HAVE_KERBEROS or winrm.transport.HAVE_CREDSSP:
        pytest.skip("an extra is installed: the first of the list would be it")
    host = fleet.by_kind("kes_and_agent")[0]
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    w1:\n"
        f"      ansible_host: 127.0.0.1\n      ansible_port: {host.https_port}\n"
        "      ansible_connection: winrm\n      ansible_user: kops\n"
        f"      ansible_password: \"{{{{ lookup('env', '{PASSWORD_ENV}') }}}}\"\n"
        f"      ansible_winrm_ca_trust_path: {fleet.ca}\n"
        f"      ansible_winrm_transport: {transport}\n"
    )
    assert load_inventories([inventory]).hosts["w1"].winrm.auth == "ntlm"
    assert detect(fleet, tmp_path, inventory)["w1"]["status"] == "found"


def cert_inventory(fleet: WinrmFleet, path: Path, cert: Path, key: Path) -> Path:
    host = fleet.by_kind("client_certificate")[0]
    path.write_text(
        "all:\n  children:\n    windows:\n      hosts:\n        w1:\n"
        f"          ansible_host: 127.0.0.1\n          ansible_port: {host.https_port}\n"
        "      vars:\n        ansible_connection: winrm\n"
        "        ansible_winrm_transport: certificate\n"
        f"        ansible_winrm_cert_pem: {cert}\n        ansible_winrm_cert_key_pem: {key}\n"
        f"        ansible_winrm_ca_trust_path: {fleet.ca}\n"
    )
    return path


def test_certificate_auth_removes_on_a_host_that_demands_a_client_certificate(
    fleet: WinrmFleet, tmp_path: Path
) -> None:
    name = fleet.by_kind("client_certificate")[0].name
    inventory = cert_inventory(
        fleet, tmp_path / "hosts.yml", fleet.pki.client.cert, fleet.pki.client.key
    )
    try:
        done = kremove("run", "-i", str(inventory), "--yes", "--json", home=tmp_path)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["hosts"][0]["status"] == "removed"
        assert fleet.kaspersky_products(name) == {}
        auths = [e for e in fleet.log(name) if e["event"] == "auth"]
        assert auths and all(e["scheme"] == "certificate" and e["ok"] for e in auths)
        assert all(e["user"] == "kops" for e in auths)
    finally:
        fleet.reset(name)


def test_a_certificate_from_another_ca_is_refused_in_the_handshake(
    fleet: WinrmFleet, tmp_path: Path
) -> None:
    name = fleet.by_kind("client_certificate")[0].name
    wrong = fleet.pki.wrong_client
    inventory = cert_inventory(fleet, tmp_path / "hosts.yml", wrong.cert, wrong.key)
    found = detect(fleet, tmp_path, inventory)
    assert found["w1"]["status"] not in ("found", "clean")
    assert not [e for e in fleet.log(name) if e["event"] == "auth" and e.get("ok")]


def test_a_key_file_others_can_read_is_refused_before_connecting(
    fleet: WinrmFleet, tmp_path: Path
) -> None:
    key = tmp_path / "client.key"
    key.write_bytes(fleet.pki.client.key.read_bytes())
    key.chmod(0o644)
    inventory = cert_inventory(fleet, tmp_path / "hosts.yml", fleet.pki.client.cert, key)
    done = kremove("detect", "-i", str(inventory), home=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert f"chmod 600 {key}" in done.stderr and "host 'w1'" in done.stderr
