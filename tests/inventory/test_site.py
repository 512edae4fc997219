"""An Ansible site read as Ansible reads it (issue 18): group_vars/ and host_vars/ beside the
inventory, with Ansible's precedence; a directory as the inventory; the format from the content;
comma host lists. Each site is also given to the real ``ansible-inventory --list``, and every
host must come out the same: address, port, user, become and vars."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.inventory import load_inventories
from orchestrator.inventory.model import SecretRef

from .ansible_compare import same_as_ansible
from .ansible_tools import encrypt_file, encrypt_string, password_file
from .test_errors import error_for


def put(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


# A site as operators keep one: an extensionless YAML inventory (production), an extensionless
# INI one (extra), an .ini Ansible skips in a directory, group_vars as files and directories
# (a shadowed file, an ignored extension, an empty file, a typo), host_vars as file and directory.
SITE = {
    "production": """
        all:
          vars: {ansible_user: from-inventory, tier: inv-all, level: inv-all}
          children:
            linux:
              vars: {level: inv-linux, ansible_port: 2200}
              children:
                web:
                  hosts:
                    web1: {ansible_host: 192.0.2.11}
                    web2:
                db:
                  hosts:
                    db1:
        """,
    "extra": """
        [dmz]
        edge1 ansible_host=198.51.100.7

        [web]
        web3

        [web:vars]
        zone=inv-web
        """,
    "hosts.ini": "[web]\nghost1\n",
    "README.md": "# the site\n",
    "group_vars/all/main.yml": "ansible_user: deploy\nlevel: gv-all\nzone: gv-all\n",
    "group_vars/all/net.yaml": "dns: [192.0.2.53]\n",
    "group_vars/linux.yml": "level: gv-linux\nansible_become: true\n",
    "group_vars/web/00-base.yml": "http_port: 80\nlevel: gv-web\n",
    "group_vars/web/10-override": "http_port: 8080\n",
    "group_vars/web/notes.txt": "http_port: 1\n",
    "group_vars/web.yml": "http_port: 9\n",
    "group_vars/db.json": '{"ansible_port": 5433, "level": "gv-db"}\n',
    "group_vars/dmz.yml": "",
    "group_vars/webz.yml": "http_port: 7\n",
    "host_vars/web1.yml": "ansible_user: web1admin\nlevel: hv-web1\n",
    "host_vars/db1/a.yml": "ansible_host: 192.0.2.21\n",
    "host_vars/db1/b.yml": "ansible_become: false\n",
}


def test_a_site_directory_resolves_host_for_host_as_ansible(tmp_path: Path) -> None:
    site = put(tmp_path / "site", SITE)
    inventory = load_inventories([site])
    hosts = inventory.hosts
    assert sorted(hosts) == ["db1", "edge1", "web1", "web2", "web3"]  # no ghost1: hosts.ini
    web1, web2, web3, db1, edge1 = (hosts[n] for n in ("web1", "web2", "web3", "db1", "edge1"))
    # host_vars beat the inventory's host vars, which beat every group_vars file
    assert (web1.address, web1.user, web1.vars["level"]) == ("192.0.2.11", "web1admin", "hv-web1")
    # group_vars/<deeper group> beat group_vars/<parent>, which beat group_vars/all
    assert (web2.user, web2.vars["level"], web2.vars["http_port"]) == ("deploy", "gv-web", 8080)
    # every group_vars file beats every group var of the inventory, even a child group's
    assert web3.vars["zone"] == "gv-all" and web3.port == 2200 and web3.become.enabled
    assert (db1.address, db1.port, db1.become.enabled) == ("192.0.2.21", 5433, False)
    assert (edge1.port, edge1.become.enabled, edge1.vars["level"]) == (22, False, "gv-all")
    assert edge1.vars["dns"] == ["192.0.2.53"] and edge1.vars["tier"] == "inv-all"
    same_as_ansible(inventory, tmp_path, "-i", "site")


def test_check_names_every_file_read_and_skipped(tmp_path: Path) -> None:
    site = put(tmp_path / "site", SITE)
    read = [(f.role, Path(f.path).relative_to(site).as_posix(), f.name) for f in
            load_inventories([site]).site]  # fmt: skip
    roles = {path: (role, name) for role, path, name in read}
    assert [path for role, path, _ in read if role == "inventory"] == ["extra", "production"]
    assert roles["hosts.ini"][0] == "skipped" and ".ini" in roles["hosts.ini"][1]
    assert [p for r, p, n in read if r == "group_vars" and n == "web"] == [
        "group_vars/web/00-base.yml",
        "group_vars/web/10-override",
    ]
    assert "first of web, web.yml" in roles["group_vars/web.yml"][1]
    assert "no group 'webz'" in roles["group_vars/webz.yml"][1]
    assert roles["group_vars/dmz.yml"] == ("group_vars", "dmz")
    assert [p for r, p, n in read if r == "host_vars"] == [
        "host_vars/db1/a.yml",
        "host_vars/db1/b.yml",
        "host_vars/web1.yml",
    ]
    assert "README.md" in roles and roles["README.md"][0] == "skipped"


def test_group_vars_beside_an_inventory_file(tmp_path: Path) -> None:
    """-i site/production: the vars directories beside the file, not only beside a directory."""
    site = put(tmp_path / "site", SITE)
    inventory = load_inventories([site / "production"])
    assert inventory.hosts["web2"].user == "deploy"
    assert inventory.hosts["web2"].vars["http_port"] == 8080
    same_as_ansible(inventory, tmp_path, "-i", "site/production")


def test_each_source_applies_its_own_vars_in_the_order_given(tmp_path: Path) -> None:
    """Ansible merges vars files source by source: a later source's group_vars/linux beats an
    earlier source's group_vars/web, though web is the deeper group."""
    put(
        tmp_path,
        {
            "a/hosts": "[linux:children]\nweb\n[web]\nw1\n",
            "a/group_vars/web.yml": "role: from-a-web\n",
            "b/hosts": "[linux]\nw1\n",
            "b/group_vars/linux.yml": "role: from-b-linux\n",
            "b/group_vars/all.yml": "ansible_user: b-all\n",
            "a/host_vars/w1.yml": "ansible_port: 2001\n",
        },
    )
    inventory = load_inventories([tmp_path / "a/hosts", tmp_path / "b/hosts"])
    w1 = inventory.hosts["w1"]
    assert (w1.vars["role"], w1.user, w1.port) == ("from-b-linux", "b-all", 2001)
    same_as_ansible(inventory, tmp_path, "-i", "a/hosts", "-i", "b/hosts")


