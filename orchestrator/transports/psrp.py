"""PowerShell Remoting (PSRP) over pypsrp: Ansible's ``ansible_connection=psrp``.

PSRP runs over the same WS-Management endpoint as WinRM's cmd shell (port 5985/5986, the same
authentications and message encryption); a host's ``winrm`` settings (scheme, auth, certificate
trust) are read by ``winrm_settings`` for both. One runspace pool per host; each cmd.exe command
line runs in a pipeline of one fixed script (``RUN_CMD``) that starts ``cmd.exe /d /q /c LINE``
(``ProcessStartInfo.Arguments`` is passed as it is: the same command line WinRM runs), feeds it the
given bytes and returns its exit code, stdout and stderr. The line and the bytes are parameters,
never part of the script's text (which PowerShell's script block logging records). Scripts are
written, run and deleted by ``windows_scripts`` as over WinRM and SSH.

A deadline stops the pipeline (PSRP's Ctrl+C: the script's ``finally`` kills cmd.exe) and the
watchdog cuts the HTTP connections of a host that does not answer; beneath pypsrp, the WinRM
transport's guard bounds answers and refuses DTDs. pypsrp is an optional extra: kremove[psrp].
"""

from __future__ import annotations

import base64
import contextlib
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from orchestrator.errors import AuthError, CommandTimeout, InputError, TransportError
from orchestrator.inventory.model import Host
from orchestrator.transports.base import BoundedOutput, CommandResult, Deadline
from orchestrator.transports.connector import PoolSetup
from orchestrator.transports.watchdog import armed
from orchestrator.transports.windows_scripts import CLEANUP_S
from orchestrator.transports.winrm import WinrmPool, WinrmTransport
from orchestrator.transports.winrm_errors import failure, short
from orchestrator.transports.winrm_guard import HttpGuard, refuse_dtd
from orchestrator.transports.winrm_settings import (
    OPERATION_TIMEOUT_S,
    READ_MARGIN_S,
    CheckedSettings,
)

if TYPE_CHECKING:
    from pypsrp.powershell import RunspacePool

__all__ = ["RUN_CMD", "PsrpPool", "PsrpTransport", "open_pool"]

_T = TypeVar("_T")

# pypsrp logs whole WS-Man messages at debug level, and a pipeline's parameters carry the script
# (an uninstall password, perhaps): nothing of pypsrp's below a warning may reach a handler.
logging.getLogger("pypsrp").setLevel(logging.WARNING)
logging.getLogger("pypsrp").addHandler(logging.NullHandler())

# Runs ``cmd.exe /d /q /c $Line`` with the bytes of base64 ``$Stdin`` on its stdin; writes its
# exit code, stdout and stderr (decoded as a console's OEM code page). Windows PowerShell 5.1.
RUN_CMD = """\
param([string]$Line, [string]$Stdin)
$ErrorActionPreference = 'Stop'
$codepage = [Globalization.CultureInfo]::CurrentCulture.TextInfo.OEMCodePage
$oem = [Text.Encoding]::GetEncoding($codepage)
$info = New-Object Diagnostics.ProcessStartInfo
$info.FileName = Join-Path ([Environment]::SystemDirectory) 'cmd.exe'
$info.Arguments = '/d /q /c ' + $Line
$info.UseShellExecute = $false
$info.CreateNoWindow = $true
$info.RedirectStandardInput = $true
$info.RedirectStandardOutput = $true
$info.RedirectStandardError = $true
$info.StandardOutputEncoding = $oem
$info.StandardErrorEncoding = $oem
$process = [Diagnostics.Process]::Start($info)
try {
    $out = $process.StandardOutput.ReadToEndAsync()
    $err = $process.StandardError.ReadToEndAsync()
    $bytes = [Convert]::FromBase64String($Stdin)
    try {
        $process.StandardInput.BaseStream.Write($bytes, 0, $bytes.Length)
        $process.StandardInput.Close()
    } catch [IO.IOException] {}  # cmd.exe exited without reading it all
    while (-not $process.WaitForExit(200)) {}
    $process.WaitForExit()
    $process.ExitCode
    $out.Result
    $err.Result
} finally {
    if (-not $process.HasExited) { $process.Kill() }
    $process.Dispose()
}
"""
MISSING = "pip install 'kremove[psrp]'"


