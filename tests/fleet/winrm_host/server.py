"""The WinRM test fleet's server process: every emulated host's listeners, in one process.

Started by ``WinrmFleet.start`` as ``python -m tests.fleet.winrm_host.server CONFIG`` (a separate
process, so that pyspnego's NTLM acceptor can read its credential file from NTLM_USER_FILE and so
that a host never shares memory with the client under test). Each host gets an HTTPS port and an
HTTP port on 127.0.0.1, both chosen by the kernel; an unreachable host gets a bound socket that
never listens (connection refused, and nobody else can take the port). When all are up, the ports
go to ``ready.json``. A small control listener takes JSON requests from the fleet: reset a host,
inject or clear faults, stop.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .kinds import KINDS, initial_state
from .windows import Machine
from .wsman import HostConfig, HostService, Listener, cert_hash, json_line


class Fleet:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.workdir = Path(config["workdir"])
        self.services: dict[str, HostService] = {}
        self.listeners: list[Listener] = []
        self.holders: list[socket.socket] = []
        self.log_lock = threading.Lock()
        self.stopping = threading.Event()

    def _context(self, which: str, *, clients: bool = False) -> tuple[ssl.SSLContext, bytes]:
        cert, key = self.config["tls"][which]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if clients:  # TLS client authentication: a certificate the fleet's CA signed, or no TLS
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.config["tls"]["client_ca"])
        der = ssl.PEM_cert_to_DER_cert(Path(cert).read_text())
        return ctx, cert_hash(der)

    def _logger(self, name: str) -> Any:
        path = self.workdir / "hosts" / name / "commands.jsonl"

        def log(event: str, **fields: Any) -> None:
            record = {"t": time.time(), "event": event, **fields}
            with self.log_lock, path.open("a", encoding="utf-8") as f:
                f.write(json_line(record))

        return log

    def start(self) -> dict[str, Any]:
        ready: dict[str, Any] = {"hosts": {}}
        good = self._context("good")
        bad = self._context("bad")
        mutual = self._context("good", clients=True)
        for host in self.config["hosts"]:
            name, kind = host["name"], KINDS[host["kind"]]
            hostdir = self.workdir / "hosts" / name
            hostdir.mkdir(parents=True, exist_ok=True)
            if not kind.listens:
                holder = socket.socket()
                holder.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
                self.holders.append(holder)
                port = holder.getsockname()[1]
                ready["hosts"][name] = {"https_port": port, "http_port": port}
                continue
            log = self._logger(name)
            state = initial_state(
                host["kind"],
                name,
                self.config["user"],
                self.config["uninstall"],
                host.get("uninstall_passwords"),
            )
            machine = Machine(name, state, hostdir / "state.json", log)
            service = HostService(
                HostConfig(
                    name=name,
                    user=self.config["user"],
                    password=self.config["password"],
                    domain="",
                    basic_over_http=kind.basic_over_http,
                    client_certificate=kind.client_certificate,
                ),
                machine,
                log,
            )
            self.services[name] = service
            ctx, digest = bad if kind.bad_certificate else good
            ctx, digest = mutual if kind.client_certificate else (ctx, digest)
            https = Listener(service, 0, ctx, digest)
            http = Listener(service, 0, None, None)
            self.listeners += [https, http]
            ready["hosts"][name] = {"https_port": https.port, "http_port": http.port}
        for listener in self.listeners:
            listener.start()
        control = self._control()
        ready["control_port"] = control.server_address[1]
        ready["pid"] = os.getpid()
        return ready

    def _control(self) -> http.server.ThreadingHTTPServer:
        fleet = self

        class Control(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = json.loads(self.rfile.read(length) or b"{}")
                try:
                    answer = fleet.control(request)
                    status = 200
                except Exception as exc:
                    answer, status = {"error": repr(exc)}, 500
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Control)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "ping":
            return {"ok": True}
        if op == "stop":
            self.stopping.set()
            return {"ok": True}
        service = self.services[request["host"]]
        if op == "reset":
            host = next(h for h in self.config["hosts"] if h["name"] == request["host"])
            with service.lock:
                shells = list(service.shells.values())
                service.shells.clear()
                service.faults.clear()
                service.unhang.set()
                service.unhang = threading.Event()
            for shell in shells:
                for proc in shell.commands.values():
                    proc.cancelled.set()
            service.machine.load(
                initial_state(
                    host["kind"],
                    request["host"],
                    self.config["user"],
                    self.config["uninstall"],
                    host.get("uninstall_passwords"),
                )
            )
            log = self.workdir / "hosts" / request["host"] / "commands.jsonl"
            with self.log_lock:
                log.write_text("")
            return {"ok": True}
        if op == "fault":
            with service.lock:
                service.faults.append(
                    {
                        "action": request["action"],
                        "kind": request["kind"],
                        "count": int(request.get("count", 1)),
                        "after": int(request.get("after", 0)),
                        "seconds": request.get("seconds", 60),
                        "interval": request.get("interval", 1.0),
                        "size": request.get("size"),
                    }
                )
            return {"ok": True}
        if op == "clear":  # faults only: the machine keeps its state (files left behind...)
            with service.lock:
                service.faults.clear()
                service.unhang.set()
                service.unhang = threading.Event()
            return {"ok": True}
        raise ValueError(f"unknown control op {op!r}")


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    fleet = Fleet(config)
    ready = fleet.start()
    path = Path(config["workdir"]) / "ready.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(ready))
    tmp.replace(path)
    signal.signal(signal.SIGTERM, lambda *a: fleet.stopping.set())
    parent = os.getppid()
    # Stop with the fleet, or when the process that started it is gone (a killed test run).
    while not fleet.stopping.wait(1.0):
        if not config.get("keep_running") and os.getppid() != parent:
            break
    time.sleep(0.1)  # let the control listener answer the stop request
    for listener in fleet.listeners:
        listener.server.server_close()
    os._exit(0)


if __name__ == "__main__":
    main()
