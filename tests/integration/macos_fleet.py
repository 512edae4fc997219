"""What the simulated-Mac fleet tests share: a kremove home with the fleet's inventory, and
kremove detect/run over it as JSON with the exit code they must end with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import kremove
from tests.fleet.fleet import Fleet


def fleet_home(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A kremove home holding known_hosts and fleet.yml for ``fleet``."""
    home = tmp_path_factory.mktemp(name)
    known = fleet.write_known_hosts(home / "known_hosts")
    fleet.write_inventory(home / "fleet.yml", known_hosts=known)
    return home


def kremove_json(fleet: Fleet, home: Path, command: str, returncode: int) -> dict[str, Any]:
    """``kremove detect`` or ``kremove run --yes`` over the whole fleet, its JSON answer."""
    extra = ("--yes",) if command == "run" else ()
    done = kremove(
        command, "-i", str(home / "fleet.yml"), *extra, "--json", home=home, env=fleet.env
    )
    assert done.returncode == returncode, done.stdout + done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc
