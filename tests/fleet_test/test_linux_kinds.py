"""Issue 19: the Linux kinds a practice fleet needs for the catalog's GUI packages and the
unknown-Kaspersky safety net, and the practice fleet's default kinds that include one."""

from __future__ import annotations

from orchestrator.cli.lab import LAB_KINDS
from orchestrator.playbook.loader import load_playbooks
from tests.fleet.fleet import parse_kinds
from tests.fleet.kinds import KINDS


def test_the_practice_fleet_has_an_unknown_kaspersky_host_among_its_20_linux_hosts() -> None:
    counts = {k: int(n) for k, n in (item.split("=") for item in LAB_KINDS.split(","))}
    planned = parse_kinds(counts)  # every kind exists
    assert counts["unknown_kaspersky"] == 1
    linux = [kind for kind in planned if KINDS[kind].platform == "linux"]
    assert len(linux) == 20  # README: "20 simulated Linux hosts"


def test_the_gui_kinds_install_gui_and_core_and_the_unknown_kind_a_package_no_catalog_names() -> (
    None
):
    assert set(KINDS["kess_gui"].packages()) == {"kess", "kess-gui"}
    assert set(KINDS["kics_gui"].packages()) == {"kics", "kics-gui"}
    assert set(KINDS["unknown_kaspersky"].packages()) == {"klunlisted"}
    assert load_playbooks().catalog.product_for_package("klunlisted") is None
