"""--log-file and --syslog on real runs: the simulated SSH fleet and the WinRM test hosts.

Every line the log gets parses as JSON and agrees with the ledger host for host and step for
step; the syslog datagrams (a UDP socket on 127.0.0.1 and a Unix datagram socket the test
opens) carry the same objects; no password, passphrase or uninstall password reaches either;
and a log that cannot be written is one line before anything is sent to a host.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import kremove
from tests.fleet.fleet import Fleet
from tests.fleet.winrm_host.fleet import UNINSTALL_PASSWORD_ENV, WinrmFleet

# The unreachable host first: a wave with --batches 1,... and --max-fail 0 halts on it at once.
KINDS = {"unreachable": 1, "one_product": 2, "clean": 1, "uninstall_fails": 1, "password_only": 1}
UNINSTALL_ENV = "KREMOVE_TEST_UNINSTALL_PASSWORD"
UNINSTALL = "uninstall-Secret-4711"  # given to the Linux run too: never used there, never shown
MESSAGE = re.compile(r"<(\d+)>kremove\[\d+\]: (\{.*\})", re.DOTALL)


class Listener:
    """A datagram socket a syslog message can be sent to, read on a thread as they come."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.raw: list[bytes] = []
        sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.raw.append(self.sock.recv(65536))
            except TimeoutError:
                continue

    def messages(self) -> list[dict[str, Any]]:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        found = [MESSAGE.fullmatch(data.decode()) for data in self.raw]
        assert all(found), self.raw
        return [json.loads(m.group(2)) for m in found if m]


