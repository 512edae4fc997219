"""systemextensionsctl for simulated macOS fleet hosts: a SHIM, not Apple's tool.

See tests/fleet/README.md.

There are no system extensions here: the ones "installed" are rows of a JSON file,
/var/db/kremove-fleet/sysext.json (category, teamID, bundleID, version, name, state), which the
host's kind writes. Only the app that installed an extension changes it (the fleet's vendor CLI,
tests/fleet/macos_kes.py, as macOS lets an app deactivate its own extension). As on a Mac with
System Integrity Protection on, this tool lists and changes nothing:

  systemextensionsctl list [CATEGORY]    "N extension(s)", then per category a "--- CATEGORY" line,
                                         the column header and one row per extension
  systemextensionsctl uninstall|reset|developer ...
                                         "At this time, this tool cannot be used if System
                                         Integrity Protection is enabled." exit 1
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

STATE = Path("/var/db/kremove-fleet/sysext.json")
HEADER = "enabled\tactive\tteamID\tbundleID (version)\tname\t[state]"
SIP = (
    "At this time, this tool cannot be used if System Integrity Protection is enabled.\n"
    "This limitation will be removed in the near future.\n"
    "Please remember to re-enable System Integrity Protection!\n"
)


def _load() -> list[dict[str, Any]]:
    if not STATE.exists():
        return []
    rows: list[dict[str, Any]] = json.loads(STATE.read_text())["extensions"]
    return rows


def _list(category: str | None) -> int:
    rows = [r for r in _load() if category is None or r["category"] == category]
    print(f"{len(rows)} extension(s)")
    for cat in dict.fromkeys(r["category"] for r in rows):
        print(f"--- {cat}")
        print(HEADER)
        for r in (r for r in rows if r["category"] == cat):
            on = "*" if r["state"].startswith("activated enabled") else ""
            print(
                f"{on}\t{on}\t{r['team']}\t{r['bundle']} ({r['version']})\t{r['name']}\t"
                f"[{r['state']}]"
            )
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["list"] and len(argv) <= 2:
        return _list(argv[1] if len(argv) == 2 else None)
    if argv[:1] in (["uninstall"], ["reset"], ["developer"]):
        sys.stderr.write(SIP)
        return 1
    sys.stderr.write(
        "systemextensionsctl: usage:\n\tsystemextensionsctl developer [on|off]\n"
        "\tsystemextensionsctl list [category]\n\tsystemextensionsctl reset\n"
        "\tsystemextensionsctl uninstall <teamId> <bundleId>\n"
    )
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
