"""Ansible's password variables as references: lookup('env') and lookup('file') in INI and YAML,
in the quoting and spacing Ansible users write; anything else templated, and plaintext, refused in
one line naming the file, line and variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InventoryError
from orchestrator.inventory import load_inventories
from orchestrator.inventory.ansible_secrets import is_uninstall_password, secret_ref
from orchestrator.inventory.model import SecretRef
from orchestrator.inventory.raw import Origin, Owner, Value
from orchestrator.secrets import resolve
from tests.inventory.ansible_tools import ansible

SECRET = "Pl4intext-never-shown"

ENV_FORMS = [
    "{{ lookup('env', 'WINPASS') }}",
    '{{ lookup("env", "WINPASS") }}',
    "{{lookup('env','WINPASS')}}",
    "{{  lookup( 'env' ,  'WINPASS' )  }}",
    "{{ lookup('ansible.builtin.env', 'WINPASS') }}",
    "{{- lookup('env', 'WINPASS') -}}",
]
PASSWORD_VARS = {
    "ansible_password": "password",
    "ansible_ssh_pass": "password",
    "ansible_ssh_password": "password",
    "ansible_winrm_password": "password",
    "ansible_become_password": "become",
    "ansible_become_pass": "become",
    "ansible_sudo_pass": "become",
}


def host_ref(path: Path, which: str = "password") -> SecretRef | None:
    host = load_inventories([path]).hosts["h1"]
    return host.password if which == "password" else host.become.password


@pytest.mark.parametrize("form", ENV_FORMS)
def test_env_lookup_in_yaml_with_either_quotes(tmp_path: Path, form: str) -> None:
    path = tmp_path / "inv.yml"
    quoted = f'"{form}"' if "'" in form else f"'{form}'"
    path.write_text(f"all:\n  hosts:\n    h1:\n      ansible_password: {quoted}\n")
    assert host_ref(path) == SecretRef(env="WINPASS")


@pytest.mark.parametrize("form", ENV_FORMS)
def test_env_lookup_in_ini_host_lines_and_vars_sections(tmp_path: Path, form: str) -> None:
    quote = '"' if "'" in form else "'"
    host_line = tmp_path / "host.ini"
    host_line.write_text(f"[web]\nh1 ansible_password={quote}{form}{quote}\n")
    assert host_ref(host_line) == SecretRef(env="WINPASS")
    for value in (form, f"{quote}{form}{quote}"):  # :vars values may go without quotes
        section = tmp_path / "vars.ini"
        section.write_text(f"[web]\nh1\n[web:vars]\nansible_become_pass = {value}\n")
        assert host_ref(section, "become") == SecretRef(env="WINPASS")


@pytest.mark.parametrize(("name", "where"), sorted(PASSWORD_VARS.items()))
def test_every_password_variable_takes_a_lookup(tmp_path: Path, name: str, where: str) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(f"all:\n  hosts:\n    h1:\n      {name}: \"{{{{ lookup('env', 'PW') }}}}\"\n")
    assert host_ref(path, where) == SecretRef(env="PW")


def test_file_lookup_resolves_as_ansible_does_without_a_playbook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative to the current directory, files/ first (as ad-hoc ansible does; Ansible never
    looks in the inventory's own directory); absolute and ~ paths as given."""
    work, elsewhere = tmp_path / "work", tmp_path / "inventories"
    (work / "files").mkdir(parents=True)
    elsewhere.mkdir()
    inventory = elsewhere / "inv.ini"
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path))
    cases = {
        "in-files": work / "files" / "in-files",
        "files/in-files": work / "files" / "in-files",
        "in-cwd": work / "in-cwd",
        "missing": work / "missing",
        str(tmp_path / "abs"): tmp_path / "abs",
        "~/home-pw": tmp_path / "home-pw",
    }
    for path in (work / "files" / "in-files", work / "in-cwd", elsewhere / "in-cwd"):
        path.write_text(SECRET + "\n")
        path.chmod(0o600)
    for name, expected in cases.items():
        inventory.write_text(f"[web]\nh1 ansible_password=\"{{{{ lookup('file', '{name}') }}}}\"\n")
        assert host_ref(inventory) == SecretRef(file=str(expected)), name
    inventory.write_text("[web]\nh1 ansible_password=\"{{ lookup('file', 'in-cwd') }}\"\n")
    ref = host_ref(inventory)
    assert ref is not None and resolve(ref, "pw").reveal() == SECRET


