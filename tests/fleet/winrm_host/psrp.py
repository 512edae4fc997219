"""PowerShell Remoting (MS-PSRP) on the WinRM test host: the Microsoft.PowerShell endpoint.

PSRP rides the same WS-Management shell actions as winrs (MS-PSRP 3.1.5.3): Create carries the
runspace pool's first PSRP fragments in ``creationXml``, Command creates a pipeline (its first
fragment in ``Arguments``, the pipeline id as CommandId), Send carries pipeline input, Receive
returns PSRP fragments on the ``stdout`` stream, Signal stops a pipeline, Delete closes the pool.
The PSRP side is ``psrpcore``'s server runspace pool and pipeline (real fragments, messages and
CLIXML serialization, as a Windows host sends them); this module is the WS-Man glue.

What a pipeline *does* is emulated like cmd.exe is: this host runs no PowerShell. It knows the
scripts a client may send by their SHA-256 (``SCRIPTS``) and carries out what each does on a
Windows host with the emulated machine; any other pipeline fails, as an unknown command would.
Known: kremove's ``psrp.RUN_CMD``: start ``cmd.exe /d /q /c LINE`` (``ProcessStartInfo.Arguments``
is passed verbatim, so LINE is the same command line a winrs Command runs) with the given bytes on
its stdin, and write three objects: the exit code, stdout and stderr (decoded in the console's
OEM code page). A stopped pipeline kills the process (the script's ``finally``).
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

PS_URI = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
PS_NS = "http://schemas.microsoft.com/powershell"
OEM_CODEPAGE = 437
# The scripts this host can run, by the SHA-256 of their text (UTF-8): what each one does.
RUN_CMD_SHA256 = "11f84b5bc7e97431a7fceade4ec1c1237dc47c7b115b87fe7911125a2d2ff8f0"
SCRIPTS = {RUN_CMD_SHA256: "run_cmd"}


@dataclass
class _Pipe:
    pipeline: Any  # psrpcore.ServerPipeline
    command_id: str
    inputs: list[Any] = field(default_factory=list)
    proc: Any = None  # the wsman.Process it runs
    finished: bool = False


class Pool:
    """One runspace pool (a WS-Man shell of the PowerShell resource)."""

    def __init__(self, shell_id: str) -> None:
        import psrpcore

        self.shell_id = shell_id
        self.server = psrpcore.ServerRunspacePool()
        self.cond = threading.Condition()
        self.outbox: dict[str | None, list[bytes]] = {}
        self.pipes: dict[str, _Pipe] = {}

    def feed(self, data: bytes, pipe: _Pipe | None = None) -> list[Any]:
        """Give the pool a client payload; the events it made. Call with ``cond`` held."""
        from psrpcore import PSRPPayload, StreamType

        pipeline_id = pipe.pipeline.pipeline_id if pipe else None
        self.server.receive_data(PSRPPayload(data, StreamType.default, pipeline_id))
        events = []
        while (event := self.server.next_event()) is not None:
            events.append(event)
        self.flush()
        return events

    def flush(self) -> None:
        """Move what the pool prepared into the outbox of its target (a pipeline or the pool)."""
        while (payload := self.server.data_to_send()) is not None:
            target = str(payload.pipeline_id).upper() if payload.pipeline_id else None
            self.outbox.setdefault(target, []).append(payload.data)
        self.cond.notify_all()


class PsrpEndpoint:
    """The PowerShell resource of one host's WS-Man service (wsman.HostService)."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.pools: dict[str, Pool] = {}
        self.lock = threading.Lock()

    def handle(self, action: str, root: ET.Element) -> str:
        from .wsman import Fault

        if action == "Create":
            return self._create(root)
        if action == "Signal":
            return self._signal(root)
        pool = self._pool(root)
        if action == "Command":
            return self._command(pool, root)
        if action == "Send":
            return self._send(pool, root)
        if action == "Receive":
            return self._receive(pool, root)
        if action == "Delete":
            return self._delete(pool)
        raise Fault(500, "a:ActionNotSupported", 2150858754, f"{action} is not supported.")

    def _pool(self, root: ET.Element) -> Pool:
        from .wsman import SHELL_NOT_FOUND, Fault, _text

        shell_id = _text(root, ".//w:Selector[@Name='ShellId']").upper()
        with self.lock:
            pool = self.pools.get(shell_id)
        if pool is None:
            raise Fault(500, "w:InvalidSelectors", SHELL_NOT_FOUND, f"No shell {shell_id}.")
        return pool

    def _create(self, root: ET.Element) -> str:
        from .wsman import NS

        shell = root.find(".//rsp:Shell", NS)
        creation = root.find(f".//{{{PS_NS}}}creationXml")
        shell_id = (shell.get("ShellId") if shell is not None else None) or str(uuid.uuid4())
        pool = Pool(shell_id.upper())
        with pool.cond:
            pool.feed(base64.b64decode(creation.text or "" if creation is not None else ""))
        with self.lock:
            self.pools[pool.shell_id] = pool
        self.service.log("psrp_pool", shell=pool.shell_id, state=str(pool.server.state))
        return (
            "<x:ResourceCreated><a:Address>http://127.0.0.1/wsman</a:Address>"
            f"<a:ReferenceParameters><w:ResourceURI>{PS_URI}</w:ResourceURI>"
            f'<w:SelectorSet><w:Selector Name="ShellId">{pool.shell_id}</w:Selector>'
            "</w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
            f"<rsp:Shell><rsp:ShellId>{pool.shell_id}</rsp:ShellId>"
            f"<rsp:ResourceUri>{PS_URI}</rsp:ResourceUri>"
            "<rsp:InputStreams>stdin pr</rsp:InputStreams>"
            "<rsp:OutputStreams>stdout</rsp:OutputStreams></rsp:Shell>"
        )

    def _command(self, pool: Pool, root: ET.Element) -> str:
        import psrpcore

        from .wsman import NS

        line = root.find(".//rsp:CommandLine", NS)
        assert line is not None
        command_id = (line.get("CommandId") or str(uuid.uuid4())).upper()
        arguments = [a.text or "" for a in root.iterfind(".//rsp:Arguments", NS)]
        with pool.cond:
            pipeline = psrpcore.ServerPipeline(pool.server, uuid.UUID(command_id))
            pipe = _Pipe(pipeline, command_id)
            pool.pipes[command_id] = pipe
            self._events(pool, pipe, pool.feed(base64.b64decode("".join(arguments)), pipe))
        return (
            f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId>"
            "</rsp:CommandResponse>"
        )

    def _send(self, pool: Pool, root: ET.Element) -> str:
        from .wsman import NS

        stream = root.find(".//rsp:Stream", NS)
        assert stream is not None
        pipe = pool.pipes.get((stream.get("CommandId") or "").upper())
        with pool.cond:
            self._events(pool, pipe, pool.feed(base64.b64decode(stream.text or ""), pipe))
        return "<rsp:SendResponse/>"

    def _events(self, pool: Pool, pipe: _Pipe | None, events: list[Any]) -> None:
        import psrpcore

        for event in events:
            if isinstance(event, psrpcore.PipelineInputEvent) and pipe is not None:
                pipe.inputs.append(event.data)
            start = isinstance(event, psrpcore.EndOfPipelineInputEvent) or (
                isinstance(event, psrpcore.CreatePipelineEvent) and event._ps_object.NoInput
            )
            if start and pipe is not None:
                threading.Thread(
                    target=self._invoke, args=(pool, pipe), name="psrp-pipeline", daemon=True
                ).start()

    def _receive(self, pool: Pool, root: ET.Element) -> str:
        from .wsman import NS, TIMED_OUT, TIMEOUT_TEXT, Fault, _duration, _text

        desired = root.find(".//rsp:DesiredStream", NS)
        command_id = (desired.get("CommandId") or "").upper() if desired is not None else ""
        target = command_id or None
        pipe = pool.pipes.get(command_id)
        until = time.monotonic() + _duration(_text(root, ".//w:OperationTimeout") or "PT60S")
        with pool.cond:
            while not pool.outbox.get(target) and not (pipe and pipe.finished):
                left = until - time.monotonic()
                if left <= 0:
                    raise Fault(500, "w:TimedOut", TIMED_OUT, TIMEOUT_TEXT)
                pool.cond.wait(left)
            chunks = pool.outbox.pop(target, [])
            done = pipe is not None and pipe.finished
        attr = f' CommandId="{command_id}"' if command_id else ""
        parts = ["<rsp:ReceiveResponse>"]
        for chunk in chunks:
            data = base64.b64encode(chunk).decode()
            parts.append(f'<rsp:Stream Name="stdout"{attr}>{data}</rsp:Stream>')
        if done:
            state = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
            parts.append(f'<rsp:CommandState{attr} State="{state}"/>')
        parts.append("</rsp:ReceiveResponse>")
        return "".join(parts)

    def _signal(self, root: ET.Element) -> str:
        from .wsman import NS, _text

        pool = self._pool(root)
        node = root.find(".//rsp:Signal", NS)
        command_id = (node.get("CommandId") or "").upper() if node is not None else ""
        code = _text(root, ".//rsp:Code")
        pipe = pool.pipes.get(command_id)
        self.service.log("psrp_signal", command_id=command_id, code=code)
        if pipe is not None:
            with pool.cond:
                if pipe.proc is not None:
                    pipe.proc.cancelled.set()
                if not pipe.finished and "ctrl_c" in code:
                    pipe.pipeline.begin_stop()
                    pipe.pipeline.stop()
                    pipe.finished = True
                    pool.flush()
        return "<rsp:SignalResponse/>"

    def _delete(self, pool: Pool) -> str:
        with self.lock:
            self.pools.pop(pool.shell_id, None)
        with pool.cond:
            for pipe in pool.pipes.values():
                if pipe.proc is not None:
                    pipe.proc.cancelled.set()
        self.service.log("psrp_delete", shell=pool.shell_id)
        return ""

    # -- what a pipeline does -------------------------------------------------------------------

    def _invoke(self, pool: Pool, pipe: _Pipe) -> None:
        with pool.cond:
            pipe.pipeline.start()
            pool.flush()
            commands = pipe.pipeline.metadata.commands
        known = None
        if len(commands) == 1 and commands[0].is_script:
            text = commands[0].command_text.encode("utf-8")
            known = SCRIPTS.get(hashlib.sha256(text).hexdigest())
        self.service.log("psrp_pipeline", command_id=pipe.command_id, known=known)
        outputs: list[Any] = []
        if known == "run_cmd":
            outputs = self._run_cmd(pipe, dict(commands[0].parameters))
        with pool.cond:
            if not pipe.finished:  # not stopped meanwhile
                for value in outputs:
                    pipe.pipeline.write_output(value)
                if known is None:
                    pipe.pipeline.write_output("this test host runs only the scripts it knows")
                pipe.pipeline.complete()
                pipe.finished = True
            pool.flush()

    def _run_cmd(self, pipe: _Pipe, params: dict[str | None, Any]) -> list[Any]:
        from .wsman import Process

        line = f"cmd.exe /d /q /c {params.get('Line') or ''}"
        proc = Process(str(uuid.uuid4()).upper(), line, OEM_CODEPAGE)
        proc.stdin += base64.b64decode(params.get("Stdin") or "")
        proc.stdin_closed = True
        pipe.proc = proc
        self.service.log(
            "command", shell="psrp", command_id=proc.command_id, command_line=line, psrp=True
        )
        self.service._run(proc)  # the emulated machine, as a winrs Command runs it
        encoding = f"cp{OEM_CODEPAGE}"
        return [
            proc.exit_code,
            proc.out.total.decode(encoding, errors="replace"),
            proc.err.total.decode(encoding, errors="replace"),
        ]
