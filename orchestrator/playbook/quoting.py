"""Quoting for the two shells kremove drives: POSIX sh and cmd.exe. Pure functions, no Jinja."""

from __future__ import annotations

import re
import shlex

# Tokens that cmd.exe and the MSVC argument parser both pass through untouched.
_CMD_PLAIN = re.compile(r"[A-Za-z0-9_.,:/\\{}=+@-]+")
_CMD_META = re.compile(r'([()%!^"<>&|])')


def quote_sh(value: str) -> str:
    """One POSIX shell word that expands to exactly ``value``."""
    return shlex.quote(value)


def quote_cmd(value: str) -> str:
    """One argument for a program started by cmd.exe, parsed back to exactly ``value``.

    Two layers: the MSVC/CommandLineToArgvW rules (quotes, backslashes before quotes), then a
    caret before every cmd.exe metacharacter so that cmd passes the result on literally, ``%``
    and ``!`` included. Line breaks cannot be passed through cmd.exe at all.
    """
    if any(c in value for c in "\n\r\x00\x1a"):
        raise ValueError(
            "a value with a line break, NUL or Ctrl-Z cannot be passed through cmd.exe"
        )
    if _CMD_PLAIN.fullmatch(value):
        return value
    out = ['"']
    backslashes = 0
    for ch in value:
        if ch == "\\":
            backslashes += 1
            continue
        if ch == '"':
            out.append("\\" * (2 * backslashes + 1) + '"')
        else:
            out.append("\\" * backslashes + ch)
        backslashes = 0
    out.append("\\" * (2 * backslashes) + '"')
    return _CMD_META.sub(r"^\1", "".join(out))


def utf16le_hex(value: str) -> str:
    """Hex of the UTF-16LE bytes, as Network Agent's KLUNINSTPASSWD expects ("ab" → "61006200")."""
    return value.encode("utf-16-le").hex().upper()
