"""The layers of the simulated macOS hosts: Linux namespaces dressed as Macs with SHIMS.

These hosts are not macOS. Their kernel, shell and coreutils are this Linux machine's; what makes
kremove's macOS playbooks see a Mac is (see README.md, "macOS kinds"):

- the tree a Mac has where kremove looks: /Library, /Applications, /System, /Users (overlays
  like /etc: lowerdirs from these layers, the host's own upper dir on top), receipts in
  /var/db/receipts as plist files, as on a Mac;
- shim commands in /usr/local/bin (first on PATH, for sudo too): ``pkgutil``, ``launchctl``,
  ``sw_vers`` (Python scripts in tests/fleet/macos_shims, run by this machine's /usr/bin/python3)
  and ``uname`` (a sh script that says Darwin). launchd's loaded jobs are rows of a JSON file;
- the vendor-style ``UninstallScript`` of each product: real shell scripts that unload the
  product's jobs through the launchctl shim, delete its files and forget its receipts.

Layers (each has etc/ var/ opt/ and the Mac directories, like the Linux ones):

- ``macos-base``: the Mac skeleton and a few Apple receipts and jobs; ``shims/`` holds the
  commands the launcher copies into the host's /usr/local/bin;
- ``macos-kav``: Kaspersky Anti-Virus for Mac 11.3.0.520 (receipts, app, launchd daemon and
  agent, caches, logs) and the Network Agent (files and daemon; the catalog knows no receipt for
  it), each with its UninstallScript;
- ``macos-kav-uninstall-fails``: the same, but KAV's UninstallScript refuses (exit 1, stderr);
- ``macos-kes12*``: Kaspersky Endpoint Security for Mac 12 with its system extension activated
  (``systemextensionsctl`` and ``defaults`` shims; the layers are in macos_kes.py).
"""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from . import macos_kes

HERE = Path(__file__).resolve().parent
SHIMS_DIR = HERE / "macos_shims"
PYTHON = "/usr/bin/python3"  # the shims' interpreter, inside the host (/root and /home are hidden)
MAC_DIRS = ("Library", "Applications", "System", "Users")
LINUX_DIRS = ("etc", "var", "opt")
SHIMS = {
    "pkgutil": "pkgutil.py",
    "launchctl": "launchctl.py",
    "sw_vers": "sw_vers.py",
    "systemextensionsctl": "systemextensionsctl.py",
    "defaults": "defaults.py",
}
SH_SHIMS = {"uname": "uname.sh"}

BASE_LAYER = "macos-base"
KAV_LAYER = "macos-kav"
KAV_FAILS_LAYER = "macos-kav-uninstall-fails"
LAYERS = (BASE_LAYER, KAV_LAYER, KAV_FAILS_LAYER, *macos_kes.LAYERS)

CONSOLE_UID = 501  # the logged-in user whose GUI domain holds KAV's launch agent
LAUNCHD_STATE = "var/db/kremove-fleet/launchd.json"
RECEIPTS = "var/db/receipts"
KAV_VERSION = "11.3.0.520"
KAV_RECEIPTS = (
    "com.kaspersky.kav.core",
    "com.kaspersky.kav.oas",
    "com.kaspersky.kav.webav",
    "com.kaspersky.kav.wksconnector",
)
ALL_KAV_RECEIPTS = (  # what the vendor script forgets
    *KAV_RECEIPTS,
    "com.kaspersky.kav.parctl",
    "com.kaspersky.kav.webtoolbar",
    "com.kaspersky.kav.vkbd",
)
APPLE_RECEIPTS = {
    "com.apple.pkg.MRTConfigData_10_15.16U4211": "1.93.1.0.1.1680733021",
    "com.apple.pkg.XProtectPayloads_10_15.16U4211": "2.0.0.0.1.1717080421",
    "com.apple.pkg.CLTools_Executables": "15.3.0.0.1.1708646388",
}
APPLE_JOBS: list[dict[str, Any]] = [
    {"label": "com.apple.mDNSResponder", "domain": "system", "pid": 187, "status": 0},
    {"label": "com.apple.backupd-helper", "domain": "system", "pid": None, "status": 0},
    {"label": "com.apple.coreservicesd", "domain": "system", "pid": 140, "status": 0},
    {"label": "com.apple.Finder", "domain": f"gui/{CONSOLE_UID}", "pid": 611, "status": 0},
]
SUPPORT = "Library/Application Support/Kaspersky Lab"
KAV_APP = "Applications/Kaspersky Anti-Virus For Mac.app"
KAV_BINARIES = f"{SUPPORT}/KAV/Binaries"
AGENT_BINARIES = f"{SUPPORT}/klnagent/Binaries"
KAV_JOBS = [  # label, domain, pid, plist
    ("com.kaspersky.kav", "system", 312, "/Library/LaunchDaemons/com.kaspersky.kav.plist"),
    (
        "com.kaspersky.kav.gui",
        f"gui/{CONSOLE_UID}",
        688,
        "/Library/LaunchAgents/com.kaspersky.kav.gui.plist",
    ),
    (
        "com.kaspersky.klnagent",
        "system",
        402,
        "/Library/LaunchDaemons/com.kaspersky.klnagent.plist",
    ),
]
INSTALLED = datetime(2024, 3, 14, 9, 26, 53)

