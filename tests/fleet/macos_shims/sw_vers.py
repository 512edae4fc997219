"""sw_vers for simulated macOS fleet hosts: a SHIM, not Apple's tool (see tests/fleet/README.md).

Reads /System/Library/CoreServices/SystemVersion.plist, as the real one does, and prints

  ProductName:		macOS
  ProductVersion:		14.5
  BuildVersion:		23F79

or one value with -productName, -productVersion or -buildVersion.
"""

from __future__ import annotations

import plistlib
import sys

PLIST = "/System/Library/CoreServices/SystemVersion.plist"
FIELDS = (
    ("ProductName", "-productName", "ProductName"),
    ("ProductVersion", "-productVersion", "ProductVersion"),
    ("BuildVersion", "-buildVersion", "ProductBuildVersion"),
)


def main(argv: list[str]) -> int:
    with open(PLIST, "rb") as handle:
        doc = plistlib.load(handle)
    if not argv:
        for label, _, key in FIELDS:
            print(f"{label}:\t\t{doc.get(key, '')}")
        return 0
    for _, flag, key in FIELDS:
        if argv == [flag]:
            print(doc.get(key, ""))
            return 0
    sys.stderr.write("usage: sw_vers [-productName|-productVersion|-buildVersion]\n")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
