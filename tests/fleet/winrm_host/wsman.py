"""The WS-Management side of the WinRM test host: HTTP(S), authentication, the cmd shell resource.

What pywinrm uses, as a Windows host answers it (MS-WSMV): Create (a shell), Command, Send
(stdin), Receive (output streams, then CommandState Done with an ExitCode; the w:TimedOut fault,
WSManFault code 2150858793, when nothing happened within the request's OperationTimeout), Signal
(terminate) and Delete. Authentication is Basic (HTTPS, or HTTP on an http_basic host) or
Negotiate carrying raw NTLM tokens, with pyspnego as the acceptor; over HTTP every message after
NTLM is sealed in a multipart/encrypted body (MS-WSMV 2.2.9.1.1). NTLM authenticates a connection,
so its context lives with the connection's handler.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import re
import ssl
import struct
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
PS_RESOURCE = "http://schemas.microsoft.com/powershell/"  # PSRP's configurations (psrp.py)
ACTIONS = {
    "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create": "Create",
    "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete": "Delete",
    f"{SHELL_URI}/Command": "Command",
    f"{SHELL_URI}/Send": "Send",
    f"{SHELL_URI}/Receive": "Receive",
    f"{SHELL_URI}/Signal": "Signal",
}
TIMED_OUT = 2150858793
SHELL_NOT_FOUND = 2150858843
BOUNDARY = b"--Encrypted Boundary"
# pywinrm's Authorization header for certificate auth (the TLS client certificate is the login).
MUTUAL = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"
ENCRYPTED_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
TIMEOUT_TEXT = (
    "The WS-Management service cannot complete the operation within the time specified in "
    "OperationTimeout.  "
)


class Stream:
    """One output stream of a command: bytes written by the emulator, taken by Receive."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.total = bytearray()  # everything, for the host's own log


@dataclass
class Process:
    """A command running in a shell, as the emulator and the Receive handler share it."""

    command_id: str
    command_line: str
    codepage: int
    cond: threading.Condition = field(default_factory=threading.Condition)
    stdin: bytearray = field(default_factory=bytearray)
    stdin_closed: bool = False
    out: Stream = field(default_factory=Stream)
    err: Stream = field(default_factory=Stream)
    done: bool = False
    exit_code: int | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)

    def write(self, stream: str, data: bytes) -> None:
        if not data:
            return
        with self.cond:
            target = self.out if stream == "stdout" else self.err
            target.data += data
            target.total += data
            self.cond.notify_all()

    def read_stdin(self) -> bytes | None:
        """All of stdin once the client ends it; None when the command was terminated first."""
        with self.cond:
            while not self.stdin_closed:
                if self.cancelled.is_set():
                    return None
                self.cond.wait(0.2)
            return bytes(self.stdin)

    def sleep(self, seconds: float) -> bool:
        """Wait; False when terminated meanwhile."""
        return not self.cancelled.wait(seconds)


@dataclass
class Shell:
    shell_id: str
    codepage: int
    noprofile: bool
    commands: dict[str, Process] = field(default_factory=dict)


