"""One thread that fires callbacks at deadlines, so no blocking library call outlives its deadline.

paramiko bounds some waits (banner, handshake, auth) but not all of them, and a host that stops
answering mid-command would otherwise hold a worker forever. Arming the watchdog before a blocking
call and cancelling it afterwards makes the call fail when its deadline passes: the callback closes
the socket or channel underneath it. One heap and one thread serve every host of a run.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable


class Watchdog:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._live: set[int] = set()
        self._ids = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, at: float, callback: Callable[[], None]) -> int:
        """Call ``callback`` at monotonic time ``at`` unless cancelled first; returns a handle."""
        with self._cond:
            handle = next(self._ids)
            heapq.heappush(self._heap, (at, handle, callback))
            self._live.add(handle)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="kremove-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return handle

    def cancel(self, handle: int) -> bool:
        """Disarm; False when the callback already ran (or is running)."""
        with self._cond:
            if handle in self._live:
                self._live.discard(handle)
                return True
            return False

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and self._heap[0][1] not in self._live:
                        heapq.heappop(self._heap)  # cancelled
                    if self._heap and self._heap[0][0] <= time.monotonic():
                        _, handle, callback = heapq.heappop(self._heap)
                        self._live.discard(handle)
                        break
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
            # A failing close must not stop every other deadline.
            with contextlib.suppress(Exception):
                callback()


WATCHDOG = Watchdog()


class armed:
    """``with armed(deadline_at, close):`` runs ``close`` if the block is still inside at the time.

    ``fired`` tells afterwards whether it did, which turns the resulting error into a timeout.
    """

    def __init__(self, at: float, callback: Callable[[], None]) -> None:
        self._at = at
        self._callback = callback
        self._handle: int | None = None
        self.fired = False

    def __enter__(self) -> armed:
        self._handle = WATCHDOG.arm(self._at, self._fire)
        return self

    def _fire(self) -> None:
        self.fired = True
        self._callback()

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            WATCHDOG.cancel(self._handle)
