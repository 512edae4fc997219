"""How the HTML report shows a status: its colour, whether it is hatched, and what it means."""

from __future__ import annotations

from orchestrator.engine import status as st

PENDING = "pending"  # a host the run selected but never finished (document.py's placeholder)
# The colours and meanings are engine/status.py's one style table, plus the report's placeholder.
COLOURS: dict[str, str] = {
    **{status: style.colour for status, style in st.STATUS_STYLES.items()},
    PENDING: "#8a8a8a",
}
OTHER_COLOUR = "#546e7a"
TRACK_COLOUR = "#e3e3e3"  # the part of a group's bar not yet done; report.css paints the track
MEANINGS: dict[str, str] = {
    **{status: style.meaning for status, style in st.STATUS_STYLES.items()},
    PENDING: "selected, but the run recorded no outcome",
}
HATCHED = st.FAILURES
ORDER = (*st.ALL, PENDING)  # the status chart's order; statuses it does not know come after


def colour(status: object) -> str:
    return COLOURS.get(str(status), OTHER_COLOUR)
