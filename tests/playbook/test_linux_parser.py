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
