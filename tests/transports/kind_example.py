"""A transport kind that exists only for tests/transports/test_kinds.py: one module, no more."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.inventory.model import Host
from orchestrator.transports.base import CommandResult, Deadline, Transport
from orchestrator.transports.connector import Note, PoolSetup

opened: list[PoolSetup] = []


class EchoTransport(Transport):
    name = "echo"

    def __init__(self, host: Host, pool: EchoPool) -> None:
        super().__init__(host)
        self.pool = pool

    def connect(self, deadline: Deadline) -> None:
        self.pool.setup.notes(Note(self.host.name, "echo_connected", {"port": self.host.port}))

    def run(
        self, command: str, deadline: Deadline, stdin: bytes | None = None, *, become: bool = False
    ) -> CommandResult:
        return CommandResult(0, command, "", 0.0)

    def close(self) -> None:
        pass


class EchoPool:
    def __init__(self, setup: PoolSetup) -> None:
        self.setup = setup
        self.ready_for: list[str] = []

    def check(self, host: Host) -> None:
        pass

    def ready(self, hosts: Sequence[Host]) -> None:
        self.ready_for = [h.name for h in hosts if h.transport == "echo"]

    def transport(self, host: Host) -> Transport:
        return EchoTransport(host, self)

    def close(self) -> None:
        pass


def open_pool(setup: PoolSetup) -> EchoPool:
    opened.append(setup)
    return EchoPool(setup)
