"""How the HTML report shows a status: its colour, whether it is hatched, and what it means."""

from __future__ import annotations

from orchestrator.engine import status as st

PENDING = "pending"  # a host the run selected but never finished (document.py's placeholder)
# Status colours, chosen for at least 3:1 contrast on white; the status name is always written
# next to its colour, and failures are hatched as well, so that nothing is told by colour alone.
COLOURS = {
    st.CLEAN: "#2e7d32",
    st.REMOVED: "#00695c",
    st.PLANNED: "#1565c0",
    st.FOUND: "#6a1b9a",
    st.REBOOT_PENDING: "#a15c00",
    st.FAILED: "#c62828",
    st.TIMEOUT: "#d84315",
    st.UNREACHABLE: "#ad1457",
    st.AUTH_FAILED: "#6d4c41",
    st.HOSTKEY_REJECTED: "#4a148c",
    st.SKIPPED: "#616161",
    PENDING: "#8a8a8a",
}
OTHER_COLOUR = "#546e7a"
TRACK_COLOUR = "#e3e3e3"  # the part of a group's bar not yet done; report.css paints the track
MEANINGS = {
    st.CLEAN: "nothing found",
    st.FOUND: "products installed (detect only)",
    st.REMOVED: "found, removed, verified gone",
    st.REBOOT_PENDING: "removed; verify again after the reboot the uninstaller asked for",
    st.FAILED: "a step failed, or verification still finds the product",
    st.UNREACHABLE: "no connection to the host",
    st.AUTH_FAILED: "the host refused the credentials",
    st.HOSTKEY_REJECTED: "the host key did not match the pinned one",
    st.TIMEOUT: "a step ran out of time",
    st.SKIPPED: "not worked on: halted wave, closed window, or excluded",
    st.PLANNED: "dry run: would be removed",
    PENDING: "selected, but the run recorded no outcome",
}
HATCHED = st.FAILURES
ORDER = (*st.ALL, PENDING)  # the status chart's order; statuses it does not know come after


def colour(status: object) -> str:
    return COLOURS.get(str(status), OTHER_COLOUR)
