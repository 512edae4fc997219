"""ansible.cfg and ANSIBLE_* (issue 18): found and read as Ansible finds and reads them (checked
against the real ``ansible-config dump``), the inventory used where -i is not given, the login
defaults below the command line and above kremove's own, and settings that would weaken host key
checks never followed, each named in one warning with the safe equivalent."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import InputError
from orchestrator.inventory import ansible_cfg
from orchestrator.inventory.overrides import ConnectionDefaults
from tests.cli_runner import OWN_SETTINGS, kremove

from .ansible_compare import run_json
from .ansible_tools import encrypt_file, password_file

NO_ANSIBLE = (*OWN_SETTINGS, "ANSIBLE_")  # a developer's own ANSIBLE_* stay out of the tests


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def ansible_dump(cwd: Path, env: dict[str, str], home: Path | None = None) -> dict[str, Any]:
    """What the real ansible-config reads here: {setting name: value} of the changed ones."""
    args = ("dump", "--only-changed", "-f", "json")
    dumped = run_json("ansible-config", *args, cwd=cwd, home=home, env=env)
    return {item["name"]: item["value"] for item in dumped if "name" in item}


def ours(cwd: Path, env: dict[str, str]) -> ansible_cfg.AnsibleConfig:
    return ansible_cfg.load({"HOME": str(cwd), **env}, cwd=cwd)


CFG = """
    [defaults]
    inventory = site, inventories/extra ; two sources
    remote_user = "deploy"
    private_key_file = keys/id_ed25519
    host_key_checking = True
    # a comment

    [privilege_escalation]
    become = yes
    become_user = admin
    """


def test_settings_read_as_ansible_reads_them(tmp_path: Path) -> None:
    project = tmp_path / "project"
    cfg = write(project / "ansible.cfg", CFG)
    project.chmod(0o755)
    dumped = ansible_dump(project, {})
    config = ours(project, {})
    assert config.file == cfg and dumped["CONFIG_FILE"] == str(cfg)
    found = config.inventory()
    assert found is not None
    assert [str(p) for p in found[0]] == dumped["DEFAULT_HOST_LIST"]  # relative to the file
    assert found[1] == f"{cfg}:2: [defaults] inventory"
    defaults = config.connection_defaults()
    assert defaults.user == dumped["DEFAULT_REMOTE_USER"] == "deploy"  # quotes taken off
    assert str(defaults.private_key) == dumped["DEFAULT_PRIVATE_KEY_FILE"]
    assert defaults.become is dumped["DEFAULT_BECOME"] is True
    assert defaults.become_user == dumped["DEFAULT_BECOME_USER"] == "admin"
    assert config.warnings() == []


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    write(tmp_path / "ansible.cfg", CFG)
    tmp_path.chmod(0o755)
    env = {
        "ANSIBLE_INVENTORY": "envinv",
        "ANSIBLE_REMOTE_USER": "ops",
        "ANSIBLE_PRIVATE_KEY_FILE": "keys/k",  # relative to the current directory
        "ANSIBLE_BECOME": "false",
    }
    dumped = ansible_dump(tmp_path, env)
    config = ours(tmp_path, env)
    found = config.inventory()
    assert found is not None and [str(p) for p in found[0]] == dumped["DEFAULT_HOST_LIST"]
    assert found[1] == "environment: ANSIBLE_INVENTORY"
    defaults = config.connection_defaults()
    assert (defaults.user, str(defaults.private_key)) == ("ops", dumped["DEFAULT_PRIVATE_KEY_FILE"])
    assert defaults.become is dumped.get("DEFAULT_BECOME", False) is False


@pytest.mark.parametrize(
    "case", ["ANSIBLE_CONFIG file", "ANSIBLE_CONFIG dir", "missing ANSIBLE_CONFIG", "home", "cwd"]
)
def test_found_where_ansible_finds_it(tmp_path: Path, case: str) -> None:
    home, cwd, elsewhere = tmp_path / "home", tmp_path / "cwd", tmp_path / "elsewhere"
    for directory in (home, cwd, elsewhere):
        directory.mkdir(mode=0o755)
    write(home / ".ansible.cfg", "[defaults]\nremote_user = from-home\n")
    if case != "home":
        write(cwd / "ansible.cfg", "[defaults]\nremote_user = from-cwd\n")
    write(elsewhere / "ansible.cfg", "[defaults]\nremote_user = from-env\n")
    env = {
        "ANSIBLE_CONFIG file": {"ANSIBLE_CONFIG": str(elsewhere / "ansible.cfg")},
        "ANSIBLE_CONFIG dir": {"ANSIBLE_CONFIG": str(elsewhere)},
        "missing ANSIBLE_CONFIG": {"ANSIBLE_CONFIG": str(elsewhere / "nope.cfg")},
    }.get(case, {})
    config = ansible_cfg.load({"HOME": str(home), **env}, cwd=cwd)
    dumped = ansible_dump(cwd, env, home)
    assert str(config.file) == dumped["CONFIG_FILE"]
    assert config.connection_defaults().user == dumped["DEFAULT_REMOTE_USER"]


def test_a_world_writable_directorys_ansible_cfg_is_not_read(tmp_path: Path) -> None:
    home, public = tmp_path / "home", tmp_path / "public"
    home.mkdir()
    write(home / ".ansible.cfg", "[defaults]\nremote_user = from-home\n")
    write(public / "ansible.cfg", "[defaults]\nremote_user = planted\n")
    public.chmod(0o777)
    config = ansible_cfg.load({"HOME": str(home)}, cwd=public)
    assert config.file == home / ".ansible.cfg"
    assert config.connection_defaults().user == "from-home"
    (note,) = config.warnings()
    assert f"{public / 'ansible.cfg'} is not read" in note and "world-writable" in note


@pytest.mark.parametrize(
    ("text", "env", "fragments"),
    [
        (
            "[defaults]\nhost_key_checking = False\n",
            {},
            [":2: [defaults] host_key_checking = False is not followed"],
        ),
        (
            "[defaults]\nhost_key_checking = True\n[ssh_connection]\nhost_key_checking = no\n",
            {},
            [":4: [ssh_connection] host_key_checking = no is not followed"],
        ),
        (
            "[defaults]\nremote_user = x\n",
            {"ANSIBLE_HOST_KEY_CHECKING": "False"},
            ["environment: ANSIBLE_HOST_KEY_CHECKING = False is not followed"],
        ),
        (
            "[ssh_connection]\nssh_args = -C -o ControlMaster=auto -o StrictHostKeyChecking=no\n",
            {},
            [":2: [ssh_connection] ssh_args -o StrictHostKeyChecking=no is not followed"],
        ),
        (
            "[ssh_connection]\nssh_extra_args = -oUserKnownHostsFile=/dev/null\n",
            {},
            [":2: [ssh_connection] ssh_extra_args -o UserKnownHostsFile=/dev/null is not"],
        ),
        (
            "[ssh_connection]\nssh_common_args = -o ProxyJump=jump@bastion\n",
            {},
            [":2: [ssh_connection] ssh_common_args: -o ProxyJump=jump@bastion is not followed",
             "ansible_ssh_common_args in group_vars/all.yml"],
        ),
    ],
)  # fmt: skip
def test_weakened_host_key_checks_are_warned_never_followed(
    tmp_path: Path, text: str, env: dict[str, str], fragments: list[str]
) -> None:
    cfg = write(tmp_path / "ansible.cfg", text)
    tmp_path.chmod(0o755)
    (warning,) = ours(tmp_path, env).warnings()
    assert "\n" not in warning
    assert all(f in warning for f in fragments), warning
    if "ProxyJump" not in text:
        assert warning.startswith(("environment", str(cfg)))
        assert "--accept-new-hostkeys" in warning and "always checks SSH host keys" in warning


def test_the_defaults_ansible_ships_are_no_warning(tmp_path: Path) -> None:
    write(tmp_path / "ansible.cfg", "[ssh_connection]\nssh_args = -C -o ControlMaster=auto\n")
    tmp_path.chmod(0o755)
    assert ours(tmp_path, {}).warnings() == []


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("ansible.cfg", "[privilege_escalation]\nbecome = maybe\n", ":2: [privilege_escalation] "
         "become: expected true or false"),
        ("ansible.cfg", "[defaults]\nremote_user = a\nremote_user = b\n", ":3: Ansible cannot "
         "read this configuration: a key given twice"),
        ("ansible.cfg", "remote_user = a\n", ":1: Ansible cannot read this configuration: a key "
         "before any [section]"),
        ("ansible.conf", "[defaults]\n", "ansible.conf: Ansible reads only .cfg or .ini"),
    ],
)  # fmt: skip
def test_a_configuration_ansible_cannot_read_is_one_line(
    tmp_path: Path, name: str, text: str, fragment: str
) -> None:
    cfg = write(tmp_path / name, text)
    with pytest.raises(InputError) as caught:
        ours(tmp_path, {"ANSIBLE_CONFIG": str(cfg)}).connection_defaults()
    assert "\n" not in str(caught.value) and fragment in str(caught.value), caught.value


def test_the_command_line_wins_over_the_configuration() -> None:
    cli = ConnectionDefaults(user="cli-user", become_user=None)
    configured = ConnectionDefaults(
        user="cfg-user", private_key=Path("/k"), become=True, become_user="admin"
    )
    merged = cli.below(configured)
    assert (merged.user, merged.private_key, merged.become, merged.become_user) == (
        "cli-user",
        Path("/k"),
        True,
        "admin",
    )


# --- through the command line ----------------------------------------------------------------


def project(tmp_path: Path, cfg: str) -> Path:
    """A project directory with ansible.cfg, a site directory and the project's group_vars."""
    root = tmp_path / "project"
    write(root / "ansible.cfg", cfg)
    write(root / "site/hosts", "[web]\nweb1 ansible_host=192.0.2.11\nweb2\n")
    write(root / "site/group_vars/web.yml", "ansible_port: 2200\n")
    write(root / "site/host_vars/web2/main.yml", "ansible_user: web2admin\n")
    root.chmod(0o755)
    return root


