"""A fake fleet for in-process engine tests: scripted answers per host and command, no network.

``FakeFleet`` is a Connector whose hosts are ``FakeHost`` scripts; the engine drives them through
``FakeTransport`` exactly as it drives SSH or WinRM hosts (connect, run under a deadline, close),
so the wave logic, the ledger and every host status are the real ones, in milliseconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from orchestrator.errors import UnreachableError
from orchestrator.inventory.model import Host
from orchestrator.transports.base import CommandResult, Deadline, Transport
from orchestrator.transports.connector import Connector

# What playbooks/linux/detect.sh.j2 prints: dpkg present, and kesl installed or not.
DETECT = "dpkg-query"  # a word of the detection (and verification) command
NOTHING = "manager\tdpkg\n"
KESL = NOTHING + "dpkg\tkesl\t12.1.0-1297\tamd64\tinstall ok installed\n"
# What playbooks/linux/privilege.sh.j2 prints: a word of the probe, and a root login's answer.
PROBE = "sudo -n -l"
ROOT = "login\troot\t0\n"
WAIT = 5.0  # the longest a scripted host waits for a test's signal: a broken test fails, not hangs


@dataclass(frozen=True)
class Reply:
    """One scripted answer to a command."""

    stdout: str = ""
    exit_code: int | None = 0
    stderr: str = ""


@dataclass
class FakeHost:
    """One host's script.

    Each command is answered by the first rule whose needle it contains (a rule with the needle
    "" answers anything); a rule's replies are given in turn, the last one repeating. A command no
    rule answers exits 0 silently, except the privilege probe: a fake host's login is root unless
    a rule says otherwise. ``on_connect`` is called as the engine connects, then the host
    waits for ``hold`` (if any): a host kept in flight for as long as a test needs.
    """

    rules: list[tuple[str, list[Reply]]] = field(default_factory=list)
    unreachable: bool = False
    on_connect: Callable[[], None] | None = None
    hold: threading.Event | None = None
    commands: list[str] = field(default_factory=list)  # every command received, in order
    _used: dict[int, int] = field(default_factory=dict)

    def answer(self, command: str) -> Reply:
        self.commands.append(command)
        for index, (needle, replies) in enumerate(self.rules):
            if needle in command:
                turn = self._used.get(index, 0)
                self._used[index] = turn + 1
                return replies[min(turn, len(replies) - 1)]
        return Reply(ROOT) if PROBE in command else Reply()


def installed() -> FakeHost:
    """kesl is installed; the removal works, so verification finds nothing."""
    return FakeHost([(DETECT, [Reply(KESL), Reply(NOTHING)])])


def clean() -> FakeHost:
    return FakeHost([(DETECT, [Reply(NOTHING)])])


def failing() -> FakeHost:
    """kesl is installed and its purge fails: the host ends ``failed``."""
    return FakeHost([(DETECT, [Reply(KESL)]), ("dpkg --purge", [Reply("", 1, "dpkg: error")])])


def unreachable() -> FakeHost:
    return FakeHost(unreachable=True)


class FakeTransport(Transport):
    name = "fake"

    def __init__(self, host: Host, script: FakeHost, fleet: FakeFleet) -> None:
        super().__init__(host)
        self.script = script
        self.fleet = fleet

    def connect(self, deadline: Deadline) -> None:
        self.fleet.connected(self.host.name)
        if self.script.on_connect is not None:
            self.script.on_connect()
        if self.script.hold is not None:
            self.script.hold.wait(WAIT)
        if self.script.unreachable:
            raise UnreachableError(f"host {self.host.name!r}: no route to host (scripted)")

    def run(
        self, command: str, deadline: Deadline, stdin: bytes | None = None, *, become: bool = False
    ) -> CommandResult:
        reply = self.script.answer(command)
        return CommandResult(reply.exit_code, reply.stdout, reply.stderr, 0.0)

    def close(self) -> None:
        pass


class FakeFleet(Connector):
    """A Connector that reaches every host through its script; hosts connect in ``order``."""

    def __init__(self, scripts: Mapping[str, FakeHost]) -> None:
        super().__init__()
        self.scripts = dict(scripts)
        self.order: list[str] = []
        self._lock = threading.Lock()

    def connected(self, name: str) -> None:
        with self._lock:
            self.order.append(name)

    def for_host(self, host: Host) -> Transport:
        self.check(host)
        return FakeTransport(host, self.scripts[host.name], self)

    def hosts(self) -> list[Host]:
        """Inventory entries for the scripts, in their order (local ones: the Connector checks)."""
        return [
            Host(name=name, address="fake", transport="local", port=0, platform="linux")
            for name in self.scripts
        ]
