"""The real ansible-core programs (a test-only dependency, installed beside this interpreter by
./dev): ansible-vault makes the encrypted values and files the tests read, ansible-inventory
checks that the test inventories are valid Ansible. kremove itself never imports ansible-core."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def ansible(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``tool`` (ansible-vault, ansible-inventory) in ``cwd`` with its state kept there."""
    program = BIN / tool
    if not program.exists():
        pytest.fail(f"{program} is missing: install the dev extra (./dev test does)")
    env = {
        **os.environ,
        "ANSIBLE_HOME": str(cwd / ".ansible"),
        "ANSIBLE_LOCAL_TEMP": str(cwd / ".ansible" / "tmp"),
        "ANSIBLE_CONFIG": str(cwd / "no-ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
    }
    done = subprocess.run(
        [str(program), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{tool} {args}: {done.stderr}"
    return done


def encrypt_string(cwd: Path, plaintext: str, name: str, *vault: str, indent: int = 0) -> str:
    """``name: !vault |`` and its ciphertext, as ansible-vault encrypt_string writes it."""
    done = ansible("ansible-vault", "encrypt_string", *vault, "--name", name, plaintext, cwd=cwd)
    return textwrap.indent(done.stdout.rstrip("\n") + "\n", " " * indent)


def encrypt_file(path: Path, *vault: str) -> None:
    ansible("ansible-vault", "encrypt", *vault, str(path), cwd=path.parent)
    assert path.read_text().startswith("$ANSIBLE_VAULT;")


def password_file(directory: Path, name: str, password: str) -> Path:
    path = directory / name
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path


def password_script(directory: Path, name: str, passwords: dict[str, str]) -> Path:
    """An executable password script. One named ``*-client`` prints the password of the vault id
    it is given with ``--vault-id`` (exit 2 for an unknown one); any other prints the default's.
    Every call is logged to ``name.calls``, to show how it was run."""
    path = directory / name
    log = directory / f"{name}.calls"
    table = "\n".join(f"    {label}) echo '{pw}' ;;" for label, pw in passwords.items())
    path.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'id=default; [ "$1" = --vault-id ] && id=$2\n'
        'case "$id" in\n'
        f"{table}\n"
        "    *) exit 2 ;;\n"
        "esac\n"
    )
    path.chmod(0o700)
    return path
