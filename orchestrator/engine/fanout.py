"""Fan-out: run host jobs ``forks`` at a time on worker threads, keeping the caller's thread free.

The calling (main) thread only waits for results, so Ctrl-C reaches it at once. The first Ctrl-C
stops new hosts from starting and lets the hosts in flight finish within their own deadlines; a
second one abandons them: they are reported as interrupted and the caller records them so, while
their unfinished steps stay in the ledger as started and never finished — the truth.
"""

from __future__ import annotations

import queue
import resource
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from orchestrator.engine import status as st
from orchestrator.engine.outcome import HostOutcome
from orchestrator.errors import InputError

J = TypeVar("J")
# Open files one host in flight may hold: its socket, a jump host's, the channel's wake-up pipe.
FILES_PER_HOST = 4
FILES_RESERVED = 64  # the ledger, inventories, logs, the Python runtime's own


def reserve_files(forks: int) -> None:
    """Raise the soft open-files limit to what ``forks`` hosts at once need, or refuse now.

    Distributions default the soft limit to 1024: past ~250 forks, connections would fail in
    the middle of a wave with "Too many open files" and look like unreachable hosts."""
    need = FILES_RESERVED + FILES_PER_HOST * forks
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        fits = max(1, (hard - FILES_RESERVED) // FILES_PER_HOST)
        raise InputError(
            f"--forks {forks} needs about {need} open files and this session allows {hard} "
            f"(ulimit -Hn); use --forks {fits} or raise the limit"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


@dataclass(frozen=True)
class HostStarted:
    host: str


@dataclass(frozen=True)
class HostDone:
    outcome: HostOutcome


@dataclass(frozen=True)
class Stopping:
    """The first Ctrl-C: no new host starts; ``in_flight`` hosts are finishing."""

    in_flight: int


@dataclass(frozen=True)
class BatchStarted:
    """Batch ``index`` of ``count`` (from 1) starts with ``size`` hosts; budget left, if any."""

    index: int
    count: int
    size: int
    budget_left: int | None
    budget: int | None


Event = HostStarted | HostDone | Stopping | BatchStarted


@dataclass
class FanOutResult:
    outcomes: dict[str, HostOutcome]
    not_started: list[str]  # never began: the run stopped first
    abandoned: list[str]  # in flight when a second Ctrl-C came
    interrupted: bool


class FanOut(Generic[J]):
    """``run(jobs)`` calls ``work(job)`` for each, at most ``forks`` at once."""

    def __init__(
        self,
        work: Callable[[J], HostOutcome],
        name_of: Callable[[J], str],
        *,
        forks: int,
        on_event: Callable[[Event], None],
        may_start: Callable[[], bool] = lambda: True,
    ) -> None:
        self._work = work
        self._name_of = name_of
        self._forks = max(1, forks)
        self._on_event = on_event
        self._may_start = may_start
        self._pending: deque[J] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._results: queue.SimpleQueue[tuple[str, str, HostOutcome | None]] = queue.SimpleQueue()

    def stop(self) -> None:
        """Start no new host (used by failure budgets and windows as well as Ctrl-C)."""
        self._stop.set()

    def _next(self) -> J | None:
        with self._lock:
            if self._stop.is_set() or not self._pending:
                return None
            if not self._may_start():  # a spent budget or a closed window: start nothing more
                self._stop.set()
                return None
            return self._pending.popleft()

    def _worker(self) -> None:
        while (job := self._next()) is not None:
            name = self._name_of(job)
            self._results.put(("started", name, None))
            try:
                outcome = self._work(job)
            except BaseException as exc:  # a bug in one host must not hang the run
                reason = f"internal error: {type(exc).__name__}: {exc}"
                outcome = HostOutcome(name, st.FAILED, reason)
            self._results.put(("done", name, outcome))
        self._results.put(("exit", "", None))

    def run(self, jobs: Sequence[J]) -> FanOutResult:
        self._pending.extend(jobs)
        workers = min(self._forks, len(jobs))
        for i in range(workers):
            threading.Thread(target=self._worker, name=f"kremove-host-{i}", daemon=True).start()
        outcomes: dict[str, HostOutcome] = {}
        in_flight: set[str] = set()
        running = workers
        interrupted = False
        abandoned: list[str] = []
        while running:
            try:
                kind, name, outcome = self._results.get()
                if kind == "started":
                    in_flight.add(name)
                    self._on_event(HostStarted(name))
                elif kind == "done":
                    assert outcome is not None
                    in_flight.discard(name)
                    outcomes[name] = outcome
                    self._on_event(HostDone(outcome))
                else:
                    running -= 1
            except KeyboardInterrupt:
                if not interrupted:
                    interrupted = True
                    self.stop()
                    self._on_event(Stopping(len(in_flight)))
                    continue
                abandoned = sorted(in_flight)
                break
        started = set(outcomes) | set(abandoned)
        not_started = [self._name_of(j) for j in jobs if self._name_of(j) not in started]
        return FanOutResult(outcomes, not_started, abandoned, interrupted)
