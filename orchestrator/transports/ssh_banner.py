"""The guard between paramiko and a server that has not yet sent its "SSH-" banner line."""

from __future__ import annotations

import socket
from typing import Any, NoReturn

import paramiko

# What a server may send as and before its "SSH-" line: OpenSSH's limits (kex.c).
MAX_BANNER_LINE = 8192
MAX_PRE_BANNER_LINES = 1024


class BannerRefused(Exception):
    """Raised inside paramiko's reader so that it gives up on this server at once."""


class BannerGuard:
    """Stands for the socket, and until the server's "SSH-" line has passed, refuses a line
    longer than MAX_BANNER_LINE or more than MAX_PRE_BANNER_LINES lines before it.

    paramiko reads the banner 128 bytes at a time into an ever longer buffer that it copies and
    searches on each step: an endless line holds the interpreter lock longer and longer, slowing
    every other host's thread, until this host's deadline."""

    def __init__(self, sock: socket.socket | paramiko.Channel) -> None:
        self._sock = sock
        self.problem: str | None = None
        self.done = False
        self.lines = 0  # complete lines before the banner
        self._length = 0  # of the line being received
        self._head = b""  # its first four bytes

    def recv(self, size: int) -> bytes:
        data: bytes = self._sock.recv(size)
        if not self.done:
            self.done = self._inspect(data)
        return data

    def _inspect(self, data: bytes) -> bool:
        """Count ``data`` against the limits; True once the banner line has ended."""
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            stop = len(data) if end < 0 else end
            self._head += data[start : min(stop, start + 4 - len(self._head))]
            self._length += stop - start
            if self._length > MAX_BANNER_LINE:
                self._refuse(
                    f"a line longer than {MAX_BANNER_LINE} bytes where its SSH banner is due"
                )
            if end < 0:
                return False
            if self._head.startswith(b"SSH-"):
                return True
            self.lines += 1
            if self.lines > MAX_PRE_BANNER_LINES:
                self._refuse(f"more than {MAX_PRE_BANNER_LINES} lines before its SSH banner")
            self._length, self._head, start = 0, b"", end + 1
        return False

    def _refuse(self, what: str) -> NoReturn:
        self.problem = f"the server sent {what}; is this an SSH port?"
        raise BannerRefused(self.problem)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)
