"""Windows behind a real sshd: the WinRM test host's emulated Windows machine (windows.py,
cmdexe.py), reached over OpenSSH by the SSH fleet's windows_openssh kinds
(tests/fleet/windows_openssh.py). Standard library only: it runs on the host's own python3.

Inside each such host's namespace run

- the **server** (``serve``): the host's ``Machine``, its state in ``DIR/state.json`` and its
  log in ``DIR/commands.jsonl`` as the WinRM test server keeps them, listening on the Unix
  socket ``DIR/cmd.sock``;
- for every SSH session, the **shell** (``shell``, the login shell sshd's ForceCommand runs as
  ``SHELL -c COMMAND``): as Windows' OpenSSH runs ``cmd.exe /c COMMAND``, it hands the server
  the command line and the session's stdin, and relays back stdout, stderr and the exit code.

A command is the server's, not the session's: a channel closed mid-command (kremove's deadline)
leaves it running, as Windows' OpenSSH does for a session without a terminal
(PowerShell/Win32-OpenSSH#1751), and what it prints then goes nowhere. The exit code leaves the
host through a Linux sshd, which carries its low 8 bits (Windows' sshd carries all 32 bits);
kremove reads the whole code from the script's own report, and the log keeps it.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .windows import Machine

SOCKET = "cmd.sock"
INITIAL = "initial.json"  # {"name": ..., "state": ...}: what the host starts (and resets) from
STATE = "state.json"
LOG = "commands.jsonl"
OEM_CODEPAGE = 437  # a console's code page until chcp changes it (an English Windows)
_FRAME = struct.Struct(">cI")  # kind (o: stdout, e: stderr, x: exit code), length
_BANNER = "Microsoft Windows [Version 10.0.17763.5329]\r\n(c) 2018 Microsoft Corporation.\r\n"


class Process:
    """One command line the server runs, as windows.Machine expects a process to be."""

    def __init__(self, conn: socket.socket, command: str) -> None:
        self.command_line = f"cmd.exe /c {command}"
        self.codepage = OEM_CODEPAGE
        self.cancelled = threading.Event()  # nothing over SSH terminates a command
        self.totals = {"stdout": bytearray(), "stderr": bytearray()}
        self._conn = conn
        self._send = threading.Lock()
        self._gone = False
        self._stdin = bytearray()
        self._stdin_closed = threading.Event()

    def write(self, stream: str, data: bytes) -> None:
        if data:
            self.totals[stream] += data
            self._frame(b"o" if stream == "stdout" else b"e", data)

    def exit(self, code: int) -> None:
        self._frame(b"x", str(code).encode())

    def _frame(self, kind: bytes, data: bytes) -> None:
        with self._send:
            if self._gone:
                return
            try:
                self._conn.sendall(_FRAME.pack(kind, len(data)) + data)
            except OSError:  # the session is gone: the command runs on, unheard
                self._gone = True

    def feed(self, first: bytes) -> None:
        """The session's stdin, until it ends (or the session does)."""
        self._stdin += first
        try:
            while chunk := self._conn.recv(65536):
                self._stdin += chunk
        except OSError:
            pass
        self._stdin_closed.set()

    def read_stdin(self) -> bytes | None:
        self._stdin_closed.wait()
        return bytes(self._stdin)

    def sleep(self, seconds: float) -> bool:
        return not self.cancelled.wait(seconds)


class Server:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._log_lock = threading.Lock()
        initial = json.loads((folder / INITIAL).read_text(encoding="utf-8"))
        self.machine = Machine(initial["name"], initial["state"], folder / STATE, self.log)

    def log(self, event: str, **fields: Any) -> None:
        record = {"t": time.time(), "event": event, **fields}
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        with self._log_lock, (self.folder / LOG).open("a", encoding="utf-8") as f:
            f.write(line)

    def serve(self) -> None:
        path = self.folder / SOCKET
        path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        path.chmod(0o666)  # the login user's sessions connect
        listener.listen(64)
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            line, _, first = head.partition(b"\n")
            proc = Process(conn, json.loads(line)["command"])
            threading.Thread(target=proc.feed, args=(first,), daemon=True).start()
            self.log("command", command_line=proc.command_line)
            try:
                code = self.machine.execute(proc)
            except Exception as exc:  # an emulator bug must show, not hang the client
                proc.write("stderr", f"test host emulator error: {exc!r}\r\n".encode())
                code = 1
                self.log("emulator_error", error=repr(exc))
            proc.exit(code)
            self.log(
                "output",
                exit_code=code,
                stdout=proc.totals["stdout"].decode("utf-8", errors="replace"),
                stderr=proc.totals["stderr"].decode("utf-8", errors="replace"),
            )


def serve(folder: str) -> None:
    os.umask(0o077)  # the state holds the uninstall passwords: root's alone, as the log
    Server(Path(folder)).serve()


def shell(argv: list[str], folder: str) -> int:
    """The login shell of an SSH session: ``-c COMMAND`` runs COMMAND as ``cmd.exe /c``."""
    if not argv:  # an interactive login: there is no console to emulate
        os.write(1, _BANNER.encode())
        return 0
    if argv[0] != "-c" or len(argv) != 2:
        os.write(2, b"usage: windows-shell -c COMMAND\n")
        return 2
    conn = _connect(Path(folder) / SOCKET)
    conn.sendall(json.dumps({"command": argv[1]}).encode() + b"\n")
    threading.Thread(target=_stdin_to, args=(conn,), daemon=True).start()
    return _relay(conn)


def _connect(path: Path) -> socket.socket:
    until = time.monotonic() + 20  # the server starts beside sshd
    while True:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(str(path))
            return conn
        except OSError:
            conn.close()
            if time.monotonic() > until:
                raise
            time.sleep(0.05)


def _stdin_to(conn: socket.socket) -> None:
    try:
        while chunk := os.read(0, 65536):
            conn.sendall(chunk)
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _relay(conn: socket.socket) -> int:
    """Frames to stdout and stderr until the exit code; 255 when the server hung up first.

    A session whose channel closed (kremove's deadline) stays until its command ends, as
    Windows' cmd.exe does, so sshd sends no exit status for it; what it prints goes nowhere.
    """
    buffer = b""
    heard = True
    while chunk := conn.recv(65536):
        buffer += chunk
        while len(buffer) >= _FRAME.size:
            kind, size = _FRAME.unpack_from(buffer)
            if len(buffer) < _FRAME.size + size:
                break
            data = buffer[_FRAME.size : _FRAME.size + size]
            buffer = buffer[_FRAME.size + size :]
            if kind == b"x":
                return int(data) & 0xFF
            if heard:
                try:
                    _write_all(1 if kind == b"o" else 2, data)
                except OSError:
                    heard = False
    return 255


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def main(argv: list[str]) -> int:
    """``server DIR`` or ``shell DIR [-c COMMAND]`` (what the host's wrapper scripts run)."""
    role, folder, rest = argv[0], argv[1], argv[2:]
    if role == "server":
        serve(folder)
        return 0
    return shell(rest, folder)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
