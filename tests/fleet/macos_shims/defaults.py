"""defaults for simulated macOS fleet hosts: a SHIM, not Apple's tool (see tests/fleet/README.md).

Only what kremove's detection uses: ``defaults read PATH KEY`` prints KEY of the property list
PATH.plist (PATH without the extension, as macOS takes it; the app's Contents/Info), or says
"The domain/default pair of (PATH, KEY) does not exist" on stderr and exits 1.
"""

from __future__ import annotations

import plistlib
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "read" or not argv[1].startswith("/"):
        sys.stderr.write("defaults (fleet shim): only 'defaults read /PATH KEY' is simulated\n")
        return 1
    path = argv[1] if argv[1].endswith(".plist") else argv[1] + ".plist"
    try:
        with open(path, "rb") as handle:
            value = plistlib.load(handle).get(argv[2])
    except (OSError, plistlib.InvalidFileException):
        value = None
    if value is None:
        sys.stderr.write(f"\nThe domain/default pair of ({argv[1]}, {argv[2]}) does not exist\n")
        return 1
    print(value)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
