"""The WinRM transport against the WinRM test host (tests/fleet/winrm_host): real HTTP and HTTPS,
real NTLM with message encryption and Basic over TLS, the WS-Man shell protocol as pywinrm speaks
it, and an emulated cmd.exe behind it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.errors import (
    AuthError,
    CommandTimeout,
    HostKeyError,
    InputError,
    TransportError,
    UnreachableError,
)
from orchestrator.inventory import load_inventories
from orchestrator.inventory.model import Host, Inventory, SecretRef, WinrmSettings
from orchestrator.secrets import SecretStore
from orchestrator.transports.base import Deadline
from orchestrator.transports.connector import Connector
from orchestrator.transports.winrm import WinrmPool, WinrmTransport, describe, insecure
from tests import figures
from tests.fleet.winrm_host.fleet import PASSWORD_ENV, WRONG_PASSWORD_ENV, WinrmFleet
from tests.fleet.winrm_host.kinds import LEGACY_FILE


@pytest.fixture(autouse=True)
def fleet_env(winrm_fleet: WinrmFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in winrm_fleet.env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def inventory_file(winrm_fleet: WinrmFleet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return winrm_fleet.write_inventory(tmp_path_factory.mktemp("winrm") / "fleet.yml")


@pytest.fixture(scope="module")
def inventory(inventory_file: Path) -> Inventory:
    return load_inventories([inventory_file])


def host_of(fleet: WinrmFleet, inventory: Inventory, kind: str, **winrm: object) -> Host:
    host = inventory.hosts[fleet.by_kind(kind)[0].name]
    if winrm:
        settings = replace(host.winrm, **winrm)  # type: ignore[arg-type]
        fh = fleet.host(host.name)
        port = fh.https_port if settings.scheme == "https" else fh.http_port
        host = replace(host, winrm=settings, port=port)
    return host


def transport(host: Host) -> WinrmTransport:
    return WinrmTransport(host, WinrmPool(secrets=SecretStore()))


@pytest.fixture
def clean(winrm_fleet: WinrmFleet, inventory: Inventory) -> Iterator[WinrmTransport]:
    t = transport(host_of(winrm_fleet, inventory, "clean"))
    t.connect(Deadline.after(20))
    yield t
    t.close()


def events(fleet: WinrmFleet, name: str, kind: str) -> list[dict[str, object]]:
    return [e for e in fleet.log(name) if e["event"] == kind]


# -- authentication and TLS ----------------------------------------------------------------------


class Recorder:
    """A TCP relay on 127.0.0.1 that keeps every byte the client sent: what a sniffer would see."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.sent = bytearray()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(65536):
                if record:
                    self.sent += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


def test_ntlm_over_http_encrypts_every_message(winrm_fleet: WinrmFleet, inventory: Inventory):
    host = host_of(winrm_fleet, inventory, "clean", scheme="http", auth="ntlm")
    recorder = Recorder(host.port)
    t = transport(replace(host, port=recorder.port))
    try:
        t.connect(Deadline.after(20))
        result = t.run("@echo off\r\necho kremove-marker-%COMPUTERNAME%\r\n", Deadline.after(20))
    finally:
        t.close()
        recorder.close()
    assert result.exit_code == 0
    assert result.stdout.strip().startswith("kremove-marker-W")
    sent = bytes(recorder.sent)
    assert b"Authorization: Negotiate " in sent  # NTLM through Negotiate, as Windows offers it
    assert b"multipart/encrypted" in sent
    # Neither the script, the command lines nor the SOAP envelopes crossed the wire readable.
    for clear in (b"kremove-marker", b"findstr", b"Envelope", b"cmd.exe"):
        assert clear not in sent
    auth = events(winrm_fleet, host.name, "auth")
    assert auth[-1]["scheme"] == "ntlm" and auth[-1]["ok"] and not auth[-1]["tls"]
    assert not events(winrm_fleet, host.name, "refused_unencrypted")


