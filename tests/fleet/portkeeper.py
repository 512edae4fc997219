"""The fleet's misbehaving endpoints, in one small detached process (standard library only).

Run as ``python portkeeper.py`` with a JSON request on stdin::

    {"unreachable": 2, "silent": 1, "slow": [40123], "delay": 3.0}

It binds every socket on 127.0.0.1 (port 0: the kernel picks free ports, so nothing races),
prints one JSON line ``{"unreachable": [...], "silent": [...], "slow": [...]}`` and serves until
killed:

- unreachable: a port bound but never listening, so nobody else takes it and connects are refused;
- silent: accepts connections and never sends a byte (what it receives is read and dropped);
- slow: accepts, waits ``delay`` seconds, then relays both ways to the sshd on the given port.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from typing import Any

HOST = "127.0.0.1"


def bound(listen: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    if listen:
        sock.listen(128)
    return sock


async def drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await reader.read(65536):
            pass
    finally:
        writer.close()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await drain(reader, writer)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def relay(backend: int, delay: float) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(delay)
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, backend)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return handle


async def serve(request: dict[str, Any]) -> None:
    delay = float(request.get("delay", 3.0))
    keep = [bound(listen=False) for _ in range(int(request.get("unreachable", 0)))]
    silent_socks = [bound(listen=True) for _ in range(int(request.get("silent", 0)))]
    slow_socks = [(bound(listen=True), int(port)) for port in request.get("slow", [])]
    servers = [await asyncio.start_server(silent, sock=s) for s in silent_socks]
    servers += [await asyncio.start_server(relay(b, delay), sock=s) for s, b in slow_socks]
    ports = {
        "unreachable": [s.getsockname()[1] for s in keep],
        "silent": [s.getsockname()[1] for s in silent_socks],
        "slow": [s.getsockname()[1] for s, _ in slow_socks],
    }
    sys.stdout.write(json.dumps(ports) + "\n")
    sys.stdout.flush()
    sys.stdout.close()
    await asyncio.gather(*(server.serve_forever() for server in servers), asyncio.Event().wait())


def main() -> None:
    asyncio.run(serve(json.loads(sys.stdin.read())))


if __name__ == "__main__":
    main()
