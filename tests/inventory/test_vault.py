"""Ansible Vault values and files made by the real ansible-vault, opened by kremove's own reader.

Each test encrypts at test time (formats 1.1 and 1.2, password files and scripts), loads the
inventory as kremove does and resolves the reference: the right password gives the plaintext; a
wrong one is one line naming the file, line and vault id; a vaulted variable kremove does not use
is never decrypted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import InputError, InventoryError, PlaybookError
from orchestrator.inventory import load_inventories, vault
from orchestrator.inventory.model import SecretRef
from orchestrator.playbook.render import Renderer
from orchestrator.secrets import SecretStore, resolve
from tests.inventory.ansible_tools import (
    ansible,
    encrypt_file,
    encrypt_string,
    password_file,
    password_script,
)

PLAIN = "Vault-Pl@in text 1"
OTHER = "n0t-the-same-Password"


@pytest.fixture(autouse=True)
def _no_vault_passwords() -> Iterator[None]:
    vault.register(vault.Keyring())
    yield
    vault.register(vault.Keyring())


def use(*files: Path, ids: tuple[str, ...] = ()) -> None:
    vault.register(vault.build_keyring(list(files), False, list(ids), None))


def yaml_inventory(tmp_path: Path, host_vars: str, name: str = "inv.yml") -> Path:
    path = tmp_path / name
    path.write_text(f"all:\n  hosts:\n    h1:\n      ansible_host: 127.0.0.1\n{host_vars}")
    return path


def password_of(path: Path) -> SecretRef:
    ref = load_inventories([path]).hosts["h1"].password
    assert ref is not None and ref.vault is not None
    return ref


def test_format_1_1_with_a_password_file_decrypts(tmp_path: Path) -> None:
    pw = password_file(tmp_path, "vault-pass", "correct horse")
    value = encrypt_string(tmp_path, PLAIN, "ansible_password", "--vault-password-file", str(pw))
    assert "$ANSIBLE_VAULT;1.1;AES256" in value
    ref = password_of(yaml_inventory(tmp_path, encrypt_string_indented(value)))
    use(pw)
    assert resolve(ref, "host 'h1' password").reveal() == PLAIN


def encrypt_string_indented(value: str) -> str:
    return "".join(f"      {line}\n" for line in value.splitlines())


def test_format_1_2_with_vault_ids_picks_the_password_of_the_label(tmp_path: Path) -> None:
    prod = password_file(tmp_path, "prod-pass", "prod password")
    dev = password_file(tmp_path, "dev-pass", "dev password")
    value = encrypt_string(tmp_path, PLAIN, "ansible_password", "--vault-id", f"prod@{prod}")
    assert "$ANSIBLE_VAULT;1.2;AES256;prod" in value
    ref = password_of(yaml_inventory(tmp_path, encrypt_string_indented(value)))
    assert ref.vault is not None and ref.vault.vault_id == "prod"
    use(ids=(f"dev@{dev}", f"prod@{prod}"))
    assert resolve(ref, "host 'h1' password").reveal() == PLAIN
    # As in Ansible, a password given under another label is tried too.
    use(ids=(f"other@{prod}",))
    assert resolve(ref, "host 'h1' password").reveal() == PLAIN


def test_an_executable_password_file_is_run_and_a_client_script_gets_the_vault_id(
    tmp_path: Path,
) -> None:
    secret = password_file(tmp_path, "pass", "scripted pw")
    plain_script = password_script(tmp_path, "vault-pass.sh", {"default": "scripted pw"})
    client = password_script(tmp_path, "keyring-client.sh", {"prod": "scripted pw"})
    value = encrypt_string(tmp_path, PLAIN, "ansible_password", "--vault-id", f"prod@{secret}")
    ref = password_of(yaml_inventory(tmp_path, encrypt_string_indented(value)))
    use(plain_script)
    assert resolve(ref, "pw").reveal() == PLAIN
    assert (tmp_path / "vault-pass.sh.calls").read_text() == "\n"  # run without arguments
    use(ids=(f"prod@{client}",))
    assert resolve(ref, "pw").reveal() == PLAIN
    assert (tmp_path / "keyring-client.sh.calls").read_text() == "--vault-id prod\n"
    # ansible-vault itself accepts the same scripts.
    again = encrypt_string(tmp_path, PLAIN, "x", "--vault-id", f"prod@{client}")
    assert "$ANSIBLE_VAULT;1.2;AES256;prod" in again


def test_a_wrong_password_is_one_line_naming_file_line_and_vault_id(tmp_path: Path) -> None:
    right = password_file(tmp_path, "right", "the right one")
    wrong = password_file(tmp_path, "wrong", OTHER)
    value = encrypt_string(tmp_path, PLAIN, "ansible_password", "--vault-id", f"win@{right}")
    inventory = yaml_inventory(tmp_path, encrypt_string_indented(value))
    ref = password_of(inventory)
    use(ids=(f"win@{wrong}",))
    with pytest.raises(InputError) as caught:
        SecretStore().get(ref, "host 'h1' password")
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert "\n" not in message
    assert f"{inventory}:5:" in message  # the line of ansible_password
    assert "vault id 'win'" in message and "does not decrypt" in message
    assert f"--vault-id win@{wrong}" in message
    assert PLAIN not in message and OTHER not in message


def test_no_vault_password_names_the_options_to_pass(tmp_path: Path) -> None:
    pw = password_file(tmp_path, "p", "pw")
    value = encrypt_string(
        tmp_path, PLAIN, "ansible_become_password", "--vault-password-file", str(pw)
    )
    inventory = yaml_inventory(tmp_path, encrypt_string_indented(value))
    ref = load_inventories([inventory]).hosts["h1"].become.password
    assert ref is not None
    with pytest.raises(InputError, match="--vault-password-file FILE") as caught:
        resolve(ref, "host 'h1' sudo password")
    assert f"{inventory}:5:" in str(caught.value) and "vault id 'default'" in str(caught.value)


def test_a_vaulted_var_kremove_does_not_use_is_never_decrypted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pw = password_file(tmp_path, "p", "pw")
    db = encrypt_string(tmp_path, PLAIN, "db_password", "--vault-id", f"db@{pw}")
    opened: list[object] = []
    real = vault._decrypt
    monkeypatch.setattr(vault, "_decrypt", lambda *a: opened.append(a) or real(*a))
    inventory = yaml_inventory(tmp_path, encrypt_string_indented(db))
    # No vault password at all: no error.
    host = load_inventories([inventory]).hosts["h1"]
    assert str(host.vars["db_password"]) == "!vault"
    # With the right password given: still never opened.
    use(pw)
    host = load_inventories([inventory]).hosts["h1"]
    assert opened == []
    assert PLAIN not in repr(host) and PLAIN not in str(host.settings())
    # A template that reads it is refused in one line naming the var and where it is written.
    renderer = Renderer([tmp_path])
    with pytest.raises(PlaybookError) as caught:
        renderer.render_string("echo {{ host.vars.db_password | sh }}", {"host": host})
    assert "'db_password'" in str(caught.value) and f"{inventory}:5" in str(caught.value)
    with pytest.raises(PlaybookError):
        renderer.render_string("echo {{ host.vars.db_password | upper | sh }}", {"host": host})
    assert opened == []


def test_a_whole_vault_encrypted_inventory_file(tmp_path: Path) -> None:
    pw = password_file(tmp_path, "p", "file pw")
    ini = tmp_path / "hosts.ini"
    ini.write_text("[web]\nw1 ansible_host=10.0.0.1 ansible_user=ops\n")
    yml = tmp_path / "fleet.yml"
    yml.write_text("all:\n  children:\n    db:\n      hosts:\n        d1: {ansible_port: 2222}\n")
    encrypt_file(ini, "--vault-password-file", str(pw))
    encrypt_file(yml, "--vault-id", f"fleet@{pw}")
    with pytest.raises(InventoryError) as caught:
        load_inventories([ini])
    assert str(caught.value).startswith(f"{ini}: ") and "--vault-password-file" in str(caught.value)
    use(pw)
    inv = load_inventories([ini, yml])
    assert inv.hosts["w1"].address == "10.0.0.1" and inv.hosts["w1"].user == "ops"
    assert inv.hosts["d1"].port == 2222 and inv.hosts["d1"].groups == ("db",)
    use(password_file(tmp_path, "bad", OTHER))
    with pytest.raises(InventoryError) as caught:
        load_inventories([yml])
    assert str(caught.value).startswith(f"{yml}: ") and "vault id 'fleet'" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_vaulted_connection_setting_is_decrypted_when_the_file_is_read(tmp_path: Path) -> None:
    pw = password_file(tmp_path, "p", "pw")
    user = encrypt_string(tmp_path, "deploy", "ansible_user", "--vault-password-file", str(pw))
    inventory = yaml_inventory(tmp_path, encrypt_string_indented(user))
    with pytest.raises(InventoryError) as caught:
        load_inventories([inventory])
    message = str(caught.value)
    assert f"{inventory}:5:" in message and "field 'ansible_user'" in message
    assert "--vault-password-file FILE" in message
    use(pw)
    assert load_inventories([inventory]).hosts["h1"].user == "deploy"


def test_damaged_vault_text_on_a_password_is_refused_when_read(tmp_path: Path) -> None:
    inventory = yaml_inventory(
        tmp_path,
        "      ansible_password: !vault |\n        $ANSIBLE_VAULT;1.1;AES256\n        zz\n",
    )
    with pytest.raises(InventoryError, match="not usable Ansible Vault text") as caught:
        load_inventories([inventory])
    assert f"{inventory}:5:" in str(caught.value)


def test_ansible_inventory_reads_the_same_files(tmp_path: Path) -> None:
    """The vaulted inventories of these tests are valid Ansible: ansible-inventory lists them."""
    pw = password_file(tmp_path, "p", "pw")
    value = encrypt_string(tmp_path, PLAIN, "ansible_password", "--vault-id", f"prod@{pw}")
    unused = encrypt_string(tmp_path, PLAIN, "db_password", "--vault-password-file", str(pw))
    inventory = yaml_inventory(tmp_path, encrypt_string_indented(value + unused))
    whole = tmp_path / "whole.ini"
    whole.write_text("[web]\nw1 ansible_host=10.0.0.1\n")
    encrypt_file(whole, "--vault-password-file", str(pw))
    for path in (inventory, whole):
        done = ansible(
            "ansible-inventory", "-i", str(path), "--list", "--vault-id", f"prod@{pw}", cwd=tmp_path
        )
        assert '"h1"' in done.stdout or '"w1"' in done.stdout
    use(ids=(f"prod@{pw}",))
    assert set(load_inventories([inventory, whole]).hosts) == {"h1", "w1"}


def test_a_vaulted_kaspersky_login_is_decrypted_as_kremove_reads_it(tmp_path: Path) -> None:
    pw = password_file(tmp_path, "p", "pw")
    login = encrypt_string(tmp_path, "KLAdmin", "kaspersky_login", "--vault-password-file", str(pw))
    inventory = yaml_inventory(tmp_path, encrypt_string_indented(login))
    with pytest.raises(InventoryError, match="field 'kaspersky_login'"):
        load_inventories([inventory])
    use(pw)
    assert load_inventories([inventory]).hosts["h1"].vars["kaspersky_login"] == "KLAdmin"


def test_a_vaulted_kaspersky_login_in_a_kremove_inventory_is_decrypted_too(tmp_path: Path) -> None:
    pw = password_file(tmp_path, "p", "pw")
    login = encrypt_string(
        tmp_path, "KLAdmin2", "kaspersky_login", "--vault-password-file", str(pw)
    )
    path = tmp_path / "native.yml"
    path.write_text(
        "defaults:\n  transport: local\n  vars:\n"
        + "".join(f"    {line}\n" for line in login.splitlines())
        + "hosts:\n  h1: {}\n"
    )
    with pytest.raises(InventoryError) as caught:
        load_inventories([path])
    assert f"{path}:4: defaults: field 'kaspersky_login'" in str(caught.value)
    use(pw)
    assert load_inventories([path]).hosts["h1"].vars["kaspersky_login"] == "KLAdmin2"