def _require_pypsrp(host: Host) -> None:
    try:
        import pypsrp.powershell  # noqa: F401
    except ImportError:
        raise InputError(
            f"host {host.name!r} ({host.source}): transport psrp (PowerShell Remoting) needs "
            f"pypsrp, which is not installed: {MISSING}; or use winrm, the same endpoint"
        ) from None


class PsrpPool(WinrmPool):
    """What the PSRP connections of one run share: the secret store, as WinRM's."""

    def check(self, host: Host) -> None:
        _require_pypsrp(host)
        super().check(host)

    def transport(self, host: Host) -> PsrpTransport:
        return PsrpTransport(host, self)


class PsrpTransport(WinrmTransport):
    """WinRM's transport with a runspace pool for its shell: ``run``, the scripts and the
    settings are WinRM's; the connection and each cmd.exe line are PSRP's."""

    name = "psrp"

    def __init__(self, host: Host, run: PsrpPool) -> None:
        super().__init__(host, run)
        self._where = f"host {host.name!r} ({host.address}:{host.port})"
        self._pool: RunspacePool | None = None  # pypsrp's, once connected
        self._guard = HttpGuard()
        self._connected = False  # until close(), even when a deadline dropped the pool

    def describe(self) -> str:
        return "psrp " + super().describe().removeprefix("winrm ")

    def connect(self, deadline: Deadline) -> None:
        password = None
        if self.host.password is not None:
            what = f"host {self.host.name!r} password"
            password = self._run.secrets.get(self.host.password, what).reveal()
        wsman = _wsman(self._settings, self.host, password, self._guard)
        from pypsrp.powershell import RunspacePool

        pool = RunspacePool(wsman, configuration_name="Microsoft.PowerShell")
        self._call(deadline, "open a runspace pool", pool.open)
        self._pool = pool
        self._connected = True
        self._scripts.new_shell()

    def close(self) -> None:
        if not self._connected:
            return
        try:  # a script a deadline left behind is swept (in a new pool if the last was cut)
            self._scripts.close(self)
        finally:
            self._connected = False
            pool, self._pool = self._pool, None
            if pool is not None:
                with contextlib.suppress(Exception):  # best effort: the host may be the problem
                    self._call(Deadline.after(CLEANUP_S), "close the runspace pool", pool.close)
                pool.connection.close()

    # -- cmd.exe through the runspace pool (windows_scripts.CmdHost) -----------------------------

    @property
    def cmd_open(self) -> bool:
        return self._pool is not None

    def cmd_ready(self, deadline: Deadline) -> None:
        if self._pool is None:  # a deadline cut the connection: a new pool
            self.connect(deadline)

    def cmd_line(self, line: str, deadline: Deadline, stdin: bytes | None = None) -> CommandResult:
        from pypsrp.complex_objects import PSInvocationState
        from pypsrp.powershell import PowerShell

        pool = self._pool
        if pool is None:
            raise TransportError(f"{self._where}: not connected")
        started = time.monotonic()
        ps = PowerShell(pool)
        ps.add_script(RUN_CMD)
        ps.add_parameter("Line", line)
        ps.add_parameter("Stdin", base64.b64encode(stdin or b"").decode("ascii"))
        self._call(deadline, "start a pipeline", ps.begin_invoke)
        while ps.state == PSInvocationState.RUNNING:
            if deadline.expired:
                return self._stop(ps, started)
            wait = max(1, min(OPERATION_TIMEOUT_S, int(deadline.remaining())))
            try:
                self._call(deadline, "receive", partial(ps.poll_invoke, timeout=wait), wait=wait)
            except CommandTimeout:
                return self._stop(ps, started)
        return self._result(ps, started)

    # -- helpers ----------------------------------------------------------------------------------

    def _result(self, ps: Any, started: float) -> CommandResult:
        output = list(ps.output)
        if len(output) != 3 or not isinstance(output[0], int):
            errors = "; ".join(short(Exception(str(e))) for e in ps.streams.error[:2])
            raise TransportError(
                f"{self._where}: the PowerShell pipeline did not run cmd.exe"
                + (f": {errors}" if errors else f" (state {ps.state})")
            )
        out, err = BoundedOutput(), BoundedOutput()
        out.feed(str(output[1] or "").encode("utf-8"))
        err.feed(str(output[2] or "").encode("utf-8"))
        return CommandResult(
            output[0],
            out.text(),
            err.text(),
            time.monotonic() - started,
            truncated=bool(out.dropped or err.dropped),
        )

    def _stop(self, ps: Any, started: float) -> CommandResult:
        """The deadline passed: stop the pipeline (its script kills cmd.exe), within CLEANUP_S;
        a host that does not answer loses its pool (the next script gets a new one and sweeps)."""
        try:
            self._call(Deadline.after(CLEANUP_S), "stop the pipeline", ps.stop)
        except Exception:
            self._drop()
        return CommandResult(None, "", "", time.monotonic() - started, timed_out=True)

    def _drop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.connection.close()

    def _call(
        self, deadline: Deadline, doing: str, request: Callable[[], _T], *, wait: int = 0
    ) -> _T:
        """One pypsrp request cut at the deadline, its failure as a typed error; ``wait``: the
        OperationTimeout a Receive may be held for."""
        from pypsrp.exceptions import AuthenticationError, WinRMError, WSManFaultError

        dog = armed(deadline.at + (READ_MARGIN_S if wait else 0), self._guard.cut)
        try:
            with dog:
                return request()
        except Exception as exc:
            if dog.fired:
                self._drop()
                raise CommandTimeout(f"{self._where}: no answer in time to {doing}") from None
            if isinstance(exc, AuthenticationError):
                raise AuthError(
                    f"{self._where}: authentication failed (psrp auth {self._settings.auth}, "
                    f"user {self.host.user!r}): {short(exc)}"
                ) from None
            if isinstance(exc, WSManFaultError):
                raise TransportError(
                    f"{self._where}: WS-Man fault while trying to {doing}: {short(exc)}"
                ) from None
            mapped = failure(
                exc,
                self._where,
                doing,
                auth=self._settings.auth,
                user=self.host.user,
                read_timeout=OPERATION_TIMEOUT_S + READ_MARGIN_S,
                trust=self._settings.ca_trust_path,
            )
            if mapped is exc and isinstance(exc, WinRMError):
                mapped = TransportError(f"{self._where}: {short(exc)} while trying to {doing}")
            raise mapped from None


