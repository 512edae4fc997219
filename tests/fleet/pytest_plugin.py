"""pytest fixtures for the simulated SSH fleet (enabled by tests/conftest.py).

- ``fleet_factory`` (session): ``fleet_factory({"one_product": 3})`` starts a Fleet in a fresh
  temporary directory; every fleet it started is stopped at the end of the session.
- ``small_fleet`` (session): one host of every kind, shared by the session's tests. Tests that
  change a host should ``small_fleet.reset(name)`` afterwards (or use their own fleet).

When this machine cannot run a fleet (not root, no unshare or overlayfs, no apt-get to install
openssh-server and sudo) the tests that use these fixtures are skipped with the reason, except
in CI (CI=true), where that is a failure: CI must exercise them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from .fleet import Fleet
from .kinds import KINDS
from .system import FleetUnavailable

# Every fleet's secrets and home, for the session's final leak scan (tests/conftest.py).
SEEN: list[tuple[list[str], Path]] = []
FleetFactory = Callable[..., Fleet]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"the SSH fleet cannot run on this CI machine: {reason}", pytrace=False)
    pytest.skip(f"SSH fleet unavailable: {reason}")


@pytest.fixture(scope="session")
def fleet_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetFactory]:
    started: list[Fleet] = []
    unavailable: list[str] = []

    def start(kinds: Sequence[str] | Mapping[str, int], **options: Any) -> Fleet:
        if unavailable:
            _unavailable(unavailable[0])
        workdir = tmp_path_factory.mktemp("fleet")
        try:
            fleet = Fleet.start(workdir, kinds, **options)
        except FleetUnavailable as exc:
            unavailable.append(str(exc))
            _unavailable(str(exc))
            raise  # not reached: skip and fail raise
        started.append(fleet)
        SEEN.append((list(fleet.secrets), fleet.workdir))
        return fleet

    yield start
    for fleet in started:
        fleet.stop()


@pytest.fixture(scope="session")
def small_fleet(fleet_factory: FleetFactory) -> Fleet:
    """One host of every kind (see tests/fleet/README.md), started once per session."""
    return fleet_factory(list(KINDS))
