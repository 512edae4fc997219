"""The vault options through the installed CLI: a real SSH login with a password that only
ansible-vault's ciphertext holds, never shown or stored; prompts refused without a terminal."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path

from tests import cli_runner
from tests.fleet.fleet import Fleet
from tests.integration.test_tmux import tmux
from tests.inventory.ansible_tools import (
    encrypt_file,
    encrypt_string,
    password_file,
    password_script,
)

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


def test_ask_vault_pass_on_a_terminal_opens_a_whole_encrypted_file(tmp_path: Path) -> None:
    """On a real terminal (tmux) the password is asked once, not echoed, and opens the file."""
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[web]\nweb-from-vault ansible_connection=local\n")
    encrypt_file(inventory, "--vault-id", f"ops@{password_file(tmp_path, 'p', VAULT_PASSWORD)}")
    env = cli_runner.cli_env(home=tmp_path, strip=(*cli_runner.OWN_SETTINGS, "TMUX", "CI"))
    tmux = Tmux(tmp_path, env)
    try:
        tmux(
            "new-session", "-d", "-x", "160", "-y", "30",
            f"{cli_runner.KREMOVE} inventory check -i {shlex.quote(str(inventory))} "
            "--vault-id ops@prompt; echo EXIT=$?; sleep 30",
        )  # fmt: skip
        tmux.wait_for("Vault password (ops):")
        tmux("send-keys", VAULT_PASSWORD, "Enter")
        screen = tmux.wait_for("EXIT=")
    finally:
        tmux.stop()
    assert "EXIT=0" in screen and "web-from-vault" in screen, screen
    assert VAULT_PASSWORD not in screen


class Tmux:
    """One tmux session on a private socket: commands, the screen, and waiting for text on it."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.base = [tmux(), "-S", str(directory / "tmux.sock")]
        self.session = f"vault-{os.getpid()}"
        self.env = env

    def __call__(self, command: str, *args: str) -> str:
        done = subprocess.run(
            [*self.base, command, "-t" if command != "new-session" else "-s", self.session, *args],
            env=self.env, capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        return done.stdout

    def wait_for(self, text: str) -> str:
        screen = ""
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up:
            screen = self("capture-pane", "-p")
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never shown; the screen:\n{screen}")

    def stop(self) -> None:
        subprocess.run([*self.base, "kill-server"], check=False, timeout=30)