@dataclass
class Reply:
    """What the host answers one request with; the fields past ``body`` are injected faults."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    raw: bool = False  # never sealed, even on an encrypted connection (a gzip body)
    drop: bool = False  # the connection is closed without an answer
    trickle: float = 0.0  # seconds between bytes of the answer (a host that trickles)
    trickle_for: float = 0.0  # then the rest at once, so an unbounded client still ends
    stop: threading.Event | None = None  # set: stop trickling (the host was reset)


# A hostile answer: a linear chain of entities (CVE-2024-8176: expat before 2.7.0 recurses once per
# entity and overflows the stack at tens of thousands of them).
DTD_CHAIN = 100_000
# A gzip body that inflates to 1 GiB (about 1 MiB on the wire).
GZIP_BOMB = 1 << 30
_BOMBS: dict[int, bytes] = {}
_BOMB_LOCK = threading.Lock()


def hostile_dtd(entities: int) -> bytes:
    """A SOAP-looking answer whose DOCTYPE declares a chain of ``entities`` entities."""
    decls = ['<!ENTITY e0 "kremove">'] + [
        f'<!ENTITY e{i} "&e{i - 1};">' for i in range(1, entities)
    ]
    return (
        '<?xml version="1.0"?><!DOCTYPE s:Envelope [' + "".join(decls) + "]>"
        f'<s:Envelope xmlns:s="{NS["s"]}"><s:Body>&e{entities - 1};</s:Body></s:Envelope>'
    ).encode()


def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes gzip-compressed, as gzip members of 1 MiB each, one after the other
    (a valid gzip stream that HTTP clients inflate whole; made in milliseconds)."""
    import gzip

    with _BOMB_LOCK:
        if size not in _BOMBS:
            member = gzip.compress(bytes(1 << 20), compresslevel=9)
            tail = gzip.compress(bytes(size & ((1 << 20) - 1)), compresslevel=9)
            _BOMBS[size] = member * (size >> 20) + tail
        return _BOMBS[size]


class Fault(Exception):
    def __init__(self, status: int, subcode: str, code: int, text: str) -> None:
        super().__init__(text)
        self.status, self.subcode, self.code, self.text = status, subcode, code, text


@dataclass
class HostConfig:
    name: str
    user: str
    password: str
    domain: str
    basic_over_http: bool  # an http_basic host: Basic accepted on plain HTTP
    client_certificate: bool = False  # the TLS client certificate is the login, nothing else


