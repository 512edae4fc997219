"""Wave settings: batch sizes, the failure budget and the change window, parsed and checked.

All three are given on the command line and stored with the run, so ``--resume`` continues a run
with the settings it was started with.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator.errors import InputError

_SIZE = re.compile(r"^\s*(\d+)(%?)\s*$")
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*-\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


def batch_sizes(spec: str | None, total: int) -> list[int]:
    """``1,5,10%,100%`` over ``total`` hosts: counts or percentages, the last size repeating."""
    if total <= 0:
        return []
    if not spec:
        return [total]
    sizes = []
    for part in spec.split(","):
        m = _SIZE.match(part)
        if not m or int(m.group(1)) == 0 or (m.group(2) and int(m.group(1)) > 100):
            raise InputError(
                f"--batches: {part.strip()!r} is not a batch size; use counts and percentages "
                "like 1,5,10%,100%"
            )
        n = int(m.group(1))
        sizes.append(max(1, math.ceil(total * n / 100)) if m.group(2) else n)
    out: list[int] = []
    left = total
    i = 0
    while left > 0:
        size = min(sizes[min(i, len(sizes) - 1)], left)
        out.append(size)
        left -= size
        i += 1
    return out


def failure_budget(spec: str | None, total: int) -> int | None:
    """``--max-fail 3`` or ``5%``: how many hosts may fail before the run halts (None: no limit)."""
    if spec is None:
        return None
    m = _SIZE.match(spec)
    if not m or (m.group(2) and int(m.group(1)) > 100):
        raise InputError(f"--max-fail: {spec!r} is not a count or a percentage (3, 5%)")
    n = int(m.group(1))
    return math.floor(total * n / 100) if m.group(2) else n


def split(items: Sequence[str], sizes: Sequence[int]) -> list[list[str]]:
    out = []
    at = 0
    for size in sizes:
        out.append(list(items[at : at + size]))
        at += size
    return out


@dataclass(frozen=True)
class Window:
    """A daily change window in a time zone; it may wrap past midnight (22:00-04:00)."""

    start: time
    end: time
    tz: tzinfo
    spec: str
    tz_name: str

    @classmethod
    def parse(cls, spec: str, tz_name: str | None) -> Window:
        m = _WINDOW.match(spec)
        if not m:
            raise InputError(f"--window: {spec!r} is not HH:MM-HH:MM (e.g. 22:00-04:00)")
        h1, m1, s1, h2, m2, s2 = (int(g) if g else 0 for g in m.groups())
        try:
            start, end = time(h1, m1, s1), time(h2, m2, s2)
        except ValueError:
            raise InputError(f"--window: {spec!r} has a time that does not exist") from None
        if start == end:
            raise InputError(f"--window: {spec!r} starts when it ends")
        if tz_name:
            try:
                tz: tzinfo = ZoneInfo(tz_name)
            except (ZoneInfoNotFoundError, ValueError):
                raise InputError(
                    f"--tz: unknown time zone {tz_name!r}; use a name like Europe/Paris"
                ) from None
        else:
            local = datetime.now().astimezone().tzinfo
            assert local is not None
            tz = local
        return cls(start, end, tz, spec.strip(), tz_name or "local time")

    def is_open(self, at: datetime | None = None) -> bool:
        now = (at or datetime.now(self.tz)).astimezone(self.tz).time()
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def next_opening(self, at: datetime | None = None) -> datetime:
        now = (at or datetime.now(self.tz)).astimezone(self.tz)
        opening = now.replace(
            hour=self.start.hour, minute=self.start.minute, second=self.start.second, microsecond=0
        )
        return opening if opening > now else opening + timedelta(days=1)

    def describe(self) -> str:
        return f"{self.spec} ({self.tz_name})"
