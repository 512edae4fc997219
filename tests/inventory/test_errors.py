"""Every error a user can cause is one InventoryError line naming the file, line and host/field."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InventoryError
from orchestrator.inventory import load_inventories

from .conftest import Write


def error_for(*paths: Path) -> str:
    with pytest.raises(InventoryError) as caught:
        load_inventories(list(paths))
    message = str(caught.value)
    assert "\n" not in message and message.strip() == message
    return message


# (file name, content, fragments the message must contain — the location first)
CASES = [
    # syntax
    ("bad.yml", "hosts:\n  a: [1, 2\n", ["bad.yml:3:", "YAML syntax error"]),
    ("bad.yml", "all:\n  hosts:\n    a:\n  - b\n", ["bad.yml:4:", "YAML syntax error"]),
    ("bad.ini", "[web\nhost1\n", ["bad.ini:1:", "malformed section header"]),
    ("bad.ini", "[web:hostvars]\n", ["bad.ini:1:", "unknown section type ':hostvars'"]),
    ("bad.ini", '[web]\nh1 ansible_user="ops\n', ["bad.ini:2:", "check its quotes"]),
    ("bad.ini", "[web]\nh1 ansible_port\n", ["bad.ini:2:", "host 'h1'", "not key=value"]),
    ("bad.ini", "[web]\nh1\n[web:vars]\njust a line\n", ["bad.ini:4:", "expected key=value"]),
    ("bad.ini", "[db:vars]\nx=1\n", ["bad.ini:1:", "[db:vars]", "add a [db] section"]),
    ("bad.ini", "[web]\nweb[3:1]\n", ["bad.ini:2:", "host 'web[3:1]'", "range must go upwards"]),
    ("bad.ini", "[web]\nweb[01:9]\n", ["bad.ini:2:", "same width"]),
    (
        "bad.csv",
        "name,address\na,192.0.2.1\nb,192.0.2.2,extra\n",
        ["bad.csv:3:", "3 cells", "2 columns"],
    ),
    ("bad.csv", "host,address\na,192.0.2.1\n", ["bad.csv:1:", "'name'"]),
    ("bad.csv", "name,address\n,192.0.2.1\n", ["bad.csv:2:", "name cell is empty"]),
    ("bad.csv", "name,name\na,b\n", ["bad.csv:1:", "appears twice"]),
    ("dup.yml", "hosts:\n  a: {}\n  a: {}\n", ["dup.yml:3:", "appears twice", "line 2"]),
    ("list.yml", "- a\n- b\n", ["list.yml:1:", "top level must be a mapping"]),
    (
        "vault.yml",
        "all:\n  vars:\n    ansible_password: !vault |\n      $ANSIBLE_VAULT;1.1\n",
        ["vault.yml:3:", "!vault", "ansible_password", "not usable Ansible Vault text"],
    ),
    # the format comes from the content (formats.py): a file neither YAML nor INI says so
    ("inv.txt", "These are our web servers\n", ["inv.txt:1:", "neither a YAML inventory"]),
    ("hosts", "all:\n  hosts:\n    a:\n  - b\n", ["hosts:4:", "YAML syntax error"]),
    # jump hosts
    (
        "j.yml",
        "hosts:\n  a: {jump: b}\n  b: {jump: a}\n",
        ["j.yml:2:", "host 'a'", "field 'jump'", "a -> b -> a"],
    ),
    ("j.yml", "hosts:\n  a: {jump: nope}\n", ["j.yml:2:", "field 'jump'", "'nope' is not a host"]),
    (
        "j.yml",
        "hosts:\n  a: {jump: w}\n  w: {transport: winrm}\n",
        ["j.yml:2:", "field 'jump'", "not an SSH host"],
    ),
    # unknown keys in the native format
    (
        "u.yml",
        "hosts:\n  a:\n    adress: 192.0.2.1\n",
        ["u.yml:3:", "host 'a'", "field 'adress'", "did you mean 'address'?"],
    ),
    (
        "u.yml",
        "hosts:\n  a: {}\nhostvars: {}\n",
        ["u.yml:3:", "top level: field 'hostvars'", "expected one of"],
    ),
    ("u.yml", "hosts:\n  a:\n    become: {usr: x}\n", ["u.yml:3:", "field 'become.usr'"]),
    (
        "u.yml",
        "hosts:\n  a:\n    winrm:\n      transport: ntlm\n",
        ["u.yml:4:", "field 'winrm.transport'"],
    ),
    (
        "u.yml",
        "hosts: {a: {}}\ngroups:\n  g:\n    members: [a]\n",
        ["u.yml:4:", "group 'g'", "field 'members'"],
    ),
    (
        "u.yml",
        "defaults:\n  groups: [x]\nhosts: {a: {}}\n",
        ["u.yml:2:", "defaults", "field 'groups'"],
    ),
    ("u.yml", "version: 2\nhosts: {a: {}}\n", ["u.yml:1:", "version: 1"]),
    # bad values
    (
        "p.yml",
        "hosts:\n  a: {port: 70000}\n",
        ["p.yml:2:", "host 'a'", "field 'port'", "1 to 65535"],
    ),
    ("p.yml", "hosts:\n  a:\n    port: ssh\n", ["p.yml:3:", "field 'port'", "'ssh'"]),
    ("p.ini", "[web]\nh1 ansible_port=0\n", ["p.ini:2:", "host 'h1'", "field 'ansible_port'"]),
    (
        "p.ini",
        "[web]\nh1\n[web:vars]\nansible_port=22x\n",
        ["p.ini:4:", "group 'web'", "field 'ansible_port'"],
    ),
    ("p.csv", "name,port\nh1,twenty-two\n", ["p.csv:2:", "host 'h1'", "field 'port'"]),
    (
        "t.ini",
        "[web]\nh1 ansible_connection=docker\n",
        ["t.ini:2:", "host 'h1'", "unknown transport 'docker'"],
    ),
    (
        "t.ini",
        "[w]\nh1\n[w:vars]\nansible_connection=docker\n",
        ["t.ini:4:", "group 'w'", "unknown transport 'docker'"],
    ),
    (
        "t.yml",
        "hosts:\n  a: {transport: telnet}\n",
        ["t.yml:2:", "host 'a'", "unknown transport 'telnet'"],
    ),
    ("t.csv", "name,transport\nh1,rdp\n", ["t.csv:2:", "host 'h1'", "unknown transport 'rdp'"]),
    ("pl.yml", "hosts:\n  a: {platform: solaris}\n", ["pl.yml:2:", "unknown platform 'solaris'"]),
    ("pl.csv", "name,platform\nh1,AIX\n", ["pl.csv:2:", "unknown platform 'AIX'"]),
    (
        "b.ini",
        "[w]\nh1 ansible_become_method=pbrun\n",
        ["b.ini:2:", "field 'ansible_become_method'", "sudo"],
    ),
    ("b.yml", "hosts:\n  a: {become: maybe}\n", ["b.yml:2:", "field 'become'", "true or false"]),
    (
        "c.ini",
        "[w]\nh1 ansible_winrm_server_cert_validation=maybe\n",
        ["c.ini:2:", "validate or ignore"],
    ),
    (
        "e.yml",
        "hosts:\n  a: {password_env: 'MY VAR'}\n",
        ["e.yml:2:", "field 'password_env'", "environment variable"],
    ),
    (
        "e.yml",
        "hosts:\n  a:\n    password_env: A\n    password_file: /x\n",
        ["e.yml:4:", "only one"],
    ),
    (
        "w.yml",
        "hosts:\n  a:\n    transport: winrm\n    winrm: {auth: basic, scheme: http}\n",
        ["w.yml:4:", "host 'a'", "field 'winrm.auth'", "clear text"],
    ),
    # references and structure
    (
        "r.yml",
        "hosts: {a: {}}\ngroups:\n  web:\n    hosts: [a, b]\n",
        ["r.yml:4:", "group 'web'", "host 'b'"],
    ),
    (
        "r.yml",
        "hosts: {a: {}}\ngroups:\n  web:\n    children: [dbs]\n",
        ["r.yml:4:", "child group 'dbs'"],
    ),
    (
        "cyc.yml",
        "hosts: {a: {groups: [x]}}\ngroups:\n"
        "  x: {children: [y]}\n  y: {children: [z]}\n  z: {children: [x]}\n",
        ["cyc.yml:5:", "cycle: x -> y -> z -> x"],
    ),
    (
        "cyc.ini",
        "[a:children]\nb\n[b:children]\na\n[b]\nh1\n",
        ["cyc.ini:4:", "cycle: a -> b -> a"],
    ),
    (
        "self.yml",
        "hosts: {a: {}}\ngroups:\n  x: {children: [x]}\n",
        ["self.yml:3:", "cycle: x -> x"],
    ),
    ("all.ini", "[web]\nh1\n[web:children]\nall\n", ["all.ini:4:", "'all' cannot be a child"]),
    ("sp.yml", "hosts:\n  'web 01': {}\n", ["sp.yml:2:", "cannot be selected with --limit"]),
    # empty
    ("empty.yml", "", ["empty.yml:", "empty"]),
    ("empty.yml", "# nothing yet\n", ["empty.yml:", "empty"]),
    ("empty.ini", "# only comments\n; here\n", ["empty.ini:", "empty"]),
    ("empty.csv", "name,address\n", ["empty.csv:", "empty"]),
    ("nohosts.yml", "groups:\n  web: {}\n", ["nohosts.yml:", "defines no hosts"]),
]


@pytest.mark.parametrize(
    ("name", "text", "fragments"), CASES, ids=[c[0] + ":" + c[2][-1] for c in CASES]
)
def test_error_names_place_and_fix(
    write: Write, name: str, text: str, fragments: list[str]
) -> None:
    message = error_for(write(name, text))
    for fragment in fragments:
        assert fragment in message, message
    location = fragments[0]
    assert message.startswith(str(Path(write(name, text)).parent / location)), message


SECRET = "Tr0ub4dor&3-not-for-logs"
INLINE_SECRETS = [
    (
        "n.yml",
        f"hosts:\n  a:\n    password: {SECRET}\n",
        "n.yml:3:",
        "field 'password': inline passwords are not accepted; reference it with password_env",
    ),
    (
        "n.yml",
        f"hosts:\n  a:\n    become:\n      password: {SECRET}\n",
        "n.yml:4:",
        "field 'become.password'",
    ),
    (
        "n.yml",
        f"defaults:\n  key_passphrase: {SECRET}\nhosts: {{a: {{}}}}\n",
        "n.yml:2:",
        "key_passphrase",
    ),
    ("n.yml", f"groups:\n  g:\n    winrm: {{password: {SECRET}}}\n", "n.yml:3:", "winrm.password"),
    (
        "a.ini",
        f"[web]\nh1 ansible_password={SECRET}\n",
        "a.ini:2:",
        "field 'ansible_password': plaintext passwords are not accepted",
    ),
    ("a.ini", f'[web]\nh1 ansible_password="{SECRET}\n', "a.ini:2:", "quotes"),
    ("a.ini", f"[web]\nh1\n[web:vars]\nansible_become_pass={SECRET}\n", "a.ini:4:", "group 'web'"),
    ("a.ini", f"[web]\nh1 ansible_ssh_pass {SECRET}\n", "a.ini:2:", "not key=value"),
    (
        "a.yml",
        f"all:\n  hosts:\n    h1:\n      ansible_ssh_pass: {SECRET}\n",
        "a.yml:4:",
        "host 'h1'",
    ),
    (
        "a.yml",
        f"all:\n  vars:\n    ansible_become_password: '{SECRET}'\n",
        "a.yml:3:",
        "group 'all'",
    ),
    ("a.csv", f"name,password\nh1,{SECRET}\n", "a.csv:1:", "column 'password'"),
    (
        "a.yml",
        f"all:\n  hosts:\n    h1: {{ansible_password: !vault {SECRET}}}\n",
        "a.yml:3:",
        "!vault",
    ),
    ("a.yml", f"hosts:\n  a:\n    password: '{SECRET}\n", "a.yml:", "YAML syntax error"),
]


@pytest.mark.parametrize(("name", "text", "location", "fragment"), INLINE_SECRETS)
def test_inline_password_is_refused_without_echoing_it(
    write: Write, name: str, text: str, location: str, fragment: str
) -> None:
    message = error_for(write(name, text))
    assert SECRET not in message
    assert SECRET[:8] not in message
    assert location in message and fragment in message, message


def test_missing_file(tmp_path: Path) -> None:
    message = error_for(tmp_path / "nope.yml")
    assert "nope.yml: file not found" in message


def test_directory_without_inventory_files(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("not an inventory\n")
    message = error_for(tmp_path)
    assert f"{tmp_path}: directory holds no inventory file" in message and ".md" in message


def test_unreadable_file(write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write("locked.yml", "hosts: {a: {}}\n")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)  # chmod 0 does not stop root
    assert error_for(path) == f"{path}: cannot be read: permission denied"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.ini"
    path.write_bytes(b"[web]\nh1\nm\xfcnchen.example.org\n")
    message = error_for(path)
    assert "latin.ini:3:" in message and "not UTF-8" in message and "0xfc" in message


def test_no_files_given() -> None:
    assert "pass -i FILE" in error_for()


def test_host_defined_twice_in_one_ini_with_different_settings(write: Write) -> None:
    path = write("twice.ini", "[web]\nh1 ansible_port=22\n[db]\nh1 ansible_port=2222\n")
    message = error_for(path)
    assert "twice.ini:4: host 'h1': field 'port'" in message
    assert "22 at " in message and "twice.ini:2" in message and "2222 at " in message
