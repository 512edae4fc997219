"""The local transport: commands run on the controller itself through /bin/sh."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from orchestrator.errors import TransportError
from orchestrator.transports.base import (
    BoundedOutput,
    CommandResult,
    Deadline,
    Transport,
    become_command,
)

if TYPE_CHECKING:
    from orchestrator.inventory.model import Host
    from orchestrator.transports.connector import PoolSetup

# After SIGTERM to the process group, how long the group gets before SIGKILL.
KILL_GRACE_SECONDS = 1.0
# After the main process is gone, how long we wait for pipes held open by stray descendants.
DRAIN_GRACE_SECONDS = 0.5


class LocalPool:
    """Local commands share nothing: the pool only makes transports."""

    def check(self, host: Host) -> None:
        pass

    def ready(self, hosts: Sequence[Host]) -> None:
        pass

    def transport(self, host: Host) -> Transport:
        return LocalTransport(host)

    def close(self) -> None:
        pass


def open_pool(setup: PoolSetup) -> LocalPool:
    return LocalPool()


class LocalTransport(Transport):
    name = "local"

    def connect(self, deadline: Deadline) -> None:
        if not os.path.exists("/bin/sh"):
            raise TransportError(f"host {self.host.name!r}: /bin/sh is missing on the controller")

    def run(
        self, command: str, deadline: Deadline, stdin: bytes | None = None, *, become: bool = False
    ) -> CommandResult:
        if become and self.host.become.enabled and os.geteuid() != 0:
            if self.host.become.password is not None:
                raise TransportError(
                    f"host {self.host.name!r}: become with a password is not supported on the "
                    "local transport; run kremove as root or allow sudo -n"
                )
            command = become_command(command, self.host.become.user)
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", command],
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group, so a deadline kills all of it
            )
        except OSError as exc:
            raise TransportError(f"host {self.host.name!r}: cannot start /bin/sh: {exc}") from exc
        if stdin is not None and proc.stdin is not None:
            try:
                proc.stdin.write(stdin)
                proc.stdin.close()
            except BrokenPipeError:
                pass
        out, err, timed_out = _drain(proc, deadline)
        exit_code = None if timed_out else proc.returncode
        return CommandResult(
            exit_code=exit_code,
            stdout=out.text(),
            stderr=err.text(),
            duration=time.monotonic() - started,
            timed_out=timed_out,
            truncated=bool(out.dropped or err.dropped),
        )

    def close(self) -> None:
        pass


def _drain(
    proc: subprocess.Popen[bytes], deadline: Deadline
) -> tuple[BoundedOutput, BoundedOutput, bool]:
    """Read stdout and stderr together until EOF or the deadline; kill the group on expiry."""
    assert proc.stdout is not None and proc.stderr is not None
    out, err = BoundedOutput(), BoundedOutput()
    buffers = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    timed_out = False
    # Once set, we are only collecting what is left in the pipes (the command ended or was killed).
    leftovers: Deadline | None = None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        sel.register(proc.stderr, selectors.EVENT_READ)
        while sel.get_map():
            if leftovers is None:
                if proc.poll() is not None:
                    leftovers = deadline.sooner(DRAIN_GRACE_SECONDS)
                elif deadline.expired:
                    timed_out = True
                    _kill_group(proc)
                    leftovers = Deadline.after(DRAIN_GRACE_SECONDS)
            elif leftovers.expired:
                _kill_group(proc)  # stray descendants still hold the pipes open
                break
            bound = leftovers or deadline
            for key, _ in sel.select(timeout=min(bound.remaining(), 0.1)):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    buffers[key.fd].feed(chunk)
                else:
                    sel.unregister(key.fileobj)
    proc.stdout.close()
    proc.stderr.close()
    if not timed_out:
        try:  # the command may have closed its pipes and still be running
            proc.wait(timeout=deadline.remaining())
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
    proc.wait()
    return out, err, timed_out


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group, then SIGKILL it if anything is left after a grace period."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_GRACE_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
