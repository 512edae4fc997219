"""Text from inventories and hosts, made safe to show on a terminal and to open in a spreadsheet.

A host name, a var, a reason or a line of a host's output is data. Written raw, an escape code in
it drives the operator's terminal (retitles it, clears it, hides or rewrites what was shown), a
bidi control reorders what the operator reads, and a CSV cell that begins with ``=`` is a formula
the spreadsheet runs. Such characters are spelled out as Python writes them (``\\x1b``,
``\\u202e``): visible, and telling what the host sent. The data itself (ledger, JSON) is unchanged.
"""

from __future__ import annotations

# C0, DEL and C1 controls; the bidi controls (Arabic letter mark, LRM/RLM, embeddings and
# overrides, isolates); and the Unicode line and paragraph separators.
_CONTROLS = (
    *range(0x00, 0x20),
    0x7F,
    *range(0x80, 0xA0),
    0x061C,
    0x200E,
    0x200F,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
    0x2028,
    0x2029,
)
_ONE_LINE = {code: repr(chr(code))[1:-1] for code in _CONTROLS}
_LINES = {code: text for code, text in _ONE_LINE.items() if chr(code) not in "\n\t"}

# OWASP's list for CSV injection: a cell beginning with one of these is read as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def line(value: object) -> str:
    """``value`` for one line (a table cell, a field, an error): every control spelled out,
    line ends included."""
    return str(value).translate(_ONE_LINE)


def lines(value: object) -> str:
    """``value`` as text of several lines (a command, output): line feeds and tabs stay, every
    other control is spelled out."""
    return str(value).translate(_LINES)


def csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text: controls spelled out, and a cell that would
    start a formula gets a leading ``'`` (which spreadsheets hide)."""
    text = lines(value)
    return "'" + text if text.startswith(_FORMULA_START) else text
