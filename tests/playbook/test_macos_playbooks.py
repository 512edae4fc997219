"""The macOS playbooks: the detection script run for real (over stub tools that print the fixture
files), the removal plan in catalog order with every value quoted, hostile catalog data inert."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.engine.host import plan_steps
from orchestrator.playbook.loader import PlaybookSet, load_playbooks
from orchestrator.playbook.model import Finding
from orchestrator.playbook.parsers import PARSERS, ParseError
from orchestrator.transports.base import CommandResult

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "macos"

# Stand-ins for Apple's tools that print the captured output in tests/fixtures/macos.
STUBS = {
    "pkgutil": """#!/bin/sh
case "$1" in
  --pkgs) cat "$FIX/$PKGS" ;;
  --pkg-info)
    if [ -f "$FIX/pkg-info/$2.txt" ]; then cat "$FIX/pkg-info/$2.txt"
    else printf "No receipt for '%s' found at '/'.\\n" "$2" >&2; exit 1; fi ;;
  *) exit 1 ;;
esac
""",
    "launchctl": """#!/bin/sh
[ "$1" = list ] && [ -z "$FAIL_LAUNCHCTL" ] && exec cat "$FIX/$JOBS"
echo "launchctl: not permitted" >&2; exit 1
""",
    "sw_vers": '#!/bin/sh\ncat "$FIX/sw_vers.txt"\n',
}


def context(playbooks: PlaybookSet) -> dict[str, Any]:
    host = {"name": "mac", "address": "127.0.0.1", "platform": "macos", "vars": {}}
    return {"host": host, "catalog": playbooks.catalog, "secrets": {}}


def run_detect(
    playbooks: PlaybookSet, tmp_path: Path, *, stubs: dict[str, str] = STUBS, **env: str
) -> CommandResult:
    bindir = tmp_path / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for name, text in stubs.items():
        (bindir / name).write_text(text)
        (bindir / name).chmod(0o755)
    script = playbooks.renderer.render("macos/detect.sh.j2", context(playbooks)).text
    done = subprocess.run(
        ["/bin/sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        env={
            "PATH": f"{bindir}:/usr/bin:/bin",
            "FIX": str(FIXTURES),
            "PKGS": "pkgutil-pkgs.txt",
            "JOBS": "launchctl-list.txt",
            **env,
        },
    )
    assert done.returncode == 0, done.stderr
    return CommandResult(0, done.stdout, done.stderr, 0.1)


@pytest.fixture(scope="module")
def playbooks() -> PlaybookSet:
    return load_playbooks()


def test_detect_verify_and_remove_load_for_macos(playbooks: PlaybookSet) -> None:
    detect = playbooks.playbook_for("macos", "detect")
    verify = playbooks.playbook_for("macos", "verify")
    remove = playbooks.playbook_for("macos", "remove")
    assert detect is not None and verify is not None and remove is not None
    assert [(s.id, s.readonly, s.become, s.parser) for s in detect.steps] == [
        ("privilege", True, False, "posix_privilege"),
        ("inventory", True, True, "macos_products"),
    ]
    assert [(s.id, s.parser) for s in verify.steps] == [("verify", "macos_products")]
    assert verify.steps[0].template == detect.steps[1].template
    assert [s.id for s in remove.steps] == ["uninstall", "unload", "forget", "files", "cleanup"]
    assert all(not s.readonly and s.become for s in remove.steps)
    # The uninstall step's 194 is its own "the system extension goes at the next restart".
    assert [s.exit_codes for s in remove.steps] == [{0: "ok", 194: "reboot"}] + ["posix"] * 4


def test_the_detection_script_over_real_tool_output(playbooks: PlaybookSet, tmp_path: Path) -> None:
    result = run_detect(playbooks, tmp_path)
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        "os\tProductName:\t\tmacOS",
        "os\tProductVersion:\t\t14.5",
        "os\tBuildVersion:\t\t23F79",
        "pkgutil\tok",
    ]
    assert "receipt\tcom.microsoft.package.Microsoft_AutoUpdate.app" not in lines
    assert "info\tcom.kaspersky.kav.core\tversion: 11.3.0.520" in lines
    assert "launchctl\tPID\tStatus\tLabel" in lines
    assert [ln for ln in lines if ln.startswith("job")] == [
        "job\t312\t0\tcom.kaspersky.kav",
        "job\t-\t78\tcom.kaspersky.klnagent",
    ]
    assert lines[-1] == "end"
    found = PARSERS["macos_products"](result, playbooks.catalog)
    assert [(f.product, f.version) for f in found] == [
        ("kav-mac", "11.3.0.520"),
        ("klnagent", None),
    ]
    clean = run_detect(
        playbooks, tmp_path, PKGS="pkgutil-pkgs-clean.txt", JOBS="launchctl-list-clean.txt"
    )
    assert PARSERS["macos_products"](clean, playbooks.catalog) == []


def test_a_host_without_the_tools_or_with_a_failing_one_is_never_clean(
    playbooks: PlaybookSet, tmp_path: Path
) -> None:
    parse = PARSERS["macos_products"]
    failing = run_detect(playbooks, tmp_path, FAIL_LAUNCHCTL="1")
    with pytest.raises(ParseError, match="launchctl list failed"):
        parse(failing, playbooks.catalog)
    no_pkgutil = {k: v for k, v in STUBS.items() if k != "pkgutil"}
    linux = run_detect(playbooks, tmp_path / "linux", stubs=no_pkgutil)
    with pytest.raises(ParseError, match="pkgutil --pkgs failed"):
        parse(linux, playbooks.catalog)


def found(product: str, version: str | None) -> Finding:
    return Finding(product, product, version, "installed", {"launchd": "x"})


def test_the_removal_plan_follows_catalog_order_and_quotes_every_path(
    playbooks: PlaybookSet,
) -> None:
    catalog = playbooks.catalog
    findings = [found("klnagent", None), found("kav-mac", "11.3.0.520")]
    remove = playbooks.playbook_for("macos", "remove")
    assert remove is not None
    products = catalog.ordered(f.product for f in findings)
    plan = plan_steps(remove.steps, products, findings, context(playbooks), playbooks)
    assert [p.ledger_id for p in plan] == [
        "uninstall:kav-mac",
        "uninstall:klnagent",
        "unload:kav-mac",
        "unload:klnagent",
        "forget:kav-mac",  # the catalog lists no receipt for the Network Agent
        "files:kav-mac",
        "files:klnagent",
        "cleanup",
    ]
    text = {p.ledger_id: p.command.text for p in plan}
    assert (
        "script='/Library/Application Support/Kaspersky Lab/KAV/Binaries/UninstallScript'"
        in text["uninstall:kav-mac"]
    )
    assert "com.kaspersky.kav com.kaspersky.kav.gui" in text["unload:kav-mac"]
    assert "/Library/LaunchAgents/com.kaspersky.kav.gui.plist" in text["unload:kav-mac"]
    assert "pkgutil --forget" in text["forget:kav-mac"]
    assert text["files:klnagent"].strip() == (
        "rm -rf -- '/Library/Application Support/Kaspersky Lab/klnagent'"
    )
    assert "'/Library/Application Support/Kaspersky Lab'" in text["cleanup"]


MARK = "/tmp/kremove-macos-pwned"
# Removal scripts run here only as nobody: they cannot change this machine even if they tried.
AS_NOBODY = (
    ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []
)


def test_hostile_catalog_data_is_inert_in_detection_and_removal_scripts(
    tmp_path: Path,
) -> None:
    override = tmp_path / "site"
    override.mkdir()
    hostile = {
        "macos": {
            "receipts": [f"com.kaspersky.x$(touch {MARK}-r)"],
            "launchd": [f"com.kaspersky.x;touch {MARK}-l", f"../../tmp/kaspersky`touch {MARK}-d`"],
            "launchd_plists": [f"/Library/LaunchDaemons/kaspersky$(touch {MARK}-p).plist"],
            "uninstall_script": f"/Library/Kaspersky Lab/x'; touch {MARK}-u; '",
            "paths": [f"/tmp/kaspersky-nothing/$(touch {MARK}-f)"],
        }
    }
    doc = {"products": {"kav-mac": hostile}, "platforms": {"macos": {"residue_paths": []}}}
    (override / "catalog.yml").write_text(yaml.safe_dump(doc))
    playbooks = load_playbooks([override])
    result = run_detect(playbooks, tmp_path)
    assert PARSERS["macos_products"](result, playbooks.catalog)  # still parses
    remove = playbooks.playbook_for("macos", "remove")
    assert remove is not None
    products = playbooks.catalog.ordered(["kav-mac"])
    plan = plan_steps(
        remove.steps, products, [found("kav-mac", None)], context(playbooks), playbooks
    )
    # Run everything but the deletion of the (hostile, nonexistent) paths, as an unprivileged
    # shell with the stub tools: nothing may interpret the payloads.
    for step in plan:
        if step.step.id == "files":
            assert f"'/tmp/kaspersky-nothing/$(touch {MARK}-f)'" in step.command.text
            continue
        subprocess.run(
            [*AS_NOBODY, "/bin/sh", "-c", step.command.text],
            capture_output=True,
            timeout=30,
            env={"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "FIX": str(FIXTURES)},
            check=False,
        )
    assert not [p for p in os.listdir("/tmp") if p.startswith("kremove-macos-pwned")]