@pytest.fixture
def udp() -> Iterator[tuple[str, Listener]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield f"127.0.0.1:{sock.getsockname()[1]}", Listener(sock)


@pytest.fixture
def unix(tmp_path: Path) -> Iterator[tuple[str, Listener]]:
    path = tmp_path / "syslog.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    yield str(path), Listener(sock)


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory(KINDS)


def read_log(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines()
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    for e in events:
        assert list(e)[:4] == ["time", "schema", "run", "event"]
        assert e["schema"] == "kremove.events/1"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"])
    return events


def agrees_with_the_ledger(events: list[dict[str, Any]], record: dict[str, Any]) -> None:
    """One run's log against its ledger record: the run, each host's final status and reason,
    and each host's steps in order with their exit codes."""
    assert {e["run"] for e in events} == {record["id"]}
    assert events[0]["event"] == "run_started" and events[-1]["event"] == "run_finished"
    finals = {e["host"]: (e["status"], e["reason"]) for e in events if e["event"] == "host_done"}
    assert finals == {h["host"]: (h["status"], h["reason"]) for h in record["hosts"]}
    assert len([e for e in events if e["event"] == "host_done"]) == len(record["hosts"])
    for host in finals:
        exited = [
            (e["step"], e["exit_code"])
            for e in events
            if e["event"] == "step_exited" and e["host"] == host
        ]
        journaled = [(s["step_id"], s["exit_code"]) for s in record["steps"] if s["host"] == host]
        assert exited == journaled, host
        mine = [e["event"] for e in events if e.get("host") == host]
        assert mine[0] == "host_started" or mine == ["host_done"], (host, mine)
        assert mine[-1] == "host_done", (host, mine)
    assert events[-1]["counts"] == record["counts"]


def no_secret(secrets: list[str], *texts: str) -> None:
    for text in texts:
        leaked = [s[:4] for s in secrets if s and s in text]
        assert not leaked, leaked


def test_a_wave_logs_json_lines_and_syslog_datagrams_that_agree_with_the_ledger(
    fleet: Fleet, tmp_path: Path, udp: tuple[str, Listener]
) -> None:
    known = fleet.write_known_hosts(tmp_path / "known_hosts")
    inventory = fleet.write_inventory(tmp_path / "fleet.yml", known_hosts=known)
    log = tmp_path / "events.jsonl"
    address, listener = udp
    done = kremove(
        "run", "-i", str(inventory), "--yes", "--json", "--batches", "1,100%",
        "--log-file", str(log), "--syslog-address", address,
        "--uninstall-password-env", UNINSTALL_ENV,
        home=tmp_path, env={**fleet.env, UNINSTALL_ENV: UNINSTALL},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # a failed and an unreachable host
    doc = json.loads(done.stdout)
    record = json.loads(kremove("runs", "show", doc["run"], "--json", home=tmp_path).stdout)
    events = read_log(log)
    agrees_with_the_ledger(events, record)
    assert [e["event"] for e in events].count("batch_started") == 2
    assert events[-1]["exit_code"] == done.returncode and events[-1]["status"] == "completed"
    started = events[0]
    assert (started["kind"], started["hosts"], started["pending"]) == ("run", 6, 6)
    assert started["settings"]["batches"] == "1,100%"
    removed = [e for e in events if e["event"] == "host_done" and e["status"] == "removed"]
    assert sorted(e["host"] for e in removed) == sorted(
        h.name for h in fleet.hosts if h.kind in ("one_product", "password_only")
    )
    assert all(e["products"] == ["kesl 12.1.0-1297"] for e in removed)
    assert listener.messages() == events  # the same objects, one datagram each
    no_secret([*fleet.secrets, UNINSTALL], log.read_text(), done.stdout, done.stderr)
    assert "dpkg --purge" not in log.read_text()  # step ids, never command text


def test_a_halted_wave_logs_why_and_every_host_it_never_started(
    fleet: Fleet, tmp_path: Path
) -> None:
    known = fleet.write_known_hosts(tmp_path / "known_hosts")
    inventory = fleet.write_inventory(tmp_path / "fleet.yml", known_hosts=known)
    unreachable = fleet.by_kind("unreachable")[0].name
    others = [h.name for h in fleet.hosts if h.name != unreachable]
    log = tmp_path / "events.jsonl"
    done = kremove(
        "run", "-i", str(inventory), "--limit", ",".join([unreachable, *others[:2]]), "--yes",
        "--json", "--forks", "1", "--max-fail", "0", "--batches", "1,100%",
        "--log-file", str(log), home=tmp_path, env=fleet.env,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr  # halted
    doc = json.loads(done.stdout)
    record = json.loads(kremove("runs", "show", doc["run"], "--json", home=tmp_path).stdout)
    events = read_log(log)
    agrees_with_the_ledger(events, record)
    halted = [e for e in events if e["event"] == "halted"]
    assert len(halted) == 1 and halted[0]["spent_by"] == [unreachable] and halted[0]["budget"] == 0
    closed = [e for e in events if e["event"] == "host_done" and not e["worked"]]
    assert {e["host"] for e in closed} == set(others[:2]) and {e["status"] for e in closed} == {
        "skipped"
    }
    assert (events[-1]["status"], events[-1]["stop"], events[-1]["exit_code"]) == (
        "halted", "halted", 3
    )  # fmt: skip


def test_protected_windows_hosts_log_no_uninstall_password(
    winrm_fleet_factory: Callable[..., WinrmFleet], tmp_path: Path, unix: tuple[str, Listener]
) -> None:
    windows = winrm_fleet_factory({"protected_kes": 1, "kes_and_agent": 1, "clean": 1})
    windows.write_inventory(tmp_path / "windows.yml")
    log = tmp_path / "events.jsonl"
    address, listener = unix
    done = kremove(
        "run", "-i", str(tmp_path / "windows.yml"), "--yes", "--json",
        "--uninstall-password-env", UNINSTALL_PASSWORD_ENV,
        "--log-file", str(log), "--syslog", "--syslog-address", address,
        home=tmp_path, env=windows.env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert sorted(h["status"] for h in doc["hosts"]) == ["clean", "removed", "removed"]
    record = json.loads(kremove("runs", "show", doc["run"], "--json", home=tmp_path).stdout)
    events = read_log(log)
    agrees_with_the_ledger(events, record)
    messages = listener.messages()
    assert messages == events
    no_secret(windows.secrets, log.read_text(), json.dumps(messages), done.stdout, done.stderr)


@pytest.mark.parametrize("target", ["missing-dir", "directory", "syslog-socket"])
def test_a_log_that_cannot_be_written_is_one_line_before_anything_is_sent(
    tmp_path: Path, target: str
) -> None:
    """A real listener stands in for the host: nobody may connect to it."""
    args = {
        "missing-dir": ["--log-file", str(tmp_path / "no" / "such" / "dir" / "events.jsonl")],
        "directory": ["--log-file", str(tmp_path)],
        "syslog-socket": ["--syslog-address", str(tmp_path / "nobody-listens.sock")],
    }[target]
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(
            "hosts:\n  web1:\n    address: 127.0.0.1\n"
            f"    port: {listener.getsockname()[1]}\n    user: ops\n"
        )
        done = kremove("run", "-i", str(inventory), "--yes", *args, cwd=tmp_path)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kremove: error: --"), done.stderr
    assert ("cannot append to it" if target != "syslog-socket" else "cannot reach") in lines[0]
    assert not (tmp_path / ".kremove").exists()  # no run was recorded