def test_basic_over_https_with_the_fleet_ca(winrm_fleet: WinrmFleet, inventory: Inventory):
    host = host_of(winrm_fleet, inventory, "clean", scheme="https", auth="basic")
    assert not insecure(host)
    assert "validated against" in describe(host)
    t = transport(host)
    t.connect(Deadline.after(20))
    try:
        assert t.run("echo over tls", Deadline.after(20)).stdout == "over tls\r\n"
    finally:
        t.close()
    auth = events(winrm_fleet, host.name, "auth")
    assert auth[-1]["scheme"] == "basic" and auth[-1]["ok"] and auth[-1]["tls"]


def test_ntlm_over_https(winrm_fleet: WinrmFleet, inventory: Inventory):
    t = transport(host_of(winrm_fleet, inventory, "clean", scheme="https", auth="ntlm"))
    t.connect(Deadline.after(20))
    try:
        assert t.run("echo ntlm", Deadline.after(20)).exit_code == 0
    finally:
        t.close()


def test_basic_over_http_is_refused_before_connecting(
    winrm_fleet: WinrmFleet, inventory: Inventory
):
    fh = winrm_fleet.by_kind("http_basic")[0]
    host = replace(
        host_of(winrm_fleet, inventory, "clean"),
        name=fh.name,
        port=fh.http_port,
        winrm=WinrmSettings(auth="basic", scheme="http"),
    )
    before = len(winrm_fleet.log(host.name))
    with pytest.raises(InputError, match="clear text"):
        Connector({"winrm": WinrmPool(secrets=SecretStore())}).check(host)
    with pytest.raises(InputError, match="Basic authentication over plain HTTP is refused"):
        transport(host)
    assert len(winrm_fleet.log(host.name)) == before  # the host heard nothing


def test_bad_certificate_is_rejected_with_its_own_message(
    winrm_fleet: WinrmFleet, inventory: Inventory
):
    host = inventory.hosts[winrm_fleet.by_kind("bad_certificate")[0].name]
    t = transport(host)
    with pytest.raises(HostKeyError) as caught:
        t.connect(Deadline.after(20))
    text = str(caught.value)
    assert host.name in text
    assert "TLS certificate verification failed" in text
    assert str(winrm_fleet.ca) in text and "cert_validation: false" in text
    assert not events(winrm_fleet, host.name, "shell")


def test_bad_certificate_accepted_only_when_validation_is_off(
    winrm_fleet: WinrmFleet, inventory: Inventory
):
    name = winrm_fleet.by_kind("bad_certificate")[0].name
    host = replace(
        inventory.hosts[name], winrm=replace(inventory.hosts[name].winrm, cert_validation=False)
    )
    assert insecure(host)
    assert "CERTIFICATE VALIDATION OFF" in describe(host)
    t = transport(host)
    assert t.insecure
    t.connect(Deadline.after(20))
    try:
        assert t.run("echo unverified", Deadline.after(20)).exit_code == 0
    finally:
        t.close()


def test_system_ca_store_does_not_trust_the_fleet(winrm_fleet: WinrmFleet, inventory: Inventory):
    host = host_of(winrm_fleet, inventory, "clean", ca_trust_path=None)
    with pytest.raises(HostKeyError, match="the system CA store"):
        transport(host).connect(Deadline.after(20))


@pytest.mark.parametrize(
    ("scheme", "auth"), [("http", "ntlm"), ("https", "ntlm"), ("https", "basic")]
)
def test_wrong_password_is_auth_failed(
    winrm_fleet: WinrmFleet, inventory: Inventory, scheme: str, auth: str
):
    host = host_of(winrm_fleet, inventory, "clean", scheme=scheme, auth=auth)
    host = replace(host, password=SecretRef(env=WRONG_PASSWORD_ENV))
    with pytest.raises(AuthError) as caught:
        transport(host).connect(Deadline.after(20))
    assert caught.value.status == "auth_failed"
    assert "401" in str(caught.value)
    for secret in winrm_fleet.secrets:
        assert secret not in str(caught.value)