def test_a_directory_is_read_recursively_but_its_subdirectories_vars_are_not(
    tmp_path: Path,
) -> None:
    put(
        tmp_path,
        {
            "site/sub/more": "all:\n  hosts:\n    y1:\n",
            "site/sub/group_vars/all.yml": "ignored: true\n",
            "site/group_vars/ungrouped.yml": "ansible_port: 2222\n",
            "site/.hidden": "[web]\nh9\n",
            "site/old~": "[web]\nh8\n",
            "site/empty": "",
        },
    )
    inventory = load_inventories([tmp_path / "site"])
    assert list(inventory.hosts) == ["y1"]
    assert inventory.hosts["y1"].port == 2222 and "ignored" not in inventory.hosts["y1"].vars
    same_as_ansible(inventory, tmp_path, "-i", "site")


def test_vaulted_vars_files_and_values(tmp_path: Path) -> None:
    """A whole group_vars file encrypted with ansible-vault, and a !vault become password in
    another: opened with the vault passwords given, the password kept a reference."""
    from orchestrator.inventory import vault

    pw = password_file(tmp_path, "vault-pass", "site-pass")
    become = encrypt_string(
        tmp_path, "s3cret-b3come", "ansible_become_password", "--vault-password-file", str(pw)
    )
    site = put(
        tmp_path / "site",
        {
            "hosts": "[linux]\nl1\n",
            "group_vars/all/vault.yml": "ansible_user: vaulted-user\n",
            "group_vars/linux.yml": "ansible_become: true\n" + become,
        },
    )
    encrypt_file(site / "group_vars/all/vault.yml", "--vault-password-file", str(pw))
    assert error_for(site).startswith(  # no vault password given: one line naming the file
        f"{site / 'group_vars/all/vault.yml'}: vault-encrypted file: encrypted with Ansible Vault"
    )
    vault.register(vault.build_keyring([pw], False, [], None))
    try:
        inventory = load_inventories([site])
    finally:
        vault.register(vault.Keyring())
    l1 = inventory.hosts["l1"]
    assert l1.user == "vaulted-user" and l1.become.enabled
    assert isinstance(l1.become.password, SecretRef) and l1.become.password.vault is not None
    assert "s3cret" not in repr(inventory.digest()) + repr(l1)
    same_as_ansible(inventory, tmp_path, "-i", "site", "--vault-password-file", str(pw))