def check(root: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return kremove("inventory", "check", *args, cwd=root, home=root, env=env, strip=NO_ANSIBLE)


def test_check_uses_the_configured_inventory_and_says_so(tmp_path: Path) -> None:
    root = project(tmp_path, "[defaults]\ninventory = site\nremote_user = deploy\n")
    done = check(root, "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert [(h["name"], h["port"], h["user"]) for h in doc["hosts"]] == [
        ("web1", 2200, None),  # check shows the inventory; remote_user is a login default
        ("web2", 2200, "web2admin"),
    ]
    assert f"inventory {root / 'site'} (from {root / 'ansible.cfg'}:2: [defaults] inventory)" in (
        done.stderr
    )
    assert [(s["role"], Path(s["path"]).name) for s in doc["site"]] == [
        ("inventory", "hosts"),
        ("group_vars", "web.yml"),
        ("host_vars", "main.yml"),
    ]
    assert doc["ansible_cfg"]["file"] == str(root / "ansible.cfg")
    assert doc["ansible_cfg"]["settings"]["remote_user"]["value"] == "deploy"
    human = check(root, "-v")
    assert "read 1 inventory, 1 group_vars, 1 host_vars file(s)" in human.stdout
    assert f"group_vars {root / 'site/group_vars/web.yml'}  (web)" in human.stdout


def test_ansible_inventory_and_the_no_inventory_error(tmp_path: Path) -> None:
    root = project(tmp_path, "[defaults]\nremote_user = deploy\n")
    done = check(root, "--json", env={"ANSIBLE_INVENTORY": "site/hosts"})
    assert done.returncode == 0, done.stderr
    assert "(from environment: ANSIBLE_INVENTORY)" in done.stderr
    missing = check(root)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip().splitlines() == [
        "kremove: error: no inventory given: pass -i FILE|DIR|host1,host2, or name one with "
        "inventory = in ansible.cfg ([defaults]) or ANSIBLE_INVENTORY"
    ]


def test_a_weakening_setting_is_said_once_on_stderr(tmp_path: Path) -> None:
    root = project(tmp_path, "[defaults]\ninventory = site\nhost_key_checking = False\n")
    done = check(root, "--json")
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout)  # stdout stays one JSON document
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert warnings == [
        f"kremove: warning: {root / 'ansible.cfg'}:3: [defaults] host_key_checking = False is "
        "not followed: kremove always checks SSH host keys against known_hosts and its own pins; "
        "to accept and pin the keys of hosts it has not seen yet, pass --accept-new-hostkeys"
    ]


