"""The macos_products parser, on the records playbooks/macos/detect.sh.j2 makes of real output.

tests/fixtures/macos holds output as Apple's tools print it: ``pkgutil --pkgs``,
``pkgutil --pkg-info ID`` (one file per receipt), ``launchctl list`` (run as root), ``sw_vers``.
``records()`` builds what the detection script prints from them, line for line as the script
does; test_macos_playbooks.py runs the script itself over the same files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.playbook.loader import load_playbooks
from orchestrator.playbook.model import Catalog, Finding
from orchestrator.playbook.parsers import PARSERS, ParseError, macos
from orchestrator.transports.base import CommandResult

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "macos"
KAV_PATHS = (
    "/Library/Application Support/Kaspersky Lab/KAV",
    "/Applications/Kaspersky Anti-Virus For Mac.app",
    "/Library/Application Support/Kaspersky Lab/KAV/Binaries/UninstallScript",
    "/Library/LaunchDaemons/com.kaspersky.kav.plist",
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_playbooks().catalog


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def records(
    *,
    pkgs: str = "pkgutil-pkgs.txt",
    jobs: str = "launchctl-list.txt",
    paths: tuple[str, ...] = (),
    residue: tuple[str, ...] = (),
    end: bool = True,
) -> str:
    """What detect.sh.j2 prints on a Mac whose tools print the fixture files."""
    out = [f"os\t{line}" for line in fixture("sw_vers.txt").splitlines()]
    out.append("pkgutil\tok")
    for pkg in fixture(pkgs).splitlines():
        if "kaspersky" not in pkg.lower():
            continue
        out.append(f"receipt\t{pkg}")
        info = FIXTURES / "pkg-info" / f"{pkg}.txt"
        if info.exists():
            out += [f"info\t{pkg}\t{line}" for line in info.read_text().splitlines()]
    header, *rows = fixture(jobs).splitlines()
    out.append(f"launchctl\t{header}")
    out += [f"job\t{row}" for row in rows if "kaspersky" in row.lower()]
    out += [f"path\t{p}" for p in paths] + [f"residue\t{p}" for p in residue]
    if end:
        out.append("end")
    return "\n".join(out) + "\n"


def parse(stdout: str, catalog: Catalog) -> list[Finding]:
    result = CommandResult(exit_code=0, stdout=stdout, stderr="", duration=0.1)
    return PARSERS["macos_products"](result, catalog)


def test_the_parser_is_registered_under_its_playbook_name() -> None:
    assert PARSERS["macos_products"] is macos.macos_products


def test_kav_and_the_network_agent_with_versions_and_evidence(catalog: Catalog) -> None:
    found = parse(records(paths=KAV_PATHS), catalog)
    assert [(f.product, f.kind, f.version) for f in found] == [
        ("kav-mac", "installed", "11.3.0.520"),
        ("klnagent", "installed", None),  # the catalog knows no receipt for it
    ]
    kav, agent = found
    assert kav.name == "Kaspersky Anti-Virus / Endpoint Security for Mac"
    assert kav.evidence["receipt"] == "com.kaspersky.kav.core"
    assert kav.evidence["receipts"].split() == [
        "com.kaspersky.kav.core",
        "com.kaspersky.kav.oas",
        "com.kaspersky.kav.webav",
        "com.kaspersky.kav.wksconnector",
    ]
    assert kav.evidence["launchd"] == "com.kaspersky.kav"
    assert kav.evidence["paths"].split("\n") == list(KAV_PATHS)
    assert agent.evidence == {"launchd": "com.kaspersky.klnagent"}  # loaded, not running (78)
    assert kav.label() == "kav-mac 11.3.0.520"


def test_a_clean_mac_has_no_findings_and_residue_is_only_residue(catalog: Catalog) -> None:
    clean = records(pkgs="pkgutil-pkgs-clean.txt", jobs="launchctl-list-clean.txt")
    assert parse(clean, catalog) == []
    left = records(
        pkgs="pkgutil-pkgs-clean.txt",
        jobs="launchctl-list-clean.txt",
        residue=("/Library/Application Support/Kaspersky Lab",),
    )
    (finding,) = parse(left, catalog)
    assert (finding.product, finding.kind, finding.evidence) == (
        "residue",
        "residue",
        {"path": "/Library/Application Support/Kaspersky Lab"},
    )


def test_a_path_alone_is_an_installed_product(catalog: Catalog) -> None:
    stdout = records(
        pkgs="pkgutil-pkgs-clean.txt",
        jobs="launchctl-list-clean.txt",
        paths=("/Library/Application Support/Kaspersky Lab/klnagent",),
    )
    (finding,) = parse(stdout, catalog)
    assert (finding.product, finding.kind, finding.version) == ("klnagent", "installed", None)


def test_kaspersky_receipts_and_jobs_no_catalog_entry_lists_are_installed_and_named(
    catalog: Catalog,
) -> None:
    stdout = (
        records(paths=KAV_PATHS)
        .replace(
            "launchctl\t",
            "receipt\tcom.kaspersky.kes.core\n"
            "info\tcom.kaspersky.kes.core\tpackage-id: com.kaspersky.kes.core\n"
            "info\tcom.kaspersky.kes.core\tversion: 12.0.0.325\n"
            "launchctl\t",
        )
        .replace("end\n", "job\t-\t0\tcom.kaspersky.kes.sysext\nend\n")
    )
    found = {f.product: f for f in parse(stdout, catalog)}
    assert set(found) == {
        "kav-mac",
        "klnagent",
        "unlisted:com.kaspersky.kes.core",
        "unlisted:com.kaspersky.kes.sysext",
    }
    receipt = found["unlisted:com.kaspersky.kes.core"]
    assert (receipt.kind, receipt.version) == ("installed", "12.0.0.325")
    assert "com.kaspersky.kes.core" in receipt.name and "catalog" in receipt.name
    assert found["unlisted:com.kaspersky.kes.sysext"].evidence == {
        "launchd": "com.kaspersky.kes.sysext"
    }


def test_a_receipt_without_pkg_info_is_still_installed(catalog: Catalog) -> None:
    stdout = records(pkgs="pkgutil-pkgs-clean.txt", jobs="launchctl-list-clean.txt").replace(
        "launchctl\t", "receipt\tcom.kaspersky.kav.parctl\nlaunchctl\t"
    )
    (finding,) = parse(stdout, catalog)
    assert (finding.product, finding.version) == ("kav-mac", None)
    assert finding.evidence["receipt"] == "com.kaspersky.kav.parctl"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.replace("end\n", ""), "no end marker"),
        (lambda s: s.replace("end\n", "end\njob\t1\t0\tcom.kaspersky.kav\n"), "after the end"),
        (lambda s: s.replace("pkgutil\tok\n", ""), "pkgutil did not list"),
        (
            lambda s: s.replace("pkgutil\tok\n", "error\tpkgutil --pkgs failed (exit 1): x\n"),
            "pkgutil --pkgs failed",
        ),
        (lambda s: s.replace("launchctl\tPID\tStatus\tLabel\n", ""), "header"),
        (
            lambda s: s.replace("launchctl\tPID\tStatus\tLabel", "launchctl\tUsage: launchctl"),
            "header",
        ),
        (lambda s: s.replace("job\t312\t0\tcom.kaspersky.kav", "job\tcom.kaspersky.kav"), "PID"),
        (lambda s: "\n".join(ln for ln in s.split("\n") if not ln.startswith("os")), "Mac"),
        (lambda s: s.replace("\t\tmacOS", "\t\tDebian GNU/Linux"), "not a macOS host"),
        (lambda s: "", "no end marker"),
    ],
)
def test_output_that_cannot_prove_the_state_is_refused(
    catalog: Catalog, change: object, message: str
) -> None:
    assert callable(change)
    with pytest.raises(ParseError, match=message):
        parse(change(records(paths=KAV_PATHS)), catalog)


def test_fixtures_are_the_formats_apple_prints() -> None:
    header, *rows = fixture("launchctl-list.txt").splitlines()
    assert header == "PID\tStatus\tLabel"
    assert all(len(row.split("\t")) == 3 for row in rows)
    info = fixture("pkg-info/com.kaspersky.kav.core.txt").splitlines()
    assert [line.split(": ")[0] for line in info] == [
        "package-id",
        "version",
        "volume",
        "location",
        "install-time",
    ]
    assert fixture("sw_vers.txt").splitlines()[0] == "ProductName:\t\tmacOS"
