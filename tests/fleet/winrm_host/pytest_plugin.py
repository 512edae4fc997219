"""pytest fixtures for the simulated Windows fleet (enabled by tests/conftest.py).

- ``winrm_fleet_factory`` (session): ``winrm_fleet_factory({"kes_and_agent": 3})`` starts a
  WinrmFleet in a fresh temporary directory; every fleet it started is stopped at session end.
- ``winrm_fleet`` (session): one host of every kind, shared by the session's tests. A test that
  changes a host calls ``winrm_fleet.reset(name)`` afterwards (or starts its own fleet).
- ``protected_fleet_factory`` (session): ``protected_fleet_factory({"clean": 1})`` starts two
  protected hosts with their own uninstall passwords per product (protected.py) and the others.

The fleet needs nothing but Python packages (pyspnego, cryptography): it runs everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import pytest

from ..pytest_plugin import SEEN
from .fleet import WinrmFleet
from .kinds import KINDS
from .protected import ProtectedFleet, start_protected

WinrmFleetFactory = Callable[[Sequence[str] | Mapping[str, int]], WinrmFleet]


@pytest.fixture(scope="session")
def winrm_fleet_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WinrmFleetFactory]:
    started: list[WinrmFleet] = []

    def start(kinds: Sequence[str] | Mapping[str, int]) -> WinrmFleet:
        fleet = WinrmFleet.start(tmp_path_factory.mktemp("winrm-fleet"), kinds)
        started.append(fleet)
        SEEN.append((list(fleet.secrets), fleet.workdir))
        return fleet

    yield start
    for fleet in started:
        fleet.stop()


@pytest.fixture(scope="session")
def winrm_fleet(winrm_fleet_factory: WinrmFleetFactory) -> WinrmFleet:
    """One host of every kind (tests/fleet/winrm_host/README.md), started once per session."""
    return winrm_fleet_factory(list(KINDS))


@pytest.fixture(scope="session")
def protected_fleet_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[Mapping[str, int]], ProtectedFleet]]:
    started: list[WinrmFleet] = []

    def start(others: Mapping[str, int]) -> ProtectedFleet:
        protected = start_protected(tmp_path_factory.mktemp("winrm-protected"), others)
        started.append(protected.fleet)
        SEEN.append((list(protected.fleet.secrets), protected.fleet.workdir))
        return protected

    yield start
    for fleet in started:
        fleet.stop()