@pytest.mark.parametrize(
    ("files", "fragments"),
    [
        ({"group_vars/all.yml": "- a\n- b\n"}, ["group_vars/all.yml:1:", "mapping of variable"]),
        (
            {"group_vars/web.yml": "ansible_become_password: hunter2\n"},
            ["group_vars/web.yml:1:", "group 'web'", "plaintext passwords are not accepted"],
        ),
        ({"host_vars/h1.yml": "a: [1\n"}, ["host_vars/h1.yml:2:", "YAML syntax error"]),
        ({"group_vars/web.json": '{"a": 1\n'}, ["group_vars/web.json:", "neither YAML nor JSON"]),
    ],
)
def test_a_wrong_vars_file_is_one_line_naming_it(
    tmp_path: Path, files: dict[str, str], fragments: list[str]
) -> None:
    site = put(tmp_path / "site", {"hosts": "[web]\nh1\n", **files})
    message = error_for(site / "hosts")
    assert "hunter2" not in message
    assert all(f in message for f in fragments), message


def test_group_vars_that_is_a_file_is_passed_over_and_said(tmp_path: Path) -> None:
    site = put(tmp_path / "site", {"hosts": "[web]\nh1\n", "group_vars": "x: 1\n"})
    inventory = load_inventories([site / "hosts"])
    assert inventory.hosts["h1"].vars == {}
    assert [(f.role, f.name) for f in inventory.site if f.role == "skipped"] == [
        ("skipped", "not a directory (Ansible skips it)")
    ]


# --- the format from the content -------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["production", "inventories/prod/hosts", "hosts.txt", "site.cfg", "inv.yml"]
)
def test_a_yaml_inventory_is_yaml_whatever_its_name(tmp_path: Path, name: str) -> None:
    path = put(tmp_path, {name: "all:\n  children:\n    web:\n      hosts:\n        w1:\n"}) / name
    inventory = load_inventories([path])
    assert list(inventory.hosts) == ["w1"] and inventory.hosts["w1"].groups == ("web",)
    assert "all:" not in inventory.hosts and "children:" not in inventory.hosts


@pytest.mark.parametrize("name", ["production", "hosts", "inv.yml", "inventory.txt"])
def test_an_ini_inventory_is_ini_whatever_its_name(tmp_path: Path, name: str) -> None:
    text = "# the fleet\nw0 motd='Welcome: ops only'\n[web]\nw1\n"
    path = put(tmp_path, {name: text}) / name
    inventory = load_inventories([path])
    assert list(inventory.hosts) == ["w0", "w1"]
    if not name.endswith(".yml"):  # Ansible's yaml plugin takes no .txt: its ini plugin reads it
        same_as_ansible(inventory, tmp_path, "-i", name)


