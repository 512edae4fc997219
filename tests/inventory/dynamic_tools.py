"""What the dynamic inventory tests share: inventory scripts written as real executables, an
environment in which kremove runs the real ansible-inventory with its state in the test's
directory, and the one-line error an inventory ends in. Comparisons with ansible-inventory
--list are ansible_compare.py's."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import InventoryError
from orchestrator.inventory import load_inventories
from tests.inventory.ansible_tools import BIN

ANSIBLE_INVENTORY = BIN / "ansible-inventory"


def write_script(path: Path, body: str, mode: int = 0o755) -> Path:
    """An executable Python inventory script (``body`` runs with ``json``, ``os``, ``sys``)."""
    path.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n" + textwrap.dedent(body).lstrip("\n")
    )
    path.chmod(mode)
    return path


def listing_script(path: Path, doc: Mapping[str, Any], **kwargs: int) -> Path:
    """A script that prints ``doc`` for --list and logs each call's arguments to PATH.calls."""
    return write_script(
        path,
        f"""
        with open({str(path) + ".calls"!r}, "a") as log:
            log.write(" ".join(sys.argv[1:]) + "\\n")
        if sys.argv[1] == "--list":
            sys.stdout.write({json.dumps(doc)!r} + "\\n")
        """,
        **kwargs,
    )


def calls(script: Path) -> list[str]:
    log = Path(str(script) + ".calls")
    return log.read_text().splitlines() if log.exists() else []


def ansible_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kremove's ansible-inventory is the real one, its state and config kept in ``tmp_path``."""
    monkeypatch.setenv("KREMOVE_ANSIBLE_INVENTORY", str(ANSIBLE_INVENTORY))
    monkeypatch.setenv("ANSIBLE_HOME", str(tmp_path / ".ansible"))
    monkeypatch.setenv("ANSIBLE_LOCAL_TEMP", str(tmp_path / ".ansible" / "tmp"))
    monkeypatch.setenv("ANSIBLE_CONFIG", str(tmp_path / "no-ansible.cfg"))


def refused(*paths: Path) -> str:
    """The one-line error loading ``paths`` ends in."""
    with pytest.raises(InventoryError) as caught:
        load_inventories(list(paths))
    message = str(caught.value)
    assert "\n" not in message
    return message


def no_process(pid: int, patience: float = 10.0) -> bool:
    """Whether ``pid`` is gone (or a zombie nobody has reaped yet). A SIGKILL is delivered
    asynchronously, so a process is given ``patience`` seconds to die."""
    give_up = time.monotonic() + patience
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > give_up:
            return False
        time.sleep(0.05)