def test_unreachable_host(winrm_fleet: WinrmFleet, inventory: Inventory):
    host = inventory.hosts[winrm_fleet.by_kind("unreachable")[0].name]
    started = time.monotonic()
    with pytest.raises(UnreachableError, match="connection refused"):
        transport(host).connect(Deadline.after(20))
    assert time.monotonic() - started < 5


def test_unresolvable_address_is_unreachable(winrm_fleet: WinrmFleet, inventory: Inventory):
    host = replace(host_of(winrm_fleet, inventory, "clean"), address="nohost.fleet.invalid")
    with pytest.raises(UnreachableError):
        transport(host).connect(Deadline.after(20))


def test_missing_extras_and_credentials_are_input_errors(
    winrm_fleet: WinrmFleet, inventory: Inventory
):
    import winrm.transport as wt

    base = host_of(winrm_fleet, inventory, "clean")
    if not wt.HAVE_KERBEROS:
        with pytest.raises(InputError, match=r"pip install 'kremove\[kerberos\]'"):
            transport(replace(base, winrm=WinrmSettings(auth="kerberos")))
    if not wt.HAVE_CREDSSP:
        with pytest.raises(InputError, match=r"pip install 'kremove\[credssp\]'"):
            transport(replace(base, winrm=WinrmSettings(auth="credssp")))
    with pytest.raises(InputError, match="needs a password"):
        transport(replace(base, password=None))
    with pytest.raises(InputError, match="WinRM is not set up"):
        Connector().check(base)
    assert isinstance(
        Connector({"winrm": WinrmPool(secrets=SecretStore())}).for_host(base), WinrmTransport
    )


# -- the shell and its commands ------------------------------------------------------------------


def test_one_utf8_shell_per_host_reused_for_every_step(
    winrm_fleet: WinrmFleet, inventory: Inventory
):
    host = host_of(winrm_fleet, inventory, "clean")
    winrm_fleet.reset(host.name)
    t = transport(host)
    t.connect(Deadline.after(20))
    try:
        for n in range(3):
            assert t.run(f"exit /b {n}", Deadline.after(20)).exit_code == n
    finally:
        t.close()
    shells = events(winrm_fleet, host.name, "shell")
    assert len(shells) == 1
    assert shells[0]["codepage"] == 65001 and shells[0]["noprofile"] is True
    assert len(events(winrm_fleet, host.name, "delete")) == 1


def test_scripts_go_through_a_temporary_cmd_file(winrm_fleet: WinrmFleet, clean: WinrmTransport):
    name = clean.host.name
    # Batch semantics, not a command line: %VAR% expands before "&" is parsed, %~nx0 is the file.
    script = '@echo off\nset "X=a b & c"\necho "[%X%]"\necho self=%~nx0\nexit /b 7\n'
    first = clean.run("exit /b 0", Deadline.after(20))
    result = clean.run(script, Deadline.after(20))
    assert first.exit_code == 0 and result.exit_code == 7
    assert result.stdout.startswith('"[a b & c]"\r\nself=kremove-')
    # The first script of a shell sweeps what earlier connections may have left behind.
    sweep = 'del /f /q "%TEMP%\\kremove-*.cmd" "%TEMP%\\kremove-*.log" '
    assert winrm_fleet.commands_log(name)[-6].startswith(f"cmd.exe /d /q /c {sweep}")
    assert " >nul 2>&1 & findstr /v /l /x " in winrm_fleet.commands_log(name)[-6]
    lines = winrm_fleet.commands_log(name)[-3:]
    assert lines[0].startswith('cmd.exe /d /q /c findstr /v /l /x /c:"kremove-never-matches')
    path = lines[0].split('> "', 1)[1].rstrip('"')
    assert path.startswith("%TEMP%\\kremove-") and path.endswith(".cmd")
    assert lines[1] == f'cmd.exe /d /q /c ""{path}""'
    assert lines[2] == f'cmd.exe /d /q /c del /f /q "{path}"'
    assert winrm_fleet.scripts(name)[-1] == script.replace("\n", "\r\n")
    temp = "C:\\Users\\kops\\AppData\\Local\\Temp\\"
    assert not [f for f in winrm_fleet.state(name)["files"] if f.startswith(temp)]