def test_a_line_with_a_colon_in_a_value_is_still_ini(tmp_path: Path) -> None:
    path = put(tmp_path, {"hosts": "h1 note='a: b'\n"}) / "hosts"
    assert load_inventories([path]).hosts["h1"].vars == {"note": "a: b"}


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("These are our web servers\n", ["notes:1:", "is neither a YAML inventory"]),
        ("all:\n  hosts:\n    a:\n  - b\n", ["notes:4:", "YAML syntax error"]),
        ("- web1\n- web2\n", ["notes:1:", "top level must be a mapping"]),
        ("[web]\nh1 ansible_port\n", ["notes:2:", "host 'h1'", "not key=value"]),
    ],
)
def test_a_file_that_is_neither_is_one_line(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    message = error_for(put(tmp_path, {"notes": text}) / "notes")
    assert all(f in message for f in fragments), message


# --- comma host lists ------------------------------------------------------------------------


def test_a_comma_list_is_hosts_in_ungrouped(tmp_path: Path) -> None:
    inventory = load_inventories([Path("web1.example.org,db1.example.org:2222,[2001:db8::1]:22")])
    assert [(h.name, h.port, h.groups) for h in inventory.hosts.values()] == [
        ("web1.example.org", 22, ("ungrouped",)),
        ("db1.example.org", 2222, ("ungrouped",)),
        ("2001:db8::1", 22, ("ungrouped",)),
    ]
    same_as_ansible(
        load_inventories([Path("web1.example.org,db1.example.org:2222")]),
        tmp_path,
        "-i",
        "web1.example.org,db1.example.org:2222",
    )


def test_one_host_with_a_trailing_comma() -> None:
    inventory = load_inventories([Path("web1.example.org,")])
    assert list(inventory.hosts) == ["web1.example.org"]
    assert inventory.site[0].name == "host list"


def test_the_current_directory_is_the_playbook_directory(tmp_path: Path) -> None:
    """As ansible-inventory (and ansible-playbook beside its playbook), the group_vars/ and
    host_vars/ of the directory kremove runs in apply: above the inventory's own group_vars
    files of the same level, below its host_vars."""
    put(
        tmp_path,
        {
            "group_vars/all.yml": "ansible_user: from-project-root\nlevel: play-all\n",
            "host_vars/web1.example.org.yml": "ansible_port: 2202\n",
            "inventories/prod/hosts": "[web]\nweb1.example.org\nweb2.example.org\n",
            "inventories/prod/group_vars/all.yml": "ansible_user: from-inventory\n",
            "inventories/prod/group_vars/web.yml": "level: inv-web\n",
        },
    )
    hosts_file = tmp_path / "inventories/prod/hosts"
    assert load_inventories([hosts_file]).hosts["web2.example.org"].user == "from-inventory"
    inventory = load_inventories([hosts_file], playbook_dir=tmp_path)
    web1, web2 = inventory.hosts["web1.example.org"], inventory.hosts["web2.example.org"]
    assert (web2.user, web2.vars["level"], web1.port) == ("from-project-root", "inv-web", 2202)
    same_as_ansible(inventory, tmp_path, "-i", "inventories/prod/hosts")
    # a host list has no directory of its own; the playbook directory's vars still apply
    listed = load_inventories([Path("web1.example.org,")], playbook_dir=tmp_path)
    assert listed.hosts["web1.example.org"].user == "from-project-root"
    same_as_ansible(listed, tmp_path, "-i", "web1.example.org,")


def test_an_existing_file_with_a_comma_is_a_file(tmp_path: Path) -> None:
    path = put(tmp_path, {"a,b": "[web]\nw1\n"}) / "a,b"
    assert list(load_inventories([path]).hosts) == ["w1"]


def test_files_joined_by_a_comma_are_not_taken_for_host_names(tmp_path: Path) -> None:
    """Ansible would read -i prod.yml,extra.yml as two hosts named like the files."""
    put(tmp_path, {"prod.yml": "all:\n  hosts:\n    w1:\n", "extra.yml": "all: {}\n"})
    given = f"{tmp_path / 'prod.yml'},{tmp_path / 'extra.yml'}"
    assert error_for(Path(given)) == (
        f"-i {given}: names the file {str(tmp_path / 'prod.yml')!r}; -i takes one inventory, or "
        "a list of hosts: give each file with its own -i"
    )


@pytest.mark.parametrize(
    ("given", "fragment"),
    [(",", "names no host"), ("a:99999,", "port must be"), ("bad host,b", "cannot be selected")],
)
def test_a_wrong_host_list_is_one_line(given: str, fragment: str) -> None:
    message = error_for(Path(given))
    assert message.startswith(f"-i {given}") and fragment in message, message
