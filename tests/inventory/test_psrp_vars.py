"""Ansible's psrp connection variables as kremove settings (issue 18): the same WS-Man endpoint
and settings as WinRM, with Ansible's defaults for what an inventory leaves out."""

from __future__ import annotations

import re

import pytest

from orchestrator.errors import InventoryError
from orchestrator.inventory import load_inventories

from .conftest import Write


def test_psrp_variables_give_the_wsman_settings(write: Write) -> None:
    path = write(
        "hosts.ini",
        """
        [windows]
        dc01 ansible_psrp_host=10.0.0.5 ansible_psrp_port=15986 ansible_psrp_ca_cert=/etc/ca.pem
        dc02 ansible_port=5985 ansible_psrp_user=svc ansible_psrp_auth=ntlm
        dc03 ansible_psrp_protocol=http
        dc04 ansible_psrp_cert_validation=ignore ansible_psrp_auth=negotiate
        dc05 ansible_user=svc@CORP.EXAMPLE.COM ansible_psrp_auth=negotiate
        dc06 ansible_psrp_cert_trust_path=/etc/other.pem ansible_psrp_auth=basic

        [windows:vars]
        ansible_connection=psrp
        ansible_user=kops
        """,
    )
    hosts = load_inventories([path]).hosts
    dc01 = hosts["dc01"]
    assert (dc01.transport, dc01.platform, dc01.address, dc01.port) == (
        "psrp",
        "windows",
        "10.0.0.5",
        15986,
    )
    assert (dc01.winrm.scheme, dc01.winrm.auth, dc01.winrm.ca_trust_path) == (
        "https",
        "ntlm",
        "/etc/ca.pem",
    )
    # Ansible: no protocol and port 5985 is http; protocol http and no port is 5985.
    assert (hosts["dc02"].winrm.scheme, hosts["dc02"].port, hosts["dc02"].user) == (
        "http",
        5985,
        "svc",
    )
    assert (hosts["dc03"].winrm.scheme, hosts["dc03"].port) == ("http", 5985)
    # negotiate: Kerberos for a UPN login, else NTLM (kremove's rule for an unset auth).
    assert (hosts["dc04"].winrm.auth, hosts["dc04"].winrm.cert_validation) == ("ntlm", False)
    assert hosts["dc05"].winrm.auth == "kerberos"
    assert (hosts["dc06"].winrm.auth, hosts["dc06"].winrm.ca_trust_path) == (
        "basic",
        "/etc/other.pem",
    )
    assert hosts["dc01"].settings()["winrm"] is not None  # part of the host's digest


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ansible_psrp_cert_validation=maybe", "field 'ansible_psrp_cert_validation': expected"),
        ("ansible_psrp_protocol=ftp", "field 'ansible_psrp_protocol': unknown winrm scheme"),
        ("ansible_psrp_protocol=http ansible_psrp_auth=basic", "basic auth over plain http"),
    ],
)
def test_a_wrong_psrp_setting_is_one_line_naming_file_line_and_host(
    write: Write, line: str, message: str
) -> None:
    path = write("hosts.ini", f"dc01 ansible_connection=psrp ansible_user=kops {line}\n")
    expected = re.escape(f"{path}:1: host 'dc01': ") + ".*" + re.escape(message)
    with pytest.raises(InventoryError, match=expected) as caught:
        load_inventories([path])
    assert "\n" not in str(caught.value)
