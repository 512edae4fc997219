"""Host statuses (one final status per host per run), how each is shown, and the exit code.

`Status` is a `StrEnum`: its members are the plain strings the JSON, CSV and ledger have always
held, so they compare equal to (and hash like) those strings and are stored as plain text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    CLEAN = "clean"  # nothing found
    FOUND = "found"  # detect only: products are installed
    REMOVED = "removed"
    REBOOT_PENDING = "reboot_pending"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    AUTH_FAILED = "auth_failed"
    HOSTKEY_REJECTED = "hostkey_rejected"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"
    PLANNED = "planned"
    RESTORED = "restored"  # rollback only: what a run removed is installed again


# The module-level names predate the enum and are used across the engine; they are the members.
# (in the enum's order; a test checks each name is its member).
(
    CLEAN,
    FOUND,
    REMOVED,
    REBOOT_PENDING,
    FAILED,
    UNREACHABLE,
    AUTH_FAILED,
    HOSTKEY_REJECTED,
    TIMEOUT,
    SKIPPED,
    PLANNED,
    RESTORED,
) = tuple(Status)

ALL = tuple(Status)
# Hosts that could not be worked on or whose work failed: what a failure budget counts.
FAILURES = frozenset({FAILED, UNREACHABLE, AUTH_FAILED, HOSTKEY_REJECTED, TIMEOUT})
# Every selected host in one of these: exit 0.
SUCCESS = frozenset({CLEAN, REMOVED, PLANNED, RESTORED})


@dataclass(frozen=True)
class StatusStyle:
    """How a status is shown: `terminal` is a rich style, `colour` the HTML report's colour."""

    terminal: str
    colour: str
    meaning: str


# The one style table, read by the terminal (cli/console.py) and the HTML report (report/style.py).
# HTML colours are chosen for at least 3:1 contrast on white; the status name is always written
# next to its colour, and failures are hatched as well, so that nothing is told by colour alone.
STATUS_STYLES: dict[Status, StatusStyle] = {
    CLEAN: StatusStyle("green", "#2e7d32", "nothing found"),
    FOUND: StatusStyle("yellow", "#6a1b9a", "products installed (detect only)"),
    REMOVED: StatusStyle("green", "#00695c", "found, removed, verified gone"),
    REBOOT_PENDING: StatusStyle(
        "yellow", "#a15c00", "removed; verify again after the reboot the uninstaller asked for"
    ),
    FAILED: StatusStyle("red", "#c62828", "a step failed, or verification still finds the product"),
    UNREACHABLE: StatusStyle("red", "#ad1457", "no connection to the host"),
    AUTH_FAILED: StatusStyle("red", "#6d4c41", "the host refused the credentials"),
    HOSTKEY_REJECTED: StatusStyle("red", "#4a148c", "the host key did not match the pinned one"),
    TIMEOUT: StatusStyle("red", "#d84315", "a step ran out of time"),
    SKIPPED: StatusStyle(
        "dim",
        "#616161",
        "not worked on: halted wave, closed window, excluded, or refused before any change "
        "(missing privilege)",
    ),
    PLANNED: StatusStyle("cyan", "#1565c0", "dry run: would be removed"),
    RESTORED: StatusStyle("green", "#827717", "reinstalled by a rollback"),
}

EXIT_OK = 0
EXIT_SOME_HOSTS = 1
EXIT_INPUT = 2
EXIT_HALTED = 3
EXIT_WINDOW = 4
EXIT_INTERRUPTED = 130


def exit_code(statuses: list[str], *, interrupted: bool = False) -> int:
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if all(s in SUCCESS for s in statuses) else EXIT_SOME_HOSTS
