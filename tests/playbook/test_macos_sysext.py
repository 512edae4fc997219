"""KES for Mac 11/12 in the macOS playbooks: its system extension and app bundle in detection, the
vendor-CLI uninstall step that refuses to let a host pass while the extension is activated, and
the new catalog keys' guards (issue 19, item 10). The scripts run for real over stub tools."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from orchestrator.engine.host import plan_steps
from orchestrator.errors import PlaybookError
from orchestrator.playbook.loader import PlaybookSet, load_playbooks
from orchestrator.playbook.parsers import PARSERS, ParseError
from orchestrator.transports.base import CommandResult
from tests.playbook.test_macos_playbooks import FIXTURES, STUBS, context, found, run_detect

SYSEXT = "com.kaspersky.kav.sysext"
LISTED = FIXTURES / "systemextensionsctl-list.txt"
STUBS_KES = {
    **STUBS,
    # Lists $SYSEXTS (a file the fake uninstaller may empty); "list" only, as with SIP on.
    "systemextensionsctl": '#!/bin/sh\n[ "$1" = list ] && exec cat "$SYSEXTS"\nexit 1\n',
    "defaults": '#!/bin/sh\n[ "$1" = read ] && [ "$3" = CFBundleShortVersionString ] && '
    "echo 12.0.0.411\n",
}
APP = "/Applications/Kaspersky Endpoint Security for Mac.app"


@pytest.fixture(scope="module")
def playbooks() -> PlaybookSet:
    return load_playbooks()


def parse(stdout: str, playbooks: PlaybookSet) -> list:  # type: ignore[type-arg]
    result = CommandResult(exit_code=0, stdout=stdout, stderr="", duration=0.1)
    return PARSERS["macos_products"](result, playbooks.catalog)


def detect(playbooks: PlaybookSet, tmp_path: Path, listed: Path = LISTED) -> CommandResult:
    return run_detect(
        playbooks, tmp_path, stubs=STUBS_KES, SYSEXTS=str(listed), PKGS="pkgutil-pkgs-clean.txt",
        JOBS="launchctl-list-clean.txt",
    )  # fmt: skip


def test_the_activated_system_extension_is_kes_installed(
    playbooks: PlaybookSet, tmp_path: Path
) -> None:
    result = detect(playbooks, tmp_path)
    assert f"extension\t*\t*\t2Y8XE5CQ94\t{SYSEXT} (" in result.stdout
    assert "microsoft" not in result.stdout  # another vendor's extension is not ours
    (kes,) = PARSERS["macos_products"](result, playbooks.catalog)
    assert (kes.product, kes.kind, kes.version) == ("kes-mac", "installed", None)  # no app here
    assert kes.evidence == {"system_extensions": f"{SYSEXT} [activated enabled]"}


def test_the_app_gives_the_version(playbooks: PlaybookSet) -> None:
    clean = parse_records(playbooks, extra=f"app\t{APP}\t12.0.0.411\n")
    (kes,) = clean
    assert (kes.product, kes.version, kes.evidence["paths"]) == ("kes-mac", "12.0.0.411", APP)


def parse_records(playbooks: PlaybookSet, extra: str) -> list:  # type: ignore[type-arg]
    head = (FIXTURES / "sw_vers.txt").read_text().splitlines()
    lines = [f"os\t{line}" for line in head] + ["pkgutil\tok", "launchctl\tPID\tStatus\tLabel"]
    return parse("\n".join(lines) + "\nsysext\tok\n" + extra + "end\n", playbooks)


def row(bundle: str, state: str, team: str = "2Y8XE5CQ94") -> str:
    return f"extension\t\t\t{team}\t{bundle} (12.0.0/12.0.0.411)\tKES\t[{state}]\n"


def test_an_extension_waiting_for_the_reboot_is_residue_only(playbooks: PlaybookSet) -> None:
    (left,) = parse_records(playbooks, row(SYSEXT, "terminated waiting to uninstall on reboot"))
    assert (left.kind, left.evidence) == ("residue", {"system_extension": SYSEXT})


def test_an_unlisted_extension_of_kasperskys_team_is_installed_and_named(
    playbooks: PlaybookSet,
) -> None:
    (other,) = parse_records(playbooks, row("com.kaspersky.kes.netext", "activated enabled"))
    assert (other.product, other.kind) == ("unlisted:com.kaspersky.kes.netext", "installed")
    assert "system extension" in other.name


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("extension\t*\t*\t2Y8XE5CQ94\tcom.kaspersky.kav.sysext\n", "six columns"),
        ("error\tsystemextensionsctl list failed (exit 1): x\n", "systemextensionsctl"),
    ],
)
def test_extension_output_that_cannot_prove_the_state_is_refused(
    playbooks: PlaybookSet, extra: str, message: str
) -> None:
    with pytest.raises(ParseError, match=message):
        parse_records(playbooks, extra)


def uninstall(tmp_path: Path, cli: str | None, **macos: object) -> subprocess.CompletedProcess[str]:
    """The uninstall step of kes-mac, its CLI path pointed at ``cli`` (a fake) under tmp_path."""
    override = tmp_path / "site"
    override.mkdir(exist_ok=True)
    path = f"{tmp_path}/kaspersky/kav"
    doc = {"products": {"kes-mac": {"macos": {"uninstaller": path, **macos}}}}
    (override / "catalog.yml").write_text(yaml.safe_dump(doc))
    if cli is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(cli)
        Path(path).chmod(0o755)
    site = load_playbooks([override])
    detect(site, tmp_path)  # writes the stubs to tmp_path/bin
    remove = site.playbook_for("macos", "remove")
    assert remove is not None
    plan = plan_steps(
        remove.steps, site.catalog.ordered(["kes-mac"]), [found("kes-mac", None)], context(site),
        site,
    )  # fmt: skip
    (step,) = [s for s in plan if s.step.id == "uninstall"]
    listed = tmp_path / "listed.txt"
    listed.write_text(LISTED.read_text())
    return subprocess.run(
        ["/bin/sh", "-c", step.command.text], capture_output=True, text=True, timeout=30,
        env={"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "SYSEXTS": str(listed)},
        check=False,
    )  # fmt: skip


def test_the_vendor_cli_that_deactivates_the_extension_passes(
    playbooks: PlaybookSet, tmp_path: Path
) -> None:
    done = uninstall(tmp_path, '#!/bin/sh\n[ "$1" = uninstall ] && : > "$SYSEXTS"\n')
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("cli", "said"),
    [
        ("#!/bin/sh\necho removed\nexit 0\n", "is still activated after"),
        (None, "is not on this host and system extension"),
    ],
)
def test_an_activated_extension_after_the_vendor_step_fails_it_with_the_route(
    playbooks: PlaybookSet, tmp_path: Path, cli: str | None, said: str
) -> None:
    done = uninstall(tmp_path, cli)
    assert done.returncode == 1
    assert said in done.stderr and f"system extension {SYSEXT} " in done.stderr
    assert "own uninstaller" in done.stderr and "MDM" in done.stderr and "SIP" in done.stderr


def test_a_failing_vendor_cli_fails_the_step_with_its_code(
    playbooks: PlaybookSet, tmp_path: Path
) -> None:
    done = uninstall(tmp_path, "#!/bin/sh\necho protected >&2\nexit 3\n")
    assert done.returncode == 3 and "protected" in done.stderr


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"uninstaller": "/usr/bin/rm"}, "not a path kremove may delete"),
        ({"app": "/Applications/Safari.app"}, "not a path kremove may delete"),
        ({"system_extensions": ["-rf"]}, "option"),
        ({"team_ids": ["--x"]}, "option"),
        ({"system_extensions": "com.kaspersky.kav.sysext"}, "list"),
    ],
)
def test_the_new_catalog_keys_are_guarded(tmp_path: Path, entry: dict, message: str) -> None:  # type: ignore[type-arg]
    (tmp_path / "catalog.yml").write_text(
        yaml.safe_dump({"products": {"kes-mac": {"macos": entry}}})
    )
    with pytest.raises(PlaybookError, match=message):
        load_playbooks([tmp_path])


MARK = "/tmp/kremove-kesmac-pwned"


def test_hostile_extension_ids_are_inert(tmp_path: Path) -> None:
    hostile = {"system_extensions": [f"x$(touch {MARK}-s)"], "team_ids": [f"y`touch {MARK}-t`"]}
    done = uninstall(tmp_path, None, **hostile)  # also writes the override
    site = load_playbooks([tmp_path / "site"])
    assert PARSERS["macos_products"](detect(site, tmp_path), site.catalog)
    # The listed extension is no id of this catalog's: none activated, so nothing to refuse.
    assert done.returncode == 0 and "no system extension of it is activated" in done.stdout
    assert not [p for p in os.listdir("/tmp") if p.startswith("kremove-kesmac-pwned")]


def test_an_extension_left_for_the_restart_makes_the_step_ask_for_a_reboot(
    playbooks: PlaybookSet, tmp_path: Path
) -> None:
    waiting = "[terminated waiting to uninstall on reboot]"
    cli = f'#!/bin/sh\nsed -i "s/\\[activated enabled\\]/{waiting}/" "$SYSEXTS"\n'
    done = uninstall(tmp_path, cli)
    assert done.returncode == 194, done.stderr  # remove.yml: 194 means reboot
    assert f"system extension {SYSEXT} is deactivated" in done.stdout
    remove = playbooks.playbook_for("macos", "remove")
    assert remove is not None
    (step,) = [s for s in remove.steps if s.id == "uninstall"]
    assert step.exit_codes == {0: "ok", 194: "reboot"}


def test_the_vendor_tools_own_194_is_a_failure_not_a_reboot(tmp_path: Path) -> None:
    done = uninstall(tmp_path, "#!/bin/sh\nexit 194\n")
    assert done.returncode == 1
