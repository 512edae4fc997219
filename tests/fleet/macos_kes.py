"""Kaspersky Endpoint Security for Mac 12 on the simulated Macs (layers of tests/fleet/macos.py).

What a KES for Mac 11/12 host has, as far as sources say (playbooks/catalog.yml, kes-mac): the app
bundle /Applications/Kaspersky Endpoint Security for Mac.app with its system extension
com.kaspersky.kav.sysext (team 2Y8XE5CQ94) activated, the vendor CLI ``kav`` and, assumed like
the catalog does, KAV-for-Mac-style receipts and launchd daemon. The extension is a row of
/var/db/kremove-fleet/sysext.json, which the systemextensionsctl shim lists and never changes
(SIP is on); only the vendor CLI's ``kav uninstall`` deactivates it, as macOS lets an app remove
its own extension. Layers:

- ``macos-kes12``: ``kav uninstall`` deactivates the extension, unloads the daemon, deletes the
  app and the product's files and forgets its receipts;
- ``macos-kes12-sysext-stays``: ``kav uninstall`` deletes the app, files and receipts and exits
  0, but the extension stays activated (as when an app bundle is deleted instead of asking macOS
  to deactivate its extension);
- ``macos-kes12-no-cli``: the product without its ``kav`` CLI (nothing can deactivate it here);
- ``macos-kes12-reboot``: like macos-kes12, but the deactivated extension stays listed as
  "terminated waiting to uninstall on reboot" until the Mac restarts (which it never does here).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

KES_LAYER = "macos-kes12"
KES_STAYS_LAYER = "macos-kes12-sysext-stays"
KES_NO_CLI_LAYER = "macos-kes12-no-cli"
KES_REBOOT_LAYER = "macos-kes12-reboot"
LAYERS = (KES_LAYER, KES_STAYS_LAYER, KES_NO_CLI_LAYER, KES_REBOOT_LAYER)
WAITING = "terminated waiting to uninstall on reboot"
# What kav uninstall does to the extension, per layer: drops its row, leaves it for the restart,
# or leaves it activated.
DEACTIVATION = {KES_LAYER: "drop", KES_REBOOT_LAYER: WAITING, KES_STAYS_LAYER: "keep"}

SYSEXT_STATE = "var/db/kremove-fleet/sysext.json"
KES_VERSION = "12.0.0.411"
KES_APP = "Applications/Kaspersky Endpoint Security for Mac.app"
KES_CLI = "Library/Application Support/Kaspersky Lab/KAV/Binaries/kav"
SYSEXT = {
    "category": "com.apple.system_extension.endpoint_security",
    "team": "2Y8XE5CQ94",
    "bundle": "com.kaspersky.kav.sysext",
    "version": f"{KES_VERSION}/{KES_VERSION}",
    "name": "Kaspersky Endpoint Security",
    "state": "activated enabled",
}
APPLE_SYSEXT: list[dict[str, Any]] = []  # a fresh Mac of the base layer has none
KES_RECEIPTS = ("com.kaspersky.kav.core", "com.kaspersky.kav.oas", "com.kaspersky.kav.webav")
KES_JOB = ("com.kaspersky.kav", "system", 318, "/Library/LaunchDaemons/com.kaspersky.kav.plist")

# The vendor CLI, simulated: "kav uninstall" as root. DEACTIVATION: see above.
KAV_CLI = """
import json, os, shutil, subprocess, sys
from pathlib import Path

DEACTIVATION = {deactivation!r}
STATE = Path("/var/db/kremove-fleet/sysext.json")
USAGE = "Usage: kav <command> <parameters>; kav -? | help (fleet simulation: uninstall)"


def main(argv):
    if argv[:1] != ["uninstall"]:
        print(USAGE, file=sys.stderr)
        return 1
    if os.geteuid() != 0:
        print("kav: administrator rights are required to run this command", file=sys.stderr)
        return 1
    print("Uninstalling Kaspersky Endpoint Security for Mac...")
    if DEACTIVATION != "keep":
        rows = json.loads(STATE.read_text())["extensions"]
        ours = [r for r in rows if r["bundle"] == "com.kaspersky.kav.sysext"]
        rows = [r for r in rows if r not in ours]
        if DEACTIVATION != "drop":
            rows += [{{**r, "state": DEACTIVATION}} for r in ours]
        STATE.write_text(json.dumps({{"extensions": rows}}, indent=1) + "\\n")
        print("System extension com.kaspersky.kav.sysext deactivated.")
    subprocess.run(["launchctl", "bootout", "system/com.kaspersky.kav"], check=False,
                   stderr=subprocess.DEVNULL)
    for path in ("/{app}", "/Library/Application Support/Kaspersky Lab/KAV",
                 "/Library/LaunchDaemons/com.kaspersky.kav.plist"):
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.unlink(path)
    for pkg in {receipts!r}:
        subprocess.run(["pkgutil", "--forget", pkg], check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    print("Kaspersky Endpoint Security for Mac has been removed.")
    return 0


sys.exit(main(sys.argv[1:]))
"""


def receipts_of(layer: str) -> dict[str, str]:
    return dict.fromkeys(KES_RECEIPTS, KES_VERSION) if layer in LAYERS else {}


def jobs_of(layer: str) -> dict[str, str]:
    return {KES_JOB[0]: KES_JOB[1]} if layer in LAYERS else {}


def build(name: str, root: Path, mac: Any, python: str) -> None:
    """Layer ``name`` in ``root``; ``mac`` is tests.fleet.macos (its file helpers)."""
    mac._app(root / KES_APP, "com.kaspersky.kes.mac", KES_VERSION, "Kaspersky Endpoint Security")
    ext = (
        root
        / KES_APP
        / "Contents/Library/SystemExtensions/com.kaspersky.kav.sysext.systemextension"
    )
    mac._plist(
        ext / "Contents/Info.plist",
        {"CFBundleIdentifier": SYSEXT["bundle"], "CFBundleShortVersionString": KES_VERSION},
        binary=False,
    )
    if name != KES_NO_CLI_LAYER:
        source = KAV_CLI.format(
            deactivation=DEACTIVATION[name], app=KES_APP, receipts=list(KES_RECEIPTS)
        )
        mac._write(root / KES_CLI, f"#!{python} -IS\n{source}", 0o755)
    mac._write(root / "Library/Application Support/Kaspersky Lab/KAV/Bases/kav.dat", "b\n", 0o644)
    label, domain, pid, plist = KES_JOB
    program = "/Library/Application Support/Kaspersky Lab/KAV/Binaries/kavd"
    mac._plist(
        root / plist.lstrip("/"),
        {"Label": label, "ProgramArguments": [program], "RunAtLoad": True, "KeepAlive": True},
        binary=False,
    )
    for pkg in KES_RECEIPTS:
        mac._receipt(root, pkg, KES_VERSION)
    job = {"label": label, "domain": domain, "pid": pid, "status": 0, "plist": plist}
    mac._jobs(root, [{**job, "program": program}])
    write_extensions(root, [SYSEXT])


def write_extensions(root: Path, rows: list[dict[str, Any]]) -> None:
    path = root / SYSEXT_STATE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"extensions": [*APPLE_SYSEXT, *rows]}, indent=1) + "\n")
    path.chmod(0o644)
