"""Issue 15, L1: secret files an inventory names can be confined to a directory the operator names.

Whoever writes an inventory names both a file and the host its content is sent to (a password is
sent to the host that asks for it). With ``KREMOVE_SECRETS_DIR`` set, a ``*_file`` reference that
resolves outside it is refused before anything connects.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from orchestrator.errors import InputError
from orchestrator.inventory.model import SecretRef
from orchestrator.secrets import resolve
from tests.cli_runner import kremove


def _secret_file(path: Path, value: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


def test_without_the_setting_any_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KREMOVE_SECRETS_DIR", raising=False)
    elsewhere = _secret_file(tmp_path / "elsewhere" / "pw", "hunter2-elsewhere")
    assert resolve(SecretRef(file=str(elsewhere)), "x").reveal() == "hunter2-elsewhere"


def test_a_file_inside_the_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = tmp_path / "vault"
    inside = _secret_file(vault / "db" / "pw", "hunter2-inside")
    monkeypatch.setenv("KREMOVE_SECRETS_DIR", str(vault))
    assert resolve(SecretRef(file=str(inside)), "x").reveal() == "hunter2-inside"


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_a_file_outside_the_directory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    outside = _secret_file(tmp_path / "home" / ".ssh" / "id_operator", "not-for-hosts")
    if how == "absolute":
        ref = str(outside)
    elif how == "dotdot":
        ref = str(vault / ".." / "home" / ".ssh" / "id_operator")
    else:
        (vault / "link").symlink_to(outside)
        ref = str(vault / "link")
    monkeypatch.setenv("KREMOVE_SECRETS_DIR", str(vault))
    with pytest.raises(InputError, match="outside KREMOVE_SECRETS_DIR") as caught:
        resolve(SecretRef(file=ref), "host 'web1' password")
    assert "\n" not in str(caught.value) and "not-for-hosts" not in str(caught.value)


def test_the_cli_refuses_before_anything_connects(tmp_path: Path) -> None:
    """A real listener stands in for the host the inventory names: nobody may connect to it."""
    vault = tmp_path / "vault"
    vault.mkdir(mode=0o700)
    outside = _secret_file(tmp_path / "operator-only" / "token", "operator-token-value")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(
            "hosts:\n"
            "  web1:\n"
            "    address: 127.0.0.1\n"
            f"    port: {port}\n"
            "    user: ops\n"
            f"    password_file: {outside}\n"
        )
        done = kremove(
            "detect",
            "-i",
            str(inventory),
            "--ledger",
            str(tmp_path / "state" / "ledger.db"),
            cwd=tmp_path,
            env={"KREMOVE_SECRETS_DIR": str(vault)},
        )
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "outside KREMOVE_SECRETS_DIR" in lines[0], done.stderr
    assert "operator-token-value" not in done.stdout + done.stderr
    assert os.path.exists(outside)


def test_the_setting_is_named_in_help(tmp_path: Path) -> None:
    done = kremove("--help", cwd=tmp_path)
    assert done.returncode == 0 and "KREMOVE_SECRETS_DIR" in done.stdout