def _wsman(s: CheckedSettings, host: Host, password: str | None, guard: HttpGuard) -> Any:
    """pypsrp's WSMan for these settings, with the guard beneath its HTTP session."""
    import requests.utils
    from pypsrp.exceptions import WinRMTransportError
    from pypsrp.wsman import WSMan, _TransportHTTP

    class Guarded(_TransportHTTP):
        """Answers bounded and cut at deadlines; a DTD refused before pypsrp parses (a fault's
        text too)."""

        def _send_request(self, request: Any, timeout: Any = None) -> bytes:
            assert self.session is not None
            guard.mount(self.session)
            try:
                content = super()._send_request(request, timeout)
            except WinRMTransportError as exc:
                refuse_dtd(str(exc.response_text or "").encode())
                raise
            refuse_dtd(content)
            return content

    certificate = s.auth == "certificate"
    # Only the named CA file, else requests' own bundle: never REQUESTS_CA_BUNDLE.
    trust: Any = (
        (s.ca_trust_path or requests.utils.DEFAULT_CA_BUNDLE_PATH) if s.cert_validation else False
    )
    wsman = WSMan(
        host.address,
        port=host.port,
        username=None if certificate else host.user,
        password=None if certificate else password,
        ssl=s.scheme == "https",
        auth=s.auth,
        cert_validation=trust,
        encryption="never" if s.auth == "basic" else "auto",
        no_proxy=True,
        operation_timeout=OPERATION_TIMEOUT_S,
        read_timeout=OPERATION_TIMEOUT_S + READ_MARGIN_S,
        connection_timeout=OPERATION_TIMEOUT_S,
        certificate_pem=s.cert_pem,
        certificate_key_pem=s.cert_key_pem,
    )
    wsman.transport.__class__ = Guarded
    return wsman


def open_pool(setup: PoolSetup) -> PsrpPool:
    return PsrpPool(secrets=setup.secrets)
