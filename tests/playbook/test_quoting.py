"""Quoting: what the filters produce must reach the shell as exactly one, unchanged argument."""

from __future__ import annotations

import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.playbook.quoting import quote_cmd, quote_sh, utf16le_hex

# Anything a process argument can hold: any text without NUL.
ARG_TEXT = st.text(
    alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
)


@settings(max_examples=300, deadline=None)
@given(ARG_TEXT)
def test_sh_quoted_text_reaches_a_real_sh_as_one_unchanged_argument(value: str) -> None:
    script = f'set -- {quote_sh(value)}; printf "%s\\n" "$#"; printf "%s" "$1"'
    done = subprocess.run(["/bin/sh", "-c", script], capture_output=True, check=True)
    count, _, arg = done.stdout.partition(b"\n")
    assert count == b"1"
    assert arg == value.encode()


def _cmd_then_msvcrt(line: str) -> list[str]:
    """A model of cmd.exe's caret pass followed by the MSVC argv rules, to check quote_cmd."""
    unescaped, i = [], 0
    while i < len(line):
        if line[i] == "^" and i + 1 < len(line):
            unescaped.append(line[i + 1])
            i += 2
        else:
            unescaped.append(line[i])
            i += 1
    text, args, cur, in_quotes, i, started = "".join(unescaped), [], [], False, 0, False
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            n = 0
            while i < len(text) and text[i] == "\\":
                n, i = n + 1, i + 1
            if i < len(text) and text[i] == '"':
                cur.append("\\" * (n // 2))
                if n % 2:
                    cur.append('"')
                    i += 1
            else:
                cur.append("\\" * n)
            started = True
            continue
        if ch == '"':
            in_quotes, started = not in_quotes, True
        elif ch in " \t" and not in_quotes:
            if started:
                args.append("".join(cur))
            cur, started = [], False
        else:
            cur.append(ch)
            started = True
        i += 1
    if started:
        args.append("".join(cur))
    return args


@settings(max_examples=500)
@given(
    st.text(
        alphabet=st.characters(blacklist_characters="\x00\r\n\x1a", blacklist_categories=("Cs",)),
        min_size=1,
    )
)
def test_cmd_quoted_text_parses_back_to_one_unchanged_argument(value: str) -> None:
    assert _cmd_then_msvcrt(f"prog {quote_cmd(value)} next") == ["prog", value, "next"]


def test_cmd_quoting_escapes_every_cmd_metacharacter() -> None:
    quoted = quote_cmd("a & b | c > d < e % f ! g ^ h ( i )")
    for meta in "&|<>%!()":
        assert f"^{meta}" in quoted
    assert (
        quote_cmd("{27534751-4A40-48BD-B393-BC3BF28C876E}")
        == "{27534751-4A40-48BD-B393-BC3BF28C876E}"
    )


def test_cmd_quoting_refuses_line_breaks() -> None:
    for bad in ("a\nb", "a\rb", "a\x1ab"):  # Ctrl-Z ends a line in a batch file
        try:
            quote_cmd(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")


def test_utf16le_hex_matches_network_agent_convention() -> None:
    # Each character becomes its UTF-16LE code unit in hex: ASCII "ab" is 61 00 62 00.
    assert utf16le_hex("ab") == "61006200"
    assert utf16le_hex("é") == "E900"
