"""Outside text made safe to show: every control spelled out as Python writes it, nothing else."""

from __future__ import annotations

import pytest

from orchestrator import textsafe

SPELLED = {
    "\x1b": "\\x1b",  # ESC: starts every terminal escape sequence
    "\x07": "\\x07",  # BEL: ends an OSC sequence (window title)
    "\x00": "\\x00",
    "\r": "\\r",  # back to the line's start: what follows overwrites what was shown
    "\x08": "\\x08",
    "\x7f": "\\x7f",
    "\x9b": "\\x9b",  # C1 CSI: an escape sequence in one character
    "\x85": "\\x85",
    "\u202e": "\\u202e",  # right-to-left override
    "\u202a": "\\u202a",
    "\u2066": "\\u2066",  # isolates
    "\u2069": "\\u2069",
    "\u200e": "\\u200e",  # marks
    "\u200f": "\\u200f",
    "\u061c": "\\u061c",
    "\u2028": "\\u2028",
}


@pytest.mark.parametrize("char", sorted(SPELLED))
def test_every_control_is_spelled_out(char: str) -> None:
    assert textsafe.line(f"a{char}b") == f"a{SPELLED[char]}b"
    assert textsafe.lines(f"a{char}b") == f"a{SPELLED[char]}b"


def test_one_line_spells_out_line_ends_and_tabs_several_lines_keep_them() -> None:
    assert textsafe.line("a\nb\tc") == "a\\nb\\tc"
    assert textsafe.lines("a\nb\tc\r\n") == "a\nb\tc\\r\n"


def test_printable_text_in_any_script_is_unchanged() -> None:
    text = "web-01.example.org [bold] Zürich ملف 東京 \\x1b already spelled"
    assert textsafe.line(text) == textsafe.lines(text) == text


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://127.0.0.1/")', '\'=HYPERLINK("http://127.0.0.1/")'),
        ("+1", "'+1"),
        ("-2+3;@evil", "'-2+3;@evil"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "\\r=1"),  # spelled out, so no longer a formula
        ("a=1", "a=1"),
        (" =1", " =1"),
        ("", ""),
        ("kesl 12.0\x1b[2J", "kesl 12.0\\x1b[2J"),
        ("line one\nline two", "line one\nline two"),
    ],
)
def test_a_csv_cell_is_never_a_formula(value: str, cell: str) -> None:
    assert textsafe.csv_cell(value) == cell