def test_a_long_script_never_touches_the_command_line(
    winrm_fleet: WinrmFleet, clean: WinrmTransport
):
    lines = [f"echo line {n:05d} {'x' * 60}" for n in range(400)]
    script = "@echo off\n" + "\n".join(lines) + "\n"
    assert len(script) > 20_000
    result = clean.run(script, Deadline.after(30))
    assert result.exit_code == 0
    out = result.stdout.splitlines()
    assert len(out) == 400 and out[0].startswith("line 00000") and out[-1].startswith("line 00399")
    # The longest is the first write, which sweeps leftovers first (about 210 characters).
    assert max(len(c) for c in winrm_fleet.commands_log(clean.host.name)) < 300


def test_a_script_line_longer_than_cmd_allows_is_refused(clean: WinrmTransport):
    with pytest.raises(TransportError, match="8191"):
        clean.run("echo " + "y" * 9000, Deadline.after(20))


def test_utf8_output_and_invalid_bytes(clean: WinrmTransport):
    result = clean.run("@echo off\necho Лаборатория Касперского — café\n", Deadline.after(20))
    assert result.stdout == "Лаборатория Касперского — café\r\n"
    legacy = clean.run(f'type "{LEGACY_FILE}"', Deadline.after(20))
    assert legacy.exit_code == 0
    assert legacy.stdout == "Agent d'administration (\ufffdt\ufffd) \ufffd end\r\n"


def test_unknown_command_is_not_recognized(clean: WinrmTransport):
    result = clean.run("frobnicate --now", Deadline.after(20))
    assert result.exit_code == 9009
    assert "'frobnicate' is not recognized as an internal or external command" in result.stderr


def test_deadline_terminates_the_command_and_the_host_stays_usable(
    winrm_fleet: WinrmFleet, inventory: Inventory
):
    host = host_of(winrm_fleet, inventory, "clean")
    winrm_fleet.reset(host.name)
    t = transport(host)
    t.connect(Deadline.after(20))
    try:
        started = time.monotonic()
        result = t.run("@echo off\necho started\ntimeout /t 120 /nobreak >nul\n", Deadline.after(4))
        elapsed = time.monotonic() - started
        assert result.timed_out and result.exit_code is None
        assert result.stdout == "started\r\n"
        assert elapsed < 4 + 3, elapsed  # a few seconds past it at most (Signal, Delete)
        log = winrm_fleet.log(host.name)
        # The Receive was held by the host and ended with the operation-timeout fault, retried.
        assert [e for e in log if e["event"] == "receive_timeout"]
        signals = [e for e in log if e["event"] == "signal"]
        assert signals and signals[-1]["code"] == "terminate" and signals[-1]["was_running"]
        assert [e for e in log if e["event"] == "delete"]  # the shell was closed
        # The same transport goes on with a new shell, and removes the script left behind.
        again = t.run("echo still here", Deadline.after(20))
        assert again.stdout == "still here\r\n"
    finally:
        t.close()
    assert len(events(winrm_fleet, host.name, "shell")) == 2
    temp = "C:\\Users\\kops\\AppData\\Local\\Temp\\"
    assert not [f for f in winrm_fleet.state(host.name)["files"] if f.startswith(temp)]


def test_an_expired_deadline_sends_nothing(winrm_fleet: WinrmFleet, clean: WinrmTransport):
    before = len(winrm_fleet.commands_log(clean.host.name))
    result = clean.run("echo late", Deadline.after(0))
    assert result.timed_out and result.exit_code is None
    assert len(winrm_fleet.commands_log(clean.host.name)) == before


def test_a_host_that_stops_answering_is_bounded_by_the_deadline(
    winrm_fleet: WinrmFleet, inventory: Inventory
):
    host = host_of(winrm_fleet, inventory, "clean")
    winrm_fleet.reset(host.name)
    t = transport(host)
    t.connect(Deadline.after(20))
    winrm_fleet.inject_fault(host.name, "Command", "hang")
    started = time.monotonic()
    try:
        with pytest.raises(CommandTimeout):
            t.run("echo x", Deadline.after(3))
    finally:
        t.close()
        winrm_fleet.reset(host.name)
    assert time.monotonic() - started < 3 + 3
    figures.record("fault", fault="WinRM host answers nothing", status="timeout")


