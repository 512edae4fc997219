"""Waves: a run's hosts in batches, under a failure budget and a change window.

The settings (batch sizes, the budget, the window, pausing) are given on the command line and
stored with the run, so ``--resume`` continues a run with the settings it was started with.
``run_waves`` is the loop: it starts each batch only while the budget holds and the window is
open, and stops between batches when told to pause.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orchestrator.engine import status as st
from orchestrator.engine.fanout import BatchStarted, Event, FanOut, FanOutResult
from orchestrator.engine.outcome import HostOutcome, Stop
from orchestrator.engine.steps import HostJob
from orchestrator.errors import InputError, WindowClosed

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


@dataclass(frozen=True)
class WaveSettings:
    """How a run is staged. Stored with the run so that --resume continues it the same way."""

    batches: str | None = None  # "1,5,10%,100%"
    max_fail: str | None = None  # "3" or "5%"
    pause_after: int | None = None
    window: Window | None = None
    confirm: Callable[[int, int], bool] | None = None  # between batches: (done, total) -> go on?

    def meta(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "max_fail": self.max_fail,
            "pause_after": self.pause_after,
            "window": None if self.window is None else self.window.spec,
            "tz": None if self.window is None else self.window.tz_name,
        }

    def window_open(self) -> bool:
        return self.window is None or self.window.is_open()

    def refuse_outside_window(self) -> None:
        """Raise WindowClosed when the window is shut: a run outside it starts nothing."""
        if self.window is not None and not self.window.is_open():
            opening = self.window.next_opening().strftime("%Y-%m-%d %H:%M %Z")
            raise WindowClosed(
                f"outside the change window {self.window.describe()}; nothing was started. "
                f"It next opens {opening}"
            )

    def pause_between(self, done: int, count: int) -> bool:
        """After batch ``done`` of ``count``: stop here (--pause-after, or a no at --confirm)?"""
        if done >= count:
            return False
        if self.pause_after is not None and done >= self.pause_after:
            return True
        return self.confirm is not None and not self.confirm(done, count)


class Budget:
    """The failure budget: hosts that failed, counted from every worker thread."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.spent: list[str] = []  # in the order they failed
        self._lock = threading.Lock()

    def count(self, outcome: HostOutcome) -> None:
        if outcome.status in st.FAILURES:
            with self._lock:
                self.spent.append(outcome.host)

    def exhausted(self) -> bool:
        """More hosts failed than the budget allows: no new host may start."""
        with self._lock:
            return self.limit is not None and len(self.spent) > self.limit

    def left(self) -> int | None:
        return None if self.limit is None else max(self.limit - len(self.spent), 0)


@dataclass
class WaveResult:
    """What the waves did: outcomes of the hosts that ran, and why they stopped, if early."""

    budget: Budget
    outcomes: dict[str, HostOutcome] = field(default_factory=dict)
    abandoned: list[str] = field(default_factory=list)  # in flight at a second Ctrl-C
    stop: Stop | None = None


def run_waves(
    jobs: Sequence[HostJob],
    drive: Callable[[HostJob], HostOutcome],
    wave: WaveSettings,
    *,
    selected: int,
    forks: int,
    on_event: Callable[[Event], None],
    on_batch: Callable[[int, list[str]], None],
) -> WaveResult:
    """Drive ``jobs`` batch by batch, ``forks`` at a time; ``selected`` hosts size the budget.

    ``on_batch(index, names)`` is told of each batch when there is more than one (for the ledger).
    """
    result = WaveResult(Budget(failure_budget(wave.max_fail, selected)))
    budget = result.budget

    def work(job: HostJob) -> HostOutcome:
        outcome = drive(job)
        budget.count(outcome)
        return outcome

    batches = split([j.host.name for j in jobs], batch_sizes(wave.batches, len(jobs)))
    by_name = {j.host.name: j for j in jobs}
    for index, names in enumerate(batches):
        result.stop = _before_batch(budget, wave)
        if result.stop is not None:
            break
        on_event(BatchStarted(index + 1, len(batches), len(names), budget.left(), budget.limit))
        if len(batches) > 1:
            on_batch(index + 1, names)
        fan = FanOut(
            work,
            lambda job: job.host.name,
            forks=forks,
            on_event=on_event,
            may_start=lambda: not budget.exhausted() and wave.window_open(),
        )
        done = fan.run([by_name[n] for n in names])
        result.outcomes.update(done.outcomes)
        result.abandoned += done.abandoned
        result.stop = _after_batch(done, budget, wave, index + 1, len(batches))
        if result.stop is not None:
            break
    return result


def _before_batch(budget: Budget, wave: WaveSettings) -> Stop | None:
    if budget.exhausted():
        return Stop.HALTED
    if not wave.window_open():
        return Stop.WINDOW
    return None


def _after_batch(
    done: FanOutResult, budget: Budget, wave: WaveSettings, index: int, count: int
) -> Stop | None:
    if done.interrupted:
        return Stop.INTERRUPTED
    if budget.exhausted():
        return Stop.HALTED
    if not wave.window_open() and done.not_started:
        return Stop.WINDOW
    if wave.pause_between(index, count):
        return Stop.PAUSED
    return None
