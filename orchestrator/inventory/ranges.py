"""Ansible host patterns: ``web[01:20].example.org``, ``db-[a:f]``, ``n[1:10:2]``, ``host:2222``."""

from __future__ import annotations

import re
import string
from collections.abc import Callable

from orchestrator.errors import InventoryError

Fail = Callable[[str], InventoryError]

RANGE = re.compile(r"\[([^\[\]:]*):([^\[\]:]*)(?::([^\[\]:]*))?\]")
BRACKETS = re.compile(r"\[[^\]]*\]")
PORT_SUFFIX = re.compile(r"(.+):([0-9]+)")
MAX_HOSTS = 100_000


def parse_pattern(pattern: str, fail: Fail) -> tuple[list[str], int | None]:
    """Host names a pattern stands for, and the port written after it (``name:port``) if any."""
    port: int | None = None
    match = PORT_SUFFIX.fullmatch(pattern)
    # One colon outside the brackets is a port; more are an IPv6 address.
    if match and BRACKETS.sub("", pattern).count(":") == 1:
        pattern, port = match.group(1), int(match.group(2))
    return expand(pattern, fail), port


def expand(pattern: str, fail: Fail) -> list[str]:
    """Every name a pattern with zero or more ``[start:end(:step)]`` ranges stands for, in order."""
    match = RANGE.search(pattern)
    if match is None:
        if "[" in pattern or "]" in pattern:
            raise fail("malformed host range; write it as [start:end] or [start:end:step]")
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    names: list[str] = []
    tails = expand(tail, fail)
    begin, end, step = match.groups()
    for item in _items(begin, end, step, fail):
        names.extend(head + item + rest for rest in tails)
        if len(names) > MAX_HOSTS:
            raise fail(f"host range expands to more than {MAX_HOSTS} hosts")
    return names


def _items(begin: str, end: str, step_text: str | None, fail: Fail) -> list[str]:
    begin = begin or "0"
    if not end:
        raise fail("host range needs an end: [start:end]")
    try:
        step = int(step_text) if step_text else 1
    except ValueError:
        raise fail("host range step must be a whole number") from None
    if step < 1:
        raise fail("host range step must be at least 1")
    letters = string.ascii_letters
    if len(begin) == 1 and len(end) == 1 and begin in letters and end in letters:
        first, last = letters.index(begin), letters.index(end)
        if first > last:
            raise fail("host range must go upwards: [start:end] with start <= end")
        return list(letters[first : last + 1 : step])
    if not (_digits(begin) and _digits(end)):
        raise fail("host range bounds must both be numbers or both single letters")
    width = len(begin) if begin.startswith("0") and len(begin) > 1 else 0
    if width and len(end) != width:
        raise fail("a zero-padded host range needs begin and end of the same width, like [01:20]")
    first, last = int(begin), int(end)
    if first > last:
        raise fail("host range must go upwards: [start:end] with start <= end")
    if (last - first) // step >= MAX_HOSTS:
        raise fail(f"host range expands to more than {MAX_HOSTS} hosts")
    return [str(n).zfill(width) for n in range(first, last + 1, step)]


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()
