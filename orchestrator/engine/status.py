"""Host statuses (one final status per host per run) and what they mean for the exit code."""

from __future__ import annotations

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

ALL = (
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
)
# Hosts that could not be worked on or whose work failed: what a failure budget counts.
FAILURES = frozenset({FAILED, UNREACHABLE, AUTH_FAILED, HOSTKEY_REJECTED, TIMEOUT})
# Every selected host in one of these: exit 0.
SUCCESS = frozenset({CLEAN, REMOVED, PLANNED, RESTORED})

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
