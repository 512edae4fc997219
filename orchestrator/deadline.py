"""A deadline on the monotonic clock: the one way kremove bounds a wait, at the bottom of the
house so that every layer (the inventory's subprocesses, the transports, the engine) can use it."""

from __future__ import annotations

import time

__all__ = ["Deadline"]


class Deadline:
    """A point on the monotonic clock. Every wait in kremove is bounded by one of these."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def sooner(self, seconds: float) -> Deadline:
        """This deadline or ``seconds`` from now, whichever comes first."""
        return Deadline(min(self.at, time.monotonic() + seconds))
