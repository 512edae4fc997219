"""The vault options through the installed CLI: a real SSH login with a password that only
ansible-vault's ciphertext holds, never shown or stored; prompts refused without a terminal."""

from __future__ import annotations

import json
from pathlib import Path

from tests import cli_runner
from tests.fleet.fleet import Fleet
from tests.inventory.ansible_tools import encrypt_string, password_file, password_script

VAULT_PASSWORD = "fleet vault pw"


def test_ask_vault_pass_without_a_terminal_is_one_line(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.ini"
    inventory.write_text("[web]\nh1 ansible_connection=local\n")
    for flags in (["--ask-vault-pass"], ["--vault-id", "prod@prompt"]):
        for command in (["inventory", "check"], ["detect"], ["plan"], ["run", "--yes"]):
            done = cli_runner.kremove(
                *command, "-i", str(inventory), *flags, home=tmp_path, env={"CI": "true"}
            )
            assert done.returncode == 2, done.stderr
            assert done.stderr.count("\n") == 1 and "no terminal" in done.stderr
            assert flags[0] in done.stderr and "--vault-password-file" in done.stderr


def test_missing_password_file_is_one_line(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.ini"
    inventory.write_text("[web]\nh1 ansible_connection=local\n")
    missing = tmp_path / "nope"
    done = cli_runner.kremove(
        "inventory", "check", "-i", str(inventory), "--vault-password-file", str(missing),
        home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert f"--vault-password-file {missing}: cannot read" in done.stderr


def fleet_inventory(tmp_path: Path, fleet: Fleet, vault_args: list[str]) -> tuple[Path, str]:
    """An Ansible YAML inventory of the fleet's password-only host whose login password is a
    !vault value (and an unused vaulted var with a vault id no password is given for)."""
    host = fleet.by_kind("password_only")[0]
    assert host.password_env is not None
    password = fleet.env[host.password_env]
    unused = password_file(tmp_path, "unused-pass", "never given to kremove")
    lines = [
        "all:",
        "  hosts:",
        f"    {host.name}:",
        f"      ansible_host: {host.address}",
        f"      ansible_port: {host.port}",
        f"      ansible_user: {host.user}",
        encrypt_string(tmp_path, password, "ansible_password", *vault_args, indent=6).rstrip(),
        encrypt_string(
            tmp_path, "x" * 12, "app_token", "--vault-id", f"app@{unused}", indent=6
        ).rstrip(),
    ]
    inventory = tmp_path / "fleet.yml"
    inventory.write_text("\n".join(lines) + "\n")
    return inventory, password


def test_a_vaulted_login_password_logs_in_and_is_never_shown_or_stored(
    tmp_path: Path, small_fleet: Fleet
) -> None:
    script = password_script(tmp_path, "vault-client.sh", {"fleet": VAULT_PASSWORD})
    secret = password_file(tmp_path, "fleet-pass", VAULT_PASSWORD)
    inventory, password = fleet_inventory(tmp_path, small_fleet, ["--vault-id", f"fleet@{secret}"])
    ledger = tmp_path / "ledger" / "ledger.db"
    done = cli_runner.kremove(
        "--debug", "detect", "-i", str(inventory), "--vault-id", f"fleet@{script}",
        "--accept-new-hostkeys", "--json", home=tmp_path, ledger=ledger,
    )  # fmt: skip
    host = json.loads(done.stdout)["hosts"][0]
    assert host["status"] == "found", done.stderr  # logged in with the decrypted password
    assert (tmp_path / "vault-client.sh.calls").read_text() == "--vault-id fleet\n"
    stored = [p for p in ledger.parent.iterdir() if p.name.startswith("ledger.db")]
    assert stored
    for blob in [done.stdout.encode(), done.stderr.encode()] + [p.read_bytes() for p in stored]:
        assert password.encode() not in blob and VAULT_PASSWORD.encode() not in blob
    # The same inventory, a wrong vault password: one line naming the file, line, vault id.
    wrong = password_file(tmp_path, "wrong-pass", "not it")
    for debug in ([], ["--debug"]):
        done = cli_runner.kremove(
            *debug, "detect", "-i", str(inventory), "--vault-password-file", str(wrong),
            "--accept-new-hostkeys", home=tmp_path, ledger=ledger,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert f"{inventory}:7:" in done.stderr and "vault id 'fleet'" in done.stderr
        assert password not in done.stderr and VAULT_PASSWORD not in done.stderr
        assert debug or done.stderr.count("\n") == 1, done.stderr