KAV_UNINSTALL = f"""#!/bin/sh
# Kaspersky Anti-Virus for Mac: UninstallScript. A fleet simulation of what the vendor's script
# does: unload the launchd jobs, delete the product's files, forget its package receipts.
echo "Uninstalling Kaspersky Anti-Virus for Mac..."
launchctl bootout system/com.kaspersky.kav 2>/dev/null
launchctl bootout gui/{CONSOLE_UID}/com.kaspersky.kav.gui 2>/dev/null
launchctl bootout system/com.kaspersky.kav.autoupdater 2>/dev/null
rm -rf "/Applications/Kaspersky Anti-Virus For Mac.app" \\
  "/Library/Application Support/Kaspersky Lab/KAV" \\
  /Library/LaunchDaemons/com.kaspersky.kav.plist \\
  /Library/LaunchAgents/com.kaspersky.kav.gui.plist \\
  /Library/Caches/com.kaspersky.kav "/Library/Logs/Kaspersky Lab" \\
  /var/log/kav_daemon*.log || exit 1
for pkg in {" ".join(ALL_KAV_RECEIPTS)}; do
  if pkgutil --pkg-info "$pkg" >/dev/null 2>&1; then
    pkgutil --forget "$pkg" || exit 1
  fi
done
echo "Kaspersky Anti-Virus for Mac has been removed."
exit 0
"""

KAV_UNINSTALL_REFUSES = """#!/bin/sh
# Kaspersky Anti-Virus for Mac: UninstallScript, simulating one that refuses (fleet kind
# macos_uninstall_fails): nothing is changed.
echo "Uninstalling Kaspersky Anti-Virus for Mac..."
echo "UninstallScript: uninstallation is blocked: the application is protected by a \
Kaspersky Security Center policy" >&2
exit 1
"""

AGENT_UNINSTALL = """#!/bin/sh
# Kaspersky Security Center Network Agent for Mac: UninstallScript (fleet simulation).
echo "Uninstalling Network Agent..."
launchctl bootout system/com.kaspersky.klnagent 2>/dev/null
rm -rf "/Library/Application Support/Kaspersky Lab/klnagent" \\
  "/Library/Application Support/Kaspersky Lab/klnagent_conf" \\
  /Library/LaunchDaemons/com.kaspersky.klnagent.plist || exit 1
echo "Network Agent has been removed."
exit 0
"""


def receipts_of(layer: str) -> dict[str, str]:
    """Kaspersky receipt id -> version that a host with ``layer`` has at start."""
    if layer in (KAV_LAYER, KAV_FAILS_LAYER):
        return dict.fromkeys(KAV_RECEIPTS, KAV_VERSION)
    return macos_kes.receipts_of(layer)


def jobs_of(layer: str) -> dict[str, str]:
    """Kaspersky launchd label -> domain that a host with ``layer`` has loaded at start."""
    if layer in (KAV_LAYER, KAV_FAILS_LAYER):
        return {label: domain for label, domain, _, _ in KAV_JOBS}
    return macos_kes.jobs_of(layer)