@pytest.mark.parametrize(
    ("action", "kind", "message"),
    [
        ("Command", "http500", "HTTP 500 from the WinRM service while trying to start a command"),
        ("Receive", "malformed", "malformed WS-Man answer while trying to read output"),
        ("Create", "http500", "HTTP 500 from the WinRM service while trying to open a shell"),
    ],
)
def test_broken_answers_are_transport_errors(
    winrm_fleet: WinrmFleet, inventory: Inventory, action: str, kind: str, message: str
):
    host = host_of(winrm_fleet, inventory, "clean")
    winrm_fleet.reset(host.name)
    winrm_fleet.inject_fault(host.name, action, kind)
    t = transport(host)
    try:
        with pytest.raises(TransportError) as caught:
            t.connect(Deadline.after(20))
            t.run("echo x", Deadline.after(20))
        assert type(caught.value) is TransportError
        assert message in str(caught.value)
        assert host.name in str(caught.value)
    finally:
        t.close()
    winrm_fleet.reset(host.name)
    figures.record("fault", fault=f"WinRM {kind} answer to {action}", status="failed (named)")


def test_stdin_for_a_script_is_refused(clean: WinrmTransport):
    with pytest.raises(TransportError, match="stdin"):
        clean.run("echo x", Deadline.after(20), stdin=b"data")


def test_become_is_ignored(clean: WinrmTransport):
    assert clean.run("echo admin", Deadline.after(20), become=True).stdout == "admin\r\n"


def test_the_inventory_loader_refuses_basic_over_http_too(winrm_fleet: WinrmFleet, tmp_path: Path):
    path = winrm_fleet.write_inventory(tmp_path / "basic.yml", include=["http_basic"])
    with pytest.raises(InputError, match="clear text"):
        load_inventories([path])


def test_password_never_reaches_the_host_output(winrm_fleet: WinrmFleet, tmp_path: Path):
    for h in winrm_fleet.hosts:
        printed = winrm_fleet.printed(h.name)
        for secret in winrm_fleet.secrets:
            assert secret not in printed
    assert PASSWORD_ENV in winrm_fleet.env


# -- a hostile host: what it answers is bounded in time, size and shape --------------------------

# One connect and one step in a process of its own, so that a crash of the interpreter (expat's
# stack overflow) fails the test instead of killing pytest, and the peak memory is the step's.
ISOLATED_STEP = r"""
import json, sys, time
from pathlib import Path
from orchestrator.inventory import load_inventories
from orchestrator.secrets import SecretStore
from orchestrator.transports.base import Deadline
from orchestrator.transports.winrm import WinrmPool, WinrmTransport

def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(ln.split()[1]) for ln in status if ln.startswith("VmHWM:"))

inventory, name, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
host = load_inventories([Path(inventory)]).hosts[name]
t = WinrmTransport(host, WinrmPool(secrets=SecretStore()))
t.connect(Deadline.after(20))
before, started = peak_kib(), time.monotonic()
try:
    result = t.run("echo x", Deadline.after(seconds))
    outcome = {"exit_code": result.exit_code, "timed_out": result.timed_out}
except Exception as exc:
    outcome = {"error": type(exc).__name__, "message": str(exc)}
outcome["elapsed"] = time.monotonic() - started
outcome["grew_mib"] = (peak_kib() - before) / 1024
t.close()
print(json.dumps(outcome))
"""


def isolated_step(
    fleet: WinrmFleet, inventory_file: Path, name: str, seconds: float = 20
) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", ISOLATED_STEP, str(inventory_file), name, str(seconds)],
        env={**os.environ, **fleet.env},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, (
        f"the kremove process died (exit {done.returncode}): {done.stderr[-600:]}"
    )
    outcome: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return outcome


