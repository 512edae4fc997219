"""One finding type with one label: what the ledger keeps reads the same in every view."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.cli.console import finding_label
from orchestrator.findings import Finding
from orchestrator.report.document import _finding

WINDOWS = Finding(
    "kes-windows",
    "Kaspersky Endpoint Security for Windows",
    "12.4.0.467",
    evidence={"product_code": "{27534751-4A40-48BD-B393-BC3BF28C876E}", "key": "HKLM\\X"},
)
LINUX = Finding(
    "kesl",
    "Kaspersky Endpoint Security for Linux",
    "11.4.0",
    evidence={"manager": "dpkg", "package": "kesl", "arch": "amd64"},
)
MACOS = Finding("kav-mac", "Kaspersky", "11.3.0.520", evidence={"receipt": "com.kaspersky.kav"})
RESIDUE = Finding("kesl", "Kaspersky directory", None, "residue", {"path": "/opt/kaspersky/kesl"})


@pytest.mark.parametrize(
    ("finding", "label"),
    [
        (WINDOWS, "kes-windows 12.4.0.467"),
        (LINUX, "kesl 11.4.0"),
        (MACOS, "kav-mac 11.3.0.520"),
        (RESIDUE, "/opt/kaspersky/kesl (residue)"),
    ],
)
def test_every_view_shows_a_finding_by_the_same_label(finding: Finding, label: str) -> None:
    kept: dict[str, Any] = finding.to_dict()  # what the ledger stores
    assert Finding.from_dict(kept) == finding
    assert finding.label() == label
    assert finding_label(kept) == label  # runs show, plan, audit host, rollback
    assert _finding(kept)["label"] == label  # report: JSON, CSV, HTML


def test_a_finding_an_older_kremove_wrote_still_reads() -> None:
    old = {"product": "klnagent", "name": "Network Agent", "version": None}
    assert Finding.from_dict(old) == Finding("klnagent", "Network Agent", None)
    assert finding_label(old) == "klnagent"
    assert Finding.from_dict(old).key() == ("klnagent", "installed", "klnagent")
