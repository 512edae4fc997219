"""What kremove puts between pywinrm and a WinRM host it does not trust: deadlines, sizes, no DTD.

pywinrm sends each WS-Man message through requests and urllib3 and parses the answer with the
standard library's XML parser. Left alone, a hostile or broken host can hold a request forever
(a byte every few seconds never trips a per-read timeout), make the client inflate a gzip body
without limit, or crash the whole process with an entity chain (expat before 2.7.0,
CVE-2024-8176). ``install`` fits the HTTP layer under one host's ``Protocol`` so that:

- every socket of the host's connections can be shut down at a deadline (``HttpGuard.cut``, armed
  on the watchdog around each request, as the SSH transport does with its channels);
- an answer with a ``Content-Encoding`` is refused before its body is read (kremove asks for
  ``identity``), and no body is read past ``MAX_ANSWER_BYTES``;
- an answer carrying a DTD is refused before anything parses it: WS-Management never sends one.
"""

from __future__ import annotations

import contextlib
import pyexpat
import re
import socket
import threading
import xml.parsers.expat as expat
from collections.abc import Generator
from typing import Any, ClassVar

import requests
import requests.adapters
import urllib3.connection
import urllib3.connectionpool
import urllib3.response
import winrm.transport
from winrm.protocol import Protocol

# pywinrm asks for envelopes of at most 150 KiB (MaxEnvelopeSize 153600) and Windows keeps to it;
# several times that leaves room for message encryption and any other framing.
MAX_ANSWER_BYTES = 1024 * 1024
# The first expat without the entity-expansion stack overflow (CVE-2024-8176).
FIXED_EXPAT = (2, 7, 0)
# A DTD begins with one of these; case-blind, as a bad parser might be.
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
DTD_REFUSED = (
    "it declares a DTD (<!DOCTYPE or <!ENTITY), which WS-Management never does; nothing was parsed"
)


class RefusedAnswer(Exception):
    """An answer kremove will not read further or parse; the message says why."""


class HttpGuard:
    """One host's HTTP layer: the sockets of its connections, so that a deadline can cut them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # A duplicate of each connection's socket: shutting it down ends a read blocked on the
        # original, TLS included (the TLS socket takes over the original's descriptor).
        self._sockets: dict[int, socket.socket] = {}
        self._adapter = _Adapter(self)

    def cut(self) -> None:
        """Shut down every connection's socket: whatever is blocked on one fails at once."""
        with self._lock:
            sockets = list(self._sockets.values())
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by the other side
                sock.shutdown(socket.SHUT_RDWR)

    def mount(self, session: requests.Session) -> None:
        if session.get_adapter("https://") is not self._adapter:
            session.mount("http://", self._adapter)
            session.mount("https://", self._adapter)

    def track(self, connection: object, sock: socket.socket) -> None:
        with self._lock:
            old = self._sockets.pop(id(connection), None)
            self._sockets[id(connection)] = sock.dup()
        if old is not None:
            old.close()

    def forget(self, connection: object) -> None:
        with self._lock:
            dup = self._sockets.pop(id(connection), None)
        if dup is not None:
            dup.close()


def install(protocol: Protocol) -> HttpGuard:
    """Put kremove's HTTP layer under ``protocol`` (before its first request)."""
    guard = HttpGuard()
    # pywinrm builds its Transport inside Protocol() and has no hook for the HTTP layer; the
    # subclass adds nothing but checks around two of its methods.
    protocol.transport.__class__ = _GuardedTransport
    assert isinstance(protocol.transport, _GuardedTransport)
    protocol.transport.guard = guard
    return guard


class _GuardedTransport(winrm.transport.Transport):
    guard: HttpGuard

    def _send_message_request(
        self, session: requests.Session, prepared_request: requests.PreparedRequest
    ) -> requests.Response:
        # Also the first request, which pywinrm sends while it builds the session (NTLM over
        # HTTP sets up message encryption with it).
        self.guard.mount(session)
        return super()._send_message_request(session, prepared_request)

    def _get_message_response_text(self, response: requests.Response) -> bytes:
        text = super()._get_message_response_text(response)  # decrypted, when it was sealed
        refuse_dtd(text)
        return text


