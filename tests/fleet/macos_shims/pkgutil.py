"""pkgutil for simulated macOS fleet hosts: a SHIM, not Apple's tool (see tests/fleet/README.md).

Installed as /usr/local/bin/pkgutil inside macOS-kind hosts. Receipts are plist files in
/var/db/receipts (ID.plist with PackageIdentifier, PackageVersion, InstallDate,
InstallPrefixPath, and an ID.bom beside it), as on a Mac. Supports what kremove and the fleet's
uninstall scripts use, printing what the real pkgutil prints:

  pkgutil --pkgs [--volume /]            every receipt id, one per line
  pkgutil --pkgs=REGEX | --pkgs REGEX    ids matching REGEX
  pkgutil --pkg-info ID                  package-id/version/volume/location/install-time lines
  pkgutil --forget ID                    (root) delete the receipt: "Forgot package 'ID' on '/'."

An unknown id prints "No receipt for 'ID' found at '/'." on stderr and exits 1.
"""

from __future__ import annotations

import os
import plistlib
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

RECEIPTS = Path("/var/db/receipts")


def _receipts() -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    if not RECEIPTS.is_dir():
        return found
    for path in sorted(RECEIPTS.glob("*.plist")):
        with path.open("rb") as handle:
            doc = plistlib.load(handle)
        found[str(doc.get("PackageIdentifier", path.stem))] = doc
    return found


def _no_receipt(pkg: str) -> int:
    sys.stderr.write(f"No receipt for '{pkg}' found at '/'.\n")
    return 1


def _usage() -> int:
    sys.stderr.write(
        "Usage: pkgutil [OPTIONS] [COMMANDS] ...\n"
        "(fleet shim: --pkgs[=REGEX], --pkg-info ID, --forget ID, --volume /)\n"
    )
    return 1


def _info(pkg: str) -> int:
    doc = _receipts().get(pkg)
    if doc is None:
        return _no_receipt(pkg)
    installed = doc.get("InstallDate")
    stamp = int(installed.replace(tzinfo=UTC).timestamp()) if isinstance(installed, datetime) else 0
    print(f"package-id: {pkg}")
    print(f"version: {doc.get('PackageVersion', '')}")
    print("volume: /")
    print(f"location: {doc.get('InstallPrefixPath', '/')}")
    print(f"install-time: {stamp}")
    return 0


def _forget(pkg: str) -> int:
    if os.geteuid() != 0:
        sys.stderr.write("Must be run as root.\n")
        return 1
    if pkg not in _receipts():
        return _no_receipt(pkg)
    for suffix in (".plist", ".bom"):
        (RECEIPTS / f"{pkg}{suffix}").unlink(missing_ok=True)
    print(f"Forgot package '{pkg}' on '/'.")
    return 0


def main(argv: list[str]) -> int:
    args = list(argv)
    if "--volume" in args:  # only the boot volume exists here
        at = args.index("--volume")
        if args[at + 1 : at + 2] != ["/"]:
            sys.stderr.write("pkgutil (fleet shim): only --volume / is simulated\n")
            return 1
        del args[at : at + 2]
    if not args:
        return _usage()
    command, rest = args[0], args[1:]
    if command in ("--pkgs", "--packages") or command.startswith(("--pkgs=", "--packages=")):
        pattern = command.partition("=")[2] or (rest[0] if rest else "")
        for pkg in _receipts():
            if not pattern or re.search(pattern, pkg):
                print(pkg)
        return 0
    if command in ("--pkg-info", "--forget") and len(rest) == 1:
        return _info(rest[0]) if command == "--pkg-info" else _forget(rest[0])
    return _usage()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