@pytest.fixture
def faulty(winrm_fleet: WinrmFleet, inventory: Inventory) -> Iterator[Host]:
    """The clean host, reset before and after a test that injects faults into it."""
    host = host_of(winrm_fleet, inventory, "clean")
    winrm_fleet.reset(host.name)
    yield host
    winrm_fleet.reset(host.name)


def test_an_entity_chain_is_refused_before_it_is_parsed(
    winrm_fleet: WinrmFleet, inventory_file: Path, faulty: Host
):
    # 100,000 chained entities overflow expat < 2.7.0 (CVE-2024-8176): the process would die.
    winrm_fleet.inject_fault(faulty.name, "Receive", "dtd")
    outcome = isolated_step(winrm_fleet, inventory_file, faulty.name)
    assert outcome["error"] == "TransportError", outcome
    message = str(outcome["message"])
    assert "DTD" in message and faulty.name in message and "read output" in message
    figures.record("fault", fault="WinRM answer with a 100,000-entity DTD", status="failed (named)")


def test_a_dtd_is_refused_inside_an_encrypted_answer_too(
    winrm_fleet: WinrmFleet, inventory: Inventory, faulty: Host
):
    # Small enough to parse; NTLM seals it on plain HTTP, so only the decrypted text shows it.
    host = host_of(winrm_fleet, inventory, "clean", scheme="http", auth="ntlm")
    t = transport(host)
    t.connect(Deadline.after(20))
    winrm_fleet.inject_fault(host.name, "Receive", "dtd", size=20)
    try:
        with pytest.raises(TransportError, match="DTD") as caught:
            t.run("echo x", Deadline.after(20))
    finally:
        t.close()
    assert type(caught.value) is TransportError


def test_a_dtd_in_any_encoding_is_refused() -> None:
    from orchestrator.transports import winrm_guard

    plain = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'
    utf16 = plain.decode().replace("1.0", '1.0" encoding="UTF-16').encode("utf-16")
    for body in (plain, utf16, b"<!DOCTYPE a><a/>", b"<!doctype a><a/>"):
        with pytest.raises(winrm_guard.RefusedAnswer, match="DTD"):
            winrm_guard.refuse_dtd(body)
    winrm_guard.refuse_dtd(b'<?xml version="1.0"?><s:Envelope xmlns:s="u"/>')  # WS-Man: fine
    winrm_guard.refuse_dtd(b"<s:Envelope><unclosed")  # malformed: pywinrm reports it


@pytest.mark.parametrize(
    ("version", "warned"),
    [("expat_2.5.0", True), ("expat_2.6.4", True), ("expat_2.7.0", False), ("expat_2.10.1", False)],
)
def test_an_old_expat_is_warned_about(version: str, warned: bool) -> None:
    from orchestrator.transports import winrm_guard

    warning = winrm_guard.expat_warning(version)
    if warned:
        assert warning is not None and version.removeprefix("expat_") in warning
        assert "2.7.0" in warning and "CVE-2024-8176" in warning and "\n" not in warning
    else:
        assert warning is None


@pytest.mark.parametrize("action", ["Receive", "Command"])
def test_a_trickling_host_is_cut_at_the_deadline(
    winrm_fleet: WinrmFleet, faulty: Host, action: str
):
    # One byte a second never trips a per-read timeout; only kremove's own deadline ends it.
    t = transport(faulty)
    t.connect(Deadline.after(20))
    winrm_fleet.inject_fault(faulty.name, action, "trickle", interval=1.0, seconds=30)
    started = time.monotonic()
    try:
        result = t.run("echo x", Deadline.after(3))
        assert result.timed_out and result.exit_code is None
    except CommandTimeout as exc:
        assert "no answer in time" in str(exc) and faulty.name in str(exc)
    finally:
        elapsed = time.monotonic() - started
        t.close()
    assert elapsed < 3 + 5, elapsed
    figures.record("fault", fault=f"WinRM host trickles its {action} answer", status="timeout")