class _Adapter(requests.adapters.HTTPAdapter):
    """requests' adapter with connections the guard can cut and answers it can bound."""

    def __init__(self, guard: HttpGuard) -> None:
        self._guard = guard  # before super().__init__, which builds the pool manager
        super().__init__()

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self._guard)

    def add_headers(self, request: requests.PreparedRequest, **kwargs: Any) -> None:
        # Nothing compressed, please; an answer compressed anyway is refused (_check_head).
        request.headers["Accept-Encoding"] = "identity"


def _pool_classes(guard: HttpGuard) -> dict[str, type[urllib3.connectionpool.HTTPConnectionPool]]:
    """Pool classes whose connections report their sockets to ``guard`` (one set per host)."""
    plain = type("_Http", (_HttpConnection,), {"guard": guard})
    tls = type("_Https", (_HttpsConnection,), {"guard": guard})
    return {
        "http": type(
            "_HttpPool", (urllib3.connectionpool.HTTPConnectionPool,), {"ConnectionCls": plain}
        ),
        "https": type(
            "_HttpsPool", (urllib3.connectionpool.HTTPSConnectionPool,), {"ConnectionCls": tls}
        ),
    }


class _Guarded(urllib3.connection.HTTPConnection):
    """Both connection classes: the host's watchdog sees the socket, and answers are bounded."""

    guard: ClassVar[HttpGuard]

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self.guard.track(self, sock)
        return sock

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.guard.forget(self)

    def getresponse(self) -> urllib3.response.HTTPResponse:  # type: ignore[override]
        return _bounded(super().getresponse())


class _HttpConnection(_Guarded):
    pass


class _HttpsConnection(_Guarded, urllib3.connection.HTTPSConnection):
    pass


def _bounded(response: urllib3.response.HTTPResponse) -> urllib3.response.HTTPResponse:
    """The answer, refused now if it says it is compressed, else read with a bound.

    A long Content-Length is not refused here: the first chunk may show a DTD, the more useful
    reason (a DTD's entity chain is what takes a megabyte)."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        response.close()
        raise RefusedAnswer(
            f"it is compressed (Content-Encoding: {encoding[:40]}), which kremove did not ask "
            "for; the body was not read"
        )
    # urllib3 makes the response object itself; the subclass only bounds stream(), through
    # which requests reads every body.
    response.__class__ = _BoundedResponse
    return response


class _BoundedResponse(urllib3.response.HTTPResponse):
    def stream(
        self, amt: int | None = 2**16, decode_content: bool | None = None
    ) -> Generator[bytes]:
        seen = 0
        tail = b""
        for chunk in super().stream(amt, decode_content):
            seen += len(chunk)
            if seen > MAX_ANSWER_BYTES:
                self.close()
                raise RefusedAnswer(_too_long())
            # A DTD comes before the first element, so it shows in the plain text of an
            # unencrypted answer however long the answer is; a sealed one is checked once
            # decrypted (refuse_dtd).
            if _DTD.search(tail + chunk):
                self.close()
                raise RefusedAnswer(DTD_REFUSED)
            tail = chunk[-8:]
            yield chunk


def _too_long() -> str:
    return (
        f"it is larger than {MAX_ANSWER_BYTES // 1024} KiB (kremove's cap on one WinRM answer); "
        "the rest was not read"
    )


def refuse_dtd(body: bytes) -> None:
    """Raise RefusedAnswer if ``body`` declares a DTD, in whatever encoding it is written in.

    expat itself finds the declaration (it reads the byte-order mark and the encoding as the
    real parse will) and stops at its first line, before any entity is declared or expanded.
    """
    if _DTD.search(body):
        raise RefusedAnswer(DTD_REFUSED)
    parser = expat.ParserCreate(namespace_separator="}")  # as ElementTree creates it

    def refuse(*_: object) -> None:
        raise RefusedAnswer(DTD_REFUSED)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    # Not well-formed: pywinrm's own parse reports it as a malformed answer.
    with contextlib.suppress(expat.ExpatError):
        parser.Parse(body, True)


def expat_warning(version: str = pyexpat.EXPAT_VERSION) -> str | None:
    """One line for the operator when this Python's expat predates the CVE-2024-8176 fix."""
    numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:3])
    if numbers >= FIXED_EXPAT:
        return None
    shown = ".".join(str(n) for n in numbers) or version
    return (
        f"kremove: this Python's XML parser is expat {shown}, older than 2.7.0 "
        "(CVE-2024-8176: a hostile WinRM host could crash kremove with it); kremove refuses "
        "WinRM answers that declare a DTD, but update libexpat"
    )