def test_the_vault_password_file_of_ansible_cfg_opens_the_site(tmp_path: Path) -> None:
    root = project(tmp_path, "[defaults]\ninventory = site\nvault_password_file = .vault-pass\n")
    pw = password_file(root, ".vault-pass", "project-pass")
    secret = write(root / "site/group_vars/all.yml", "ansible_user: vaulted\n")
    encrypt_file(secret, "--vault-password-file", str(pw))
    done = check(root, "--json")
    assert done.returncode == 0, done.stderr
    assert {h["name"]: h["user"] for h in json.loads(done.stdout)["hosts"]} == {
        "web1": "vaulted",
        "web2": "web2admin",
    }


def test_configured_login_defaults_apply_below_the_command_line_and_the_inventory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.cli import session

    root = project(
        tmp_path,
        "[defaults]\ninventory = site\nremote_user = deploy\nprivate_key_file = keys/id\n"
        "[privilege_escalation]\nbecome = true\nbecome_user = admin\n",
    )
    for name in [k for k in os.environ if k.startswith("ANSIBLE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(root))
    monkeypatch.chdir(root)
    _, hosts = session.load([root / "site"], None, ConnectionDefaults())
    _, given = session.load([root / "site"], None, ConnectionDefaults(user="cli"))
    web1, web2 = hosts
    assert (web1.user, web1.key_file) == ("deploy", str(root / "keys/id"))
    assert (web1.become.enabled, web1.become.auto, web1.become.user) == (True, False, "admin")
    assert web2.user == "web2admin"  # the inventory's host_vars win over ansible.cfg
    assert [h.user for h in given] == ["cli", "web2admin"]  # -u wins over ansible.cfg