@pytest.mark.parametrize(
    "value",
    [
        "{{ lookup('env', 'PW') | upper }}",
        "{{ lookup('pipe', 'cat /etc/shadow') }}",
        "{{ lookup('env', 'PW', default='x') }}",
        "{{ query('env', 'PW') }}",
        "prefix{{ lookup('env', 'PW') }}",
        "{{ lookup('env', 'PW') }}{{ lookup('env', 'PW2') }}",
        "{% if true %}x{% endif %}",
        "{{ lookup('file', '{{ path }}') }}",
    ],
)
def test_other_templating_in_a_password_is_one_line_naming_file_line_and_variable(
    tmp_path: Path, value: str
) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(
        "all:\n  hosts:\n    h1:\n      ansible_host: 10.0.0.1\n"
        f"      ansible_password: >-\n        {value}\n"
    )
    with pytest.raises(InventoryError) as caught:
        load_inventories([path])
    message = str(caught.value)
    assert message.startswith(f"{path}:5: host 'h1': field 'ansible_password': only {{{{ lookup")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("\"{{ lookup('env', 'NOT A NAME') }}\"", "not an environment variable name"),
        ("'$ANSIBLE_VAULT;1.1;AES256'", "Ansible INI cannot hold a vault value"),
    ],
)
def test_ini_refusals_say_why(tmp_path: Path, value: str, words: str) -> None:
    path = tmp_path / "inv.ini"
    path.write_text(f"[web]\nh1 ansible_password={value}\n")
    with pytest.raises(InventoryError, match=words):
        load_inventories([path])


@pytest.mark.parametrize(
    "text",
    [
        f"[web]\nh1 ansible_password={SECRET}\n",
        f"[web]\nh1\n[web:vars]\nansible_ssh_pass='{SECRET}'\n",
        f"all:\n  hosts:\n    h1:\n      ansible_winrm_password: {SECRET}\n",
        f"all:\n  vars:\n    ansible_sudo_pass: '{SECRET}'\n  hosts:\n    h1: {{}}\n",
    ],
)
def test_plaintext_is_refused_without_repeating_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / ("inv.ini" if text.startswith("[") else "inv.yml")
    path.write_text(text)
    with pytest.raises(InventoryError, match="plaintext passwords are not accepted") as caught:
        load_inventories([path])
    assert SECRET not in str(caught.value) and SECRET[:6] not in str(caught.value)
    assert f"{path}:" in str(caught.value)


@pytest.mark.parametrize(
    "name",
    [
        "kremove_uninstall_password",
        "kremove_uninstall_password_kes",
        "kremove_uninstall_password_ksws",
    ],
)
def test_uninstall_password_variables_use_the_same_forms(name: str) -> None:
    """The interface the uninstall-password variables are read with (secret_ref)."""
    assert is_uninstall_password(name) and not is_uninstall_password("kremove_uninstall")
    owner, origin = Owner("group", "branch"), Origin("inv.yml", 7)
    ref = secret_ref(Value("{{ lookup('env', 'KES_PW') }}", origin), owner, name)
    assert ref == SecretRef(env="KES_PW")
    for bad, words in ((SECRET, "plaintext"), ("{{ kes_pw }}", "only {{ lookup")):
        with pytest.raises(InventoryError) as caught:
            secret_ref(Value(bad, origin), owner, name)
        assert str(caught.value).startswith(f"inv.yml:7: group 'branch': field {name!r}: {words}")
        assert SECRET not in str(caught.value)


def test_ansible_inventory_reads_the_lookup_inventories(tmp_path: Path) -> None:
    ini = tmp_path / "hosts.ini"
    ini.write_text(
        "[web]\nh1 ansible_password=\"{{ lookup('env', 'WINPASS') }}\"\n"
        "[web:vars]\nansible_become_pass={{ lookup('file', 'pw.txt') }}\n"
    )
    yml = tmp_path / "hosts.yml"
    yml.write_text(
        "all:\n  hosts:\n    h2:\n      ansible_password: \"{{ lookup('env', 'WINPASS') }}\"\n"
        '      ansible_become_password: \'{{lookup("file","pw.txt")}}\'\n'
    )
    for path in (ini, yml):
        done = ansible("ansible-inventory", "-i", str(path), "--list", cwd=tmp_path)
        assert "lookup(" in done.stdout
    inv = load_inventories([ini, yml])
    assert inv.hosts["h1"].password == inv.hosts["h2"].password == SecretRef(env="WINPASS")
    assert inv.hosts["h1"].become.password == SecretRef(file=str(Path.cwd() / "pw.txt"))


@pytest.mark.parametrize("key", ["ansible_user", "ansible_host", "ansible_port"])
def test_a_templated_connection_setting_is_refused(tmp_path: Path, key: str) -> None:
    """kremove evaluates no template: the text would otherwise be used as the user or address."""
    path = tmp_path / "inv.yml"
    path.write_text(f"all:\n  hosts:\n    h1:\n      {key}: \"{{{{ lookup('env', 'X') }}}}\"\n")
    with pytest.raises(InventoryError) as caught:
        load_inventories([path])
    assert str(caught.value).startswith(f"{path}:4: host 'h1': field {key!r}: kremove evaluates")


def test_other_templated_vars_stay_free_vars(tmp_path: Path) -> None:
    path = tmp_path / "inv.ini"
    path.write_text("[web]\nh1 app_url=\"{{ lookup('env', 'URL') }}/x\"\n")
    assert load_inventories([path]).hosts["h1"].vars == {"app_url": "{{ lookup('env', 'URL') }}/x"}