def build_layer(name: str, root: Path) -> Path:
    """Build layer ``name`` in ``root`` (cached: a finished layer has a ``.done`` file)."""
    if (root / ".done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    for sub in (*LINUX_DIRS, *MAC_DIRS):
        (root / sub).mkdir(parents=True, exist_ok=True)
    if name == BASE_LAYER:
        _base(root)
    elif name in (KAV_LAYER, KAV_FAILS_LAYER):
        _kaspersky(root, refuses=name == KAV_FAILS_LAYER)
    elif name in macos_kes.LAYERS:
        macos_kes.build(name, root, sys.modules[__name__], PYTHON)
    else:
        raise ValueError(f"no macOS layer {name!r}")
    (root / ".done").write_text("")
    return root


def _base(root: Path) -> None:
    _plist(
        root / "System/Library/CoreServices/SystemVersion.plist",
        {
            "ProductBuildVersion": "23F79",
            "ProductCopyright": "1983-2024 Apple Inc.",
            "ProductName": "macOS",
            "ProductUserVisibleVersion": "14.5",
            "ProductVersion": "14.5",
            "iOSSupportVersion": "17.5",
        },
        binary=False,
    )
    for sub in ("LaunchDaemons", "LaunchAgents", "Application Support", "Caches", "Logs"):
        (root / "Library" / sub).mkdir(parents=True, exist_ok=True)
    (root / "Users" / "Shared").mkdir(parents=True, exist_ok=True)
    _app(root / "Applications/Safari.app", "com.apple.Safari", "17.5", "Safari")
    for pkg, version in APPLE_RECEIPTS.items():
        _receipt(root, pkg, version)
    _jobs(root, [])
    macos_kes.write_extensions(root, [])
    shims = root / "shims"
    shims.mkdir()
    for command, source in SHIMS.items():
        text = (SHIMS_DIR / source).read_text()
        _write(shims / command, f"#!{PYTHON} -IS\n{text}", 0o755)
    for command, source in SH_SHIMS.items():
        _write(shims / command, (SHIMS_DIR / source).read_text(), 0o755)


def _kaspersky(root: Path, *, refuses: bool) -> None:
    _app(root / KAV_APP, "com.kaspersky.kav", KAV_VERSION, "Kaspersky Anti-Virus For Mac")
    _write(
        root / KAV_BINARIES / "UninstallScript",
        KAV_UNINSTALL_REFUSES if refuses else KAV_UNINSTALL,
        0o755,
    )
    _write(root / KAV_BINARIES / "kav", "#!/bin/sh\nexit 0\n", 0o755)
    _write(root / KAV_BINARIES / "config.xml", '<?xml version="1.0"?>\n<config/>\n', 0o644)
    _write(root / f"{SUPPORT}/KAV/Bases/kav.dat", "bases\n", 0o644)
    _write(root / AGENT_BINARIES / "UninstallScript", AGENT_UNINSTALL, 0o755)
    _write(root / AGENT_BINARIES / "klnagent", "#!/bin/sh\nexit 0\n", 0o755)
    _write(
        root / f"{SUPPORT}/klnagent_conf/connectors.d/kav.conf",
        "connector=kav\n",
        0o644,
    )
    _write(root / "Library/Caches/com.kaspersky.kav/update.cache", "cache\n", 0o644)
    _write(root / "Library/Logs/Kaspersky Lab/kav.log", "started\n", 0o644)
    _write(root / "var/log/kav_daemon.log", "started\n", 0o644)
    programs = {
        "com.kaspersky.kav": f"/{KAV_BINARIES}/kav",
        "com.kaspersky.kav.gui": f"/{KAV_APP}/Contents/MacOS/Kaspersky Anti-Virus For Mac",
        "com.kaspersky.klnagent": f"/{AGENT_BINARIES}/klnagent",
    }
    for label, _, _, plist in KAV_JOBS:
        _plist(
            root / plist.lstrip("/"),
            {
                "Label": label,
                "ProgramArguments": [programs[label]],
                "RunAtLoad": True,
                "KeepAlive": True,
            },
            binary=False,
        )
    for pkg in KAV_RECEIPTS:
        _receipt(root, pkg, KAV_VERSION, prefix="/")
    _jobs(
        root,
        [
            {
                "label": label,
                "domain": domain,
                "pid": pid,
                "status": 0,
                "plist": plist,
                "program": programs[label],
            }
            for label, domain, pid, plist in KAV_JOBS
        ],
    )


def _app(path: Path, bundle_id: str, version: str, executable: str) -> None:
    _plist(
        path / "Contents/Info.plist",
        {
            "CFBundleIdentifier": bundle_id,
            "CFBundleShortVersionString": version,
            "CFBundleExecutable": executable,
        },
        binary=False,
    )
    _write(path / "Contents/MacOS" / executable, "#!/bin/sh\nexit 0\n", 0o755)


def _receipt(root: Path, pkg: str, version: str, prefix: str = "/") -> None:
    folder = root / RECEIPTS
    _plist(
        folder / f"{pkg}.plist",
        {
            "InstallDate": INSTALLED,
            "InstallPrefixPath": prefix,
            "InstallProcessName": "installer",
            "PackageFileName": f"{pkg}.pkg",
            "PackageIdentifier": pkg,
            "PackageVersion": version,
        },
        binary=True,
    )
    _write(folder / f"{pkg}.bom", "BOMStore (simulated)\n", 0o644)


def _jobs(root: Path, kaspersky: list[dict[str, Any]]) -> None:
    jobs = [{**job, "plist": None, "program": ""} for job in APPLE_JOBS] + kaspersky
    _write(root / LAUNCHD_STATE, json.dumps({"jobs": jobs}, indent=1) + "\n", 0o644)


def _plist(path: Path, doc: dict[str, Any], *, binary: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        plistlib.dump(doc, handle, fmt=plistlib.FMT_BINARY if binary else plistlib.FMT_XML)
    path.chmod(0o644)


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


def launcher_spec(layers_dir: Path, hostbase: Path) -> dict[str, Any]:
    """What launcher.py needs to dress a host as a Mac (see its docstring)."""
    return {
        "dirs": list(MAC_DIRS),
        "shims": str(layers_dir / BASE_LAYER / "shims"),
        "skeleton": str(hostbase / "skeleton"),
        "root": str(hostbase / "root"),
    }