def test_a_compressed_answer_is_refused_unread(
    winrm_fleet: WinrmFleet, inventory_file: Path, faulty: Host
):
    # About 1 MiB on the wire, 1 GiB once inflated.
    winrm_fleet.inject_fault(faulty.name, "Receive", "gzip")
    outcome = isolated_step(winrm_fleet, inventory_file, faulty.name)
    assert outcome.get("error") == "TransportError", outcome
    assert "Content-Encoding: gzip" in str(outcome["message"])
    assert float(outcome["grew_mib"]) < 200, outcome  # type: ignore[arg-type]
    figures.record("fault", fault="WinRM gzip bomb answer", status="failed (named)")


def test_an_answer_larger_than_the_cap_is_refused(winrm_fleet: WinrmFleet, faulty: Host):
    from orchestrator.transports.winrm_guard import MAX_ANSWER_BYTES

    t = transport(faulty)
    t.connect(Deadline.after(20))
    winrm_fleet.inject_fault(faulty.name, "Receive", "oversize", size=MAX_ANSWER_BYTES + 1)
    try:
        with pytest.raises(TransportError, match="larger than") as caught:
            t.run("echo x", Deadline.after(20))
    finally:
        t.close()
    assert type(caught.value) is TransportError and faulty.name in str(caught.value)
    figures.record("fault", fault="WinRM answer over the size cap", status="failed (named)")


def test_big_output_still_arrives_in_envelopes_within_the_cap(clean: WinrmTransport):
    # 3 MiB of output (the script types itself): the host splits it over Receives of at most
    # the MaxEnvelopeSize asked for, as Windows does.
    script = '@echo off\ntype "%~f0"\nexit /b 0\n' + f"rem {'y' * 1000}\n" * 3200
    result = clean.run(script, Deadline.after(60))
    assert result.exit_code == 0 and not result.truncated
    assert result.stdout == script.replace("\n", "\r\n")


# -- temporary scripts and logs never stay behind ------------------------------------------------


def test_a_connection_dropped_mid_step_leaves_no_script(winrm_fleet: WinrmFleet, faulty: Host):
    t = transport(faulty)
    t.connect(Deadline.after(20))
    # The script is written (first Command), then its run is dropped with the connection.
    winrm_fleet.inject_fault(faulty.name, "Command", "drop", after=1)
    try:
        with pytest.raises(UnreachableError):
            t.run("@echo off\necho secret-holding script\n", Deadline.after(20))
        assert winrm_fleet.scripts(faulty.name)  # it was on the host
        assert winrm_fleet.leftovers(faulty.name) == []
    finally:
        t.close()
    figures.record("fault", fault="WinRM connection dropped mid-step", status="unreachable")


def test_a_script_left_behind_is_removed_at_the_next_contact(winrm_fleet: WinrmFleet, faulty: Host):
    t = transport(faulty)
    t.connect(Deadline.after(20))
    # Every later command is dropped too: the script run, its deletion, the sweep at close.
    winrm_fleet.inject_fault(faulty.name, "Command", "drop", after=1, count=3)
    try:
        with pytest.raises(UnreachableError):
            t.run("@echo off\necho secret-holding script\n", Deadline.after(20))
    finally:
        t.close()
    assert len(winrm_fleet.leftovers(faulty.name)) == 1
    winrm_fleet.clear_faults(faulty.name)
    again = transport(faulty)  # the next run's connection
    again.connect(Deadline.after(20))
    try:
        assert again.run("echo next", Deadline.after(20)).stdout == "next\r\n"
    finally:
        again.close()
    assert winrm_fleet.leftovers(faulty.name) == []


def test_a_timed_out_script_is_removed_when_the_connection_closes(
    winrm_fleet: WinrmFleet, faulty: Host
):
    t = transport(faulty)
    t.connect(Deadline.after(20))
    try:
        result = t.run("@echo off\ntimeout /t 120 /nobreak >nul\n", Deadline.after(2))
        assert result.timed_out
    finally:
        t.close()  # no further step: closing cleans up
    assert winrm_fleet.leftovers(faulty.name) == []
