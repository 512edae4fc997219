"""The linux_packages parser, on output captured from dpkg-query and rpm."""

from __future__ import annotations

import pytest

from orchestrator.playbook.loader import load_playbooks
from orchestrator.playbook.model import Catalog
from orchestrator.playbook.parsers import ParseError
from orchestrator.playbook.parsers.linux import linux_packages
from orchestrator.transports.base import CommandResult

# Captured from dpkg-query 1.21 (Debian 12) with the format in playbooks/linux/detect.sh.j2.
DPKG = (
    "manager\tdpkg\n"
    "dpkg\tkesl\t12.1.0-1297\tamd64\tinstall ok installed\n"
    "dpkg\tklnagent64\t14.0.0-4646\tamd64\tdeinstall ok config-files\n"
    "dpkg\tkess\t\t\tunknown ok not-installed\n"
    "dpkg\tkesl-gui\t12.1.0-1297\tamd64\tinstall ok half-configured\n"
    "path\t/opt/kaspersky\n"
)
# rpm -q --qf prints the format for installed packages and a sentence for the others.
RPM = (
    "manager\trpm\n"
    "rpm\tklnagent64\t14.0.0-4646\tx86_64\tinstall ok installed\n"
    "package kesl is not installed\n"
    "package kess is not installed\n"
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_playbooks().catalog


def parse(stdout: str, catalog: Catalog) -> list[tuple[str, str, str | None, str]]:
    result = CommandResult(exit_code=0, stdout=stdout, stderr="", duration=0.1)
    return [
        (f.product, f.kind, f.version, f.evidence.get("package") or f.evidence["path"])
        for f in linux_packages(result, catalog)
    ]


def test_dpkg_states(catalog: Catalog) -> None:
    assert parse(DPKG, catalog) == [
        ("kesl", "installed", "12.1.0-1297", "kesl"),
        ("klnagent", "residue", "14.0.0-4646", "klnagent64"),
        ("kesl-gui", "installed", "12.1.0-1297", "kesl-gui"),
        ("residue", "residue", None, "/opt/kaspersky"),
    ]


def test_rpm_installed_and_missing(catalog: Catalog) -> None:
    assert parse(RPM, catalog) == [("klnagent", "installed", "14.0.0-4646", "klnagent64")]


def test_clean_host(catalog: Catalog) -> None:
    assert parse("manager\tdpkg\n", catalog) == []


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        ("", "no package manager line"),
        ("manager\tnone\n", "neither dpkg nor rpm"),
        ("manager\tdpkg\nerror\tdpkg-query exited 2\n", "dpkg-query exited 2"),
    ],
)
def test_output_that_cannot_prove_clean_is_an_error(
    catalog: Catalog, stdout: str, message: str
) -> None:
    with pytest.raises(ParseError, match=message):
        parse(stdout, catalog)


def test_packages_not_in_the_catalog_are_ignored(catalog: Catalog) -> None:
    assert parse("manager\tdpkg\ndpkg\tbash\t5.2\tamd64\tinstall ok installed\n", catalog) == []


# Issue 19: what owns files under Kaspersky's directories, and what runs from them.
OWNERS = (
    "manager\tdpkg\n"
    "dpkg\tkesl\t12.1.0-1297\tamd64\tinstall ok installed\n"
    "owner\tdpkg\tkesl\t/opt/kaspersky\n"
    "owner\tdpkg\tklms\t/opt/kaspersky\n"
    "owner\tdpkg\tklms\t/opt/kaspersky/klms/bin\n"
    "owner\trpm\tkics\t/opt/kaspersky/kics\n"
    "process\t4242\t/opt/kaspersky/kesl/bin/kesl-control\n"
    "owner\tdpkg\tkesl\t/opt/kaspersky/kesl/bin/kesl-control\n"
    "process\t777\t/opt/kaspersky/ksc64/sbin/klserver (deleted)\n"
    "path\t/opt/kaspersky\n"
)


def test_a_package_the_catalog_does_not_know_owning_kaspersky_files_is_unknown_kaspersky(
    catalog: Catalog,
) -> None:
    findings = linux_packages(
        CommandResult(exit_code=0, stdout=OWNERS, stderr="", duration=0.1), catalog
    )
    unknown = [f for f in findings if f.product == "unknown-kaspersky"]
    assert all(f.kind == "installed" for f in unknown)
    assert [f.evidence for f in unknown] == [
        {"manager": "dpkg", "package": "klms", "path": "/opt/kaspersky"},
        {"path": "/opt/kaspersky/ksc64/sbin/klserver (deleted)", "pid": "777"},
    ]
    assert "klms" in unknown[0].name and "/opt/kaspersky" in unknown[0].name
    assert "pid 777" in unknown[1].name
    # Catalog packages (kesl, kics) and the program kesl owns are not unknown.
    assert [f.product for f in findings if f.product != "unknown-kaspersky"] == ["kesl", "residue"]


def test_kess_and_kics_have_their_gui_packages_removed_first(catalog: Catalog) -> None:
    stdout = (
        "manager\tdpkg\n"
        "dpkg\tkess\t3.3.0-100\tamd64\tinstall ok installed\n"
        "dpkg\tkess-gui\t3.3.0-100\tamd64\tinstall ok installed\n"
        "dpkg\tkics-gui\t2.0.0-10\tamd64\tinstall ok installed\n"
        "dpkg\tkav4ws\t5.7.0-1\ti386\tinstall ok installed\n"
        "dpkg\tkwts\t6.1.0-4762\tamd64\tinstall ok installed\n"
    )
    assert [p for p, *_ in parse(stdout, catalog)] == [
        "kess",
        "kess-gui",
        "kics-gui",
        "kav4ws",
        "kwts",
    ]
    order = [p.id for p in catalog.ordered(["kess", "kess-gui", "kics", "kics-gui"])]
    assert order.index("kess-gui") < order.index("kess")
    assert order.index("kics-gui") < order.index("kics")


def test_a_program_in_an_installed_products_directory_is_that_products_until_it_is_removed(
    catalog: Catalog,
) -> None:
    """KESL may run a program its package does not list (an updated engine): while kesl is
    installed that is kesl's, and the removal stops it; after the removal it is unknown."""
    program = "process\t99\t/opt/kaspersky/kesl/libexec/updated-engine\n"
    before = parse(
        "manager\tdpkg\ndpkg\tkesl\t12.1.0-1297\tamd64\tinstall ok installed\n" + program, catalog
    )
    assert [p for p, *_ in before] == ["kesl"]
    after = parse("manager\tdpkg\n" + program, catalog)
    assert after == [
        ("unknown-kaspersky", "installed", None, "/opt/kaspersky/kesl/libexec/updated-engine")
    ]
