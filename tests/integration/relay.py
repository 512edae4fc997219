"""A TCP relay on a loopback address, for tests about well-known ports (WinRM's 5985): the test
hosts listen on ports the kernel chose, Ansible's rules are about the port an inventory names."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def relay(address: str, port: int, target_port: int) -> Iterator[str]:
    """``address:port`` relayed to ``127.0.0.1:target_port`` while the block runs."""
    server = socket.create_server((address, port))
    threading.Thread(target=_serve, args=(server, target_port), daemon=True).start()
    try:
        yield address
    finally:
        # shutdown wakes the accept() in progress; close alone leaves the port bound until then
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)
        server.close()


def _serve(server: socket.socket, port: int) -> None:
    while True:
        try:
            client, _ = server.accept()
        except OSError:
            return
        upstream = socket.create_connection(("127.0.0.1", port))
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pipe, args=(a, b), daemon=True).start()


def pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy ``source`` to ``sink`` until either end closes, then close both."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            end.close()