class HostService:
    """One emulated Windows host's WS-Man endpoint: its shells and its machine."""

    def __init__(self, config: HostConfig, machine: Any, log: Callable[..., None]) -> None:
        self.config = config
        self.machine = machine
        self.log = log
        self.shells: dict[str, Shell] = {}
        self.lock = threading.Lock()
        self.faults: list[dict[str, Any]] = []  # injected by tests: answer an action badly
        self.unhang = threading.Event()
        self.psrp: Any = None  # the PowerShell resource, made at its first request

    # -- actions ---------------------------------------------------------------------------------

    def handle(self, body: bytes) -> Reply:
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return Reply(400, b"")
        action_uri = _text(root, ".//a:Action")
        message_id = _text(root, ".//a:MessageID")
        action = ACTIONS.get(action_uri, "")
        fault = self._take_fault(action)
        trickle: dict[str, Any] | None = None
        if fault is not None:
            if fault["kind"] != "trickle":
                return self._injected(action, fault)
            trickle = fault  # the real answer, but a byte at a time
        try:
            if _text(root, ".//w:ResourceURI").startswith(PS_RESOURCE):
                reply = self._psrp().handle(action, root)
            elif action == "Create":
                reply = self._create(root)
            elif action == "Delete":
                reply = self._delete(root)
            elif action == "Command":
                reply = self._command(root)
            elif action == "Send":
                reply = self._send(root)
            elif action == "Receive":
                reply = self._receive(root)
            elif action == "Signal":
                reply = self._signal(root)
            else:
                raise Fault(
                    500,
                    "a:ActionNotSupported",
                    2150858754,
                    f"The action {action_uri} is not supported by the service.",
                )
        except Fault as fault_:
            return Reply(fault_.status, _fault(fault_, message_id, self.config.name))
        answer = Reply(200, _envelope(f"{action_uri}Response", message_id, reply))
        if trickle is not None:
            self.log("injected_fault", action=action, kind="trickle")
            answer.trickle = float(trickle.get("interval") or 1.0)
            answer.trickle_for = float(trickle.get("seconds") or 60)
            answer.stop = self.unhang
        return answer

    def _psrp(self) -> Any:
        """The PowerShell (PSRP) resource: psrp.py, which needs psrpcore (a dev dependency)."""
        with self.lock:
            if self.psrp is None:
                try:
                    from .psrp import PsrpEndpoint
                except ImportError:
                    raise Fault(
                        500, "w:InvalidSelectors", 2150858752, "No PowerShell endpoint here."
                    ) from None
                self.psrp = PsrpEndpoint(self)
            return self.psrp

    def _take_fault(self, action: str) -> dict[str, Any] | None:
        """The injected fault that answers this request, if any (``after`` requests are spared)."""
        with self.lock:
            fault = next(
                (f for f in self.faults if f["action"] in (action, "*") and f["count"] > 0), None
            )
            if fault is None:
                return None
            if fault.get("after", 0) > 0:
                fault["after"] -= 1
                return None
            fault["count"] -= 1
            return fault

    def _injected(self, action: str, fault: dict[str, Any]) -> Reply:
        kind = fault["kind"]
        self.log("injected_fault", action=action, kind=kind)
        if kind == "http500":
            return Reply(500, b"Internal Server Error: the WinRM service broke")
        if kind == "malformed":
            return Reply(200, b"<s:Envelope><s:Body><unclosed")
        if kind == "drop":
            return Reply(0, b"", drop=True)
        if kind == "dtd":
            return Reply(200, hostile_dtd(int(fault.get("size") or DTD_CHAIN)))
        if kind == "oversize":
            size = int(fault.get("size") or 2 * 1024 * 1024)
            return Reply(200, b"<s:Envelope>" + b" " * size + b"</s:Envelope>")
        if kind == "gzip":
            body = gzip_bomb(int(fault.get("size") or GZIP_BOMB))
            return Reply(200, body, headers=[("Content-Encoding", "gzip")], raw=True)
        # "hang": no answer until the time is up or the host is reset.
        self.unhang.wait(float(fault.get("seconds", 60)))
        return Reply(500, b"")

    def _shell(self, root: ET.Element) -> Shell:
        shell_id = _text(root, ".//w:Selector[@Name='ShellId']")
        with self.lock:
            shell = self.shells.get(shell_id)
        if shell is None:
            raise Fault(
                500,
                "w:InvalidSelectors",
                SHELL_NOT_FOUND,
                f"The request for the Windows Remote Shell with ShellId {shell_id} failed "
                "because the shell was not found on the server. Possible causes are: the "
                "specified ShellId is incorrect or the shell no longer exists on the server. "
                "Provide the correct ShellId or create a new shell and retry the operation.",
            )
        return shell

    def _create(self, root: ET.Element) -> str:
        options = _options(root)
        shell = Shell(
            str(uuid.uuid4()).upper(),
            int(options.get("WINRS_CODEPAGE", "437") or 437),
            options.get("WINRS_NOPROFILE", "FALSE").upper() == "TRUE",
        )
        with self.lock:
            self.shells[shell.shell_id] = shell
        self.log("shell", shell=shell.shell_id, codepage=shell.codepage, noprofile=shell.noprofile)
        return (
            "<x:ResourceCreated><a:Address>http://127.0.0.1/wsman</a:Address>"
            "<a:ReferenceParameters>"
            f"<w:ResourceURI>{SHELL_URI}/cmd</w:ResourceURI>"
            f'<w:SelectorSet><w:Selector Name="ShellId">{shell.shell_id}</w:Selector>'
            "</w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
            f"<rsp:Shell><rsp:ShellId>{shell.shell_id}</rsp:ShellId>"
            f"<rsp:ResourceUri>{SHELL_URI}/cmd</rsp:ResourceUri>"
            "<rsp:InputStreams>stdin</rsp:InputStreams>"
            "<rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>"
        )

    def _delete(self, root: ET.Element) -> str:
        shell = self._shell(root)
        with self.lock:
            self.shells.pop(shell.shell_id, None)
        for proc in shell.commands.values():
            if not proc.done:
                proc.cancelled.set()
        self.log("delete", shell=shell.shell_id)
        return ""

    def _command(self, root: ET.Element) -> str:
        shell = self._shell(root)
        options = _options(root)
        command = _text(root, ".//rsp:Command")
        arguments = [a.text or "" for a in root.iterfind(".//rsp:Arguments", NS)]
        line = " ".join([command, *arguments])
        if options.get("WINRS_SKIP_CMD_SHELL", "FALSE").upper() != "TRUE":
            line = f"cmd.exe /c {line}"
        proc = Process(str(uuid.uuid4()).upper(), line, shell.codepage)
        shell.commands[proc.command_id] = proc
        self.log("command", shell=shell.shell_id, command_id=proc.command_id, command_line=line)
        threading.Thread(
            target=self._run, args=(proc,), name=f"winrm-{self.config.name}", daemon=True
        ).start()
        return (
            f"<rsp:CommandResponse><rsp:CommandId>{proc.command_id}</rsp:CommandId>"
            "</rsp:CommandResponse>"
        )

    def _run(self, proc: Process) -> None:
        try:
            code = self.machine.execute(proc)
        except Exception as exc:  # an emulator bug must show, not hang the client
            proc.write("stderr", f"test host emulator error: {exc!r}\r\n".encode())
            code = 1
            self.log("emulator_error", command_id=proc.command_id, error=repr(exc))
        with proc.cond:
            proc.done = True
            proc.exit_code = code
            proc.cond.notify_all()
        self.log(
            "output",
            command_id=proc.command_id,
            exit_code=code,
            terminated=proc.cancelled.is_set(),
            stdout=proc.out.total.decode("utf-8", errors="replace"),
            stderr=proc.err.total.decode("utf-8", errors="replace"),
        )

    def _process(self, root: ET.Element, shell: Shell, path: str) -> Process:
        node = root.find(path, NS)
        command_id = node.get("CommandId", "") if node is not None else ""
        proc = shell.commands.get(command_id)
        if proc is None:
            raise Fault(
                500,
                "w:InvalidParameter",
                2150858807,
                f"The command with CommandId {command_id} was not found in the shell.",
            )
        return proc

    def _send(self, root: ET.Element) -> str:
        shell = self._shell(root)
        proc = self._process(root, shell, ".//rsp:Stream")
        stream = root.find(".//rsp:Stream", NS)
        assert stream is not None
        data = base64.b64decode(stream.text or "")
        with proc.cond:
            proc.stdin += data
            if stream.get("End", "false").lower() == "true":
                proc.stdin_closed = True
            proc.cond.notify_all()
        return "<rsp:SendResponse/>"

    def _receive(self, root: ET.Element) -> str:
        shell = self._shell(root)
        proc = self._process(root, shell, ".//rsp:DesiredStream")
        timeout = _duration(_text(root, ".//w:OperationTimeout") or "PT60S")
        envelope = int(_text(root, ".//w:MaxEnvelopeSize") or 153600)
        until = time.monotonic() + timeout
        with proc.cond:
            while not (proc.out.data or proc.err.data or proc.done):
                left = until - time.monotonic()
                if left <= 0:
                    self.log("receive_timeout", command_id=proc.command_id, seconds=timeout)
                    raise Fault(500, "w:TimedOut", TIMED_OUT, TIMEOUT_TEXT)
                proc.cond.wait(left)
            # As Windows does, an answer stays within the MaxEnvelopeSize the client asked for;
            # what does not fit waits for the next Receive.
            room = max(4096, (envelope - 4096) * 3 // 4)
            out = bytes(proc.out.data[:room])
            del proc.out.data[:room]
            err = bytes(proc.err.data[: room - len(out)])
            del proc.err.data[: len(err)]
            done = proc.done and not proc.out.data and not proc.err.data
            code = proc.exit_code
        cid = proc.command_id
        parts = ["<rsp:ReceiveResponse>"]
        for name, data in (("stdout", out), ("stderr", err)):
            for i in range(0, len(data), 32768):
                chunk = base64.b64encode(data[i : i + 32768]).decode()
                parts.append(f'<rsp:Stream Name="{name}" CommandId="{cid}">{chunk}</rsp:Stream>')
            if done:
                parts.append(
                    f'<rsp:Stream Name="{name}" CommandId="{cid}" End="true"></rsp:Stream>'
                )
        if done:
            parts.append(
                f'<rsp:CommandState CommandId="{cid}" State="{SHELL_URI}/CommandState/Done">'
                f"<rsp:ExitCode>{code}</rsp:ExitCode></rsp:CommandState>"
            )
        else:
            parts.append(
                f'<rsp:CommandState CommandId="{cid}" State="{SHELL_URI}/CommandState/Running"/>'
            )
        parts.append("</rsp:ReceiveResponse>")
        return "".join(parts)

    def _signal(self, root: ET.Element) -> str:
        shell = self._shell(root)
        proc = self._process(root, shell, ".//rsp:Signal")
        code = _text(root, ".//rsp:Code").rpartition("/")[2]
        self.log("signal", command_id=proc.command_id, code=code, was_running=not proc.done)
        if code in ("terminate", "ctrl_c", "ctrl_break"):
            proc.cancelled.set()
            with proc.cond:
                proc.stdin_closed = True
                proc.cond.notify_all()
        return "<rsp:SignalResponse/>"


# -- XML helpers ---------------------------------------------------------------------------------


def _text(root: ET.Element, path: str) -> str:
    node = root.find(path, NS)
    return (node.text or "").strip() if node is not None else ""


def _options(root: ET.Element) -> dict[str, str]:
    return {o.get("Name", ""): (o.text or "").strip() for o in root.iterfind(".//w:Option", NS)}


def _duration(text: str) -> float:
    match = re.fullmatch(r"PT(?:(\d+)M)?(?:([\d.]+)S)?", text)
    if not match:
        return 60.0
    return int(match.group(1) or 0) * 60 + float(match.group(2) or 0)


def _header(action: str, relates_to: str) -> str:
    return (
        f"<s:Header><a:Action>{action}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        f"<a:RelatesTo>{relates_to}</a:RelatesTo></s:Header>"
    )


def _open() -> str:
    names = " ".join(f'xmlns:{k}="{v}"' for k, v in NS.items())
    return f'<s:Envelope xml:lang="en-US" {names}>'


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    return (
        _open() + _header(action, relates_to) + f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _fault(fault: Fault, relates_to: str, machine: str) -> bytes:
    from xml.sax.saxutils import escape

    text = escape(fault.text)
    body = (
        "<s:Fault><s:Code><s:Value>s:Receiver</s:Value>"
        f"<s:Subcode><s:Value>{fault.subcode}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{text}</s:Text></s:Reason>'
        f'<s:Detail><f:WSManFault Code="{fault.code}" Machine="{machine}">'
        f"<f:Message>{text}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return (
        _open()
        + _header("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to)
        + f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


# -- HTTP and authentication ---------------------------------------------------------------------


class Listener:
    """One TCP port of one host: HTTPS (``context``) or plain HTTP."""

    def __init__(
        self,
        service: HostService,
        port: int,
        context: ssl.SSLContext | None,
        cert_hash: bytes | None,
    ) -> None:
        self.service = service
        self.tls = context is not None
        self.cert_hash = cert_hash
        handler = type("Handler", (_Handler,), {"listener": self})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, name=f"winrm-listener-{port}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def cert_hash(der: bytes) -> bytes:
    """RFC 5929 tls-server-end-point: SHA-256 of the certificate (signed with SHA-256)."""
    return hashlib.sha256(der).digest()


class _Handler(http.server.BaseHTTPRequestHandler):
    listener: Listener
    protocol_version = "HTTP/1.1"
    # Buffered: headers and body leave in one segment (flushed after each request), not two that
    # meet the client's delayed ACK.
    wbufsize = 1 << 16
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.ntlm: Any = None
        self.ntlm_user: str | None = None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (TimeoutError, ConnectionError, ssl.SSLError):
            self.close_connection = True

    def do_POST(self) -> None:
        service = self.listener.service
        if self.path.split("?")[0].lower() != "/wsman":
            self._reply(404, b"")
            return
        length = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(length) if length else b""
        auth = self.headers.get("Authorization", "")
        encrypted = self.headers.get("Content-Type", "").startswith("multipart/encrypted")
        if service.config.client_certificate or auth == MUTUAL:
            if not self._certificate(auth):
                self._reply(401, b"")
                return
        elif auth.startswith("Basic "):
            if not self._basic(auth[6:]):
                self._challenge()
                return
        elif auth.startswith(("Negotiate ", "NTLM ")):
            scheme, _, token = auth.partition(" ")
            if not self._ntlm_step(scheme, token.strip()):
                return
        elif self.ntlm is None or not self.ntlm.complete:
            self._challenge()
            return
        if not body:
            self._reply(200, b"")
            return
        if encrypted:
            if self.ntlm is None or not self.ntlm.complete:
                self._reply(400, b"")
                return
            try:
                body = _unseal(self.ntlm, body)
            except Exception as exc:
                service.log("decrypt_error", error=repr(exc))
                self._reply(400, b"")
                return
        elif not self.listener.tls and not service.config.basic_over_http:
            # AllowUnencrypted=false, the Windows default.
            service.log("refused_unencrypted")
            self._reply(401, b"")
            return
        reply = service.handle(body)
        if reply.drop:
            self.close_connection = True
            return
        if encrypted and not reply.raw:
            reply.body = _seal(self.ntlm, reply.body)
        if reply.trickle:
            self._trickle(reply, encrypted=encrypted and not reply.raw)
            return
        self._reply(
            reply.status, reply.body, headers=reply.headers, encrypted=encrypted and not reply.raw
        )

    def _trickle(self, reply: Reply, *, encrypted: bool) -> None:
        """Send the whole answer, status line included, a byte per ``reply.trickle`` seconds."""
        if encrypted:
            kind = (
                f'multipart/encrypted;protocol="{ENCRYPTED_PROTOCOL}";boundary="Encrypted Boundary"'
            )
        else:
            kind = "application/soap+xml;charset=UTF-8"
        head = (
            f"HTTP/1.1 {reply.status} {self.responses[reply.status][0]}\r\n"
            f"Server: {self.server_version}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(reply.body)}\r\n\r\n"
        ).encode()
        data = head + reply.body
        stop = reply.stop or threading.Event()
        until = time.monotonic() + reply.trickle_for
        self.close_connection = True
        try:
            for n in range(len(data)):
                if time.monotonic() >= until:
                    self.connection.sendall(data[n:])
                    break
                self.connection.sendall(data[n : n + 1])
                if stop.wait(reply.trickle):
                    break
        except OSError:  # the client gave up: what a bounded client does
            self.listener.service.log("trickle_cut", sent=n)

    def _certificate(self, auth: str) -> bool:
        """WinRM certificate auth: the header pywinrm sends for it, over a TLS connection whose
        client certificate (verified against the fleet's CA in the handshake) names the login."""
        service = self.listener.service
        peer = self.connection.getpeercert() if self.listener.tls else None  # type: ignore[attr-defined]
        subject = [pair for rdn in (peer or {}).get("subject", ()) for pair in rdn]
        user = next((value for key, value in subject if key == "commonName"), "")
        ok = (
            auth == MUTUAL
            and service.config.client_certificate
            and user.lower() == service.config.user.lower()
        )
        service.log("auth", scheme="certificate", user=user, ok=ok, tls=self.listener.tls)
        return ok

    def _basic(self, token: str) -> bool:
        service = self.listener.service
        cfg = service.config
        allowed = self.listener.tls or cfg.basic_over_http
        try:
            user, _, password = base64.b64decode(token).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            user, password = "", None  # type: ignore[assignment]
        ok = allowed and user.lower() == cfg.user.lower() and password == cfg.password
        service.log("auth", scheme="basic", user=user, ok=ok, tls=self.listener.tls)
        return ok

    def _ntlm_step(self, scheme: str, token: str) -> bool:
        import spnego
        from spnego.channel_bindings import GssChannelBindings

        service = self.listener.service
        if self.ntlm is None or self.ntlm.complete:
            bindings = None
            if self.listener.cert_hash is not None:
                bindings = GssChannelBindings(
                    application_data=b"tls-server-end-point:" + self.listener.cert_hash
                )
            self.ntlm = spnego.server(
                protocol="ntlm",
                options=spnego.NegotiateOptions.use_ntlm,
                channel_bindings=bindings,
            )
        try:
            out = self.ntlm.step(base64.b64decode(token))
        except Exception as exc:
            service.log("auth", scheme="ntlm", user=None, ok=False, error=type(exc).__name__)
            self.ntlm = None
            self._challenge()
            return False
        if not self.ntlm.complete:
            self._reply(
                401,
                b"",
                headers=[("WWW-Authenticate", f"{scheme} {base64.b64encode(out or b'').decode()}")],
            )
            return False
        service.log(
            "auth", scheme="ntlm", user=self.ntlm.client_principal, ok=True, tls=self.listener.tls
        )
        return True

    def _challenge(self) -> None:
        headers = [("WWW-Authenticate", "Negotiate")]
        if self.listener.tls or self.listener.service.config.basic_over_http:
            headers.append(("WWW-Authenticate", 'Basic realm="WSMAN"'))
        self._reply(401, b"", headers=headers)

    def _reply(
        self,
        status: int,
        body: bytes,
        *,
        headers: list[tuple[str, str]] | None = None,
        encrypted: bool = False,
    ) -> None:
        self.send_response(status)
        for name, value in headers or []:
            self.send_header(name, value)
        if encrypted:
            self.send_header(
                "Content-Type",
                f'multipart/encrypted;protocol="{ENCRYPTED_PROTOCOL}";'
                'boundary="Encrypted Boundary"',
            )
        elif body:
            self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


def _unseal(ctx: Any, body: bytes) -> bytes:
    parts = [p for p in body.split(BOUNDARY + b"\r\n") if p]
    message = b""
    for i in range(0, len(parts) - 1, 2):
        header, payload = parts[i], parts[i + 1]
        length = int(header.split(b"Length=")[1].split(b"\r\n")[0])
        if payload.endswith(BOUNDARY + b"--\r\n"):
            payload = payload[: -len(BOUNDARY + b"--\r\n")]
        payload = payload.replace(b"\tContent-Type: application/octet-stream\r\n", b"", 1)
        size = struct.unpack("<i", payload[:4])[0]
        signature, sealed = payload[4 : 4 + size], payload[4 + size :]
        plain = ctx.unwrap(signature + sealed).data
        if len(plain) != length:
            raise ValueError("encrypted length does not match")
        message += plain
    return message


def _seal(ctx: Any, message: bytes) -> bytes:
    wrapped = ctx.wrap(message, encrypt=True).data
    signature, sealed = wrapped[:16], wrapped[16:]
    return (
        BOUNDARY
        + b"\r\n\tContent-Type: "
        + ENCRYPTED_PROTOCOL.encode()
        + b"\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
        + str(len(message)).encode()
        + b"\r\n"
        + BOUNDARY
        + b"\r\n\tContent-Type: application/octet-stream\r\n"
        + struct.pack("<i", len(signature))
        + signature
        + sealed
        + BOUNDARY
        + b"--\r\n"
    )


def json_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
