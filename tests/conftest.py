"""Shared pytest configuration: the simulated fleets' fixtures (tests/fleet/README.md), a ledger
in the session's tmp for code that looks for the default one, and a last check over everything
the session wrote: no fleet secret may appear outside the fleets' own directories (ledgers,
reports, known_hosts pins, inventories, archives — whatever kremove wrote).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.fleet.pytest_plugin", "tests.fleet.winrm_host.pytest_plugin"]


@pytest.fixture(autouse=True, scope="session")
def _default_ledger_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """In-process code (and any subprocess not started through tests/cli_runner, which sets its
    own) that asks for the default ledger gets one in tmp: the suite never writes the real
    default (/var/lib/kremove as root, ~/.local/state/kremove otherwise)."""
    state = tmp_path_factory.mktemp("state")
    patch = pytest.MonkeyPatch()
    patch.setenv("KREMOVE_LEDGER", str(state / "kremove" / "ledger.db"))
    patch.setenv("XDG_STATE_HOME", str(state))
    yield
    patch.undo()


def _fleet_secrets() -> tuple[set[str], list[Path]]:
    """Every secret the session's fleets made, and the directories that legitimately hold them."""
    from tests.fleet.pytest_plugin import SEEN

    # The first base64 line of every unencrypted OpenSSH private key is the same header (the
    # "openssh-key-v1" magic, cipher and KDF "none"): it identifies no key, so it is not a secret.
    header = "b3BlbnNzaC1rZXktdjE"
    secrets = {s for values, _ in SEEN for s in values if len(s) >= 8 and not s.startswith(header)}
    return secrets, [home for _, home in SEEN]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from tests import figures

    figures.flush()
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:
        return
    try:
        base = factory.getbasetemp()
    except (OSError, ValueError):
        return
    secrets, homes = _fleet_secrets()
    if not secrets:
        return
    needles = [s.encode() for s in secrets]
    leaks: list[str] = []
    checked = 0
    for path in base.rglob("*"):
        if not path.is_file() or path.is_symlink() or any(h in path.parents for h in homes):
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        checked += 1
        leaks += [f"{path}: {s[:4].decode(errors='replace')}…" for s in needles if s in data]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"secret scan: {checked} files the session wrote, {len(secrets)} fleet secrets, "
            f"{len(leaks)} leaks"
        )
    if leaks:
        if reporter is not None:
            for leak in leaks[:20]:
                reporter.write_line(f"LEAK {leak}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
