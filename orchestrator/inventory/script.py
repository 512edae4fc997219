"""Executable inventories (Ansible's script plugin): run with ``--list``, and with ``--host H``
for each host when the list has no ``_meta.hostvars``.

Running a file named with -i is running code: kremove runs it only when nobody but its owner (the
user running kremove, or root) can change it or the directory it is in, as ssh refuses a loose
key. It runs in its own directory, with stdin closed, under one deadline for all its calls.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.deadline import Deadline
from orchestrator.errors import InventoryError
from orchestrator.inventory import json_inventory, programs
from orchestrator.inventory.raw import Origin, RawInventory
from orchestrator.inventory.settings import Fail

DEADLINE_SECONDS = 30.0
HOST_CALLS_AT_ONCE = 4
SHEBANG = b"#!"
ELF = b"\x7fELF"


def is_script(path: Path) -> bool:
    """Whether ``path`` is an inventory script: an executable file that starts with ``#!`` or is
    an ELF program. Such a file without an execute bit is an error rather than a static file read
    wrong; an executable text file without ``#!`` is static (a file system may mark every file
    executable, and Ansible cannot run it either)."""
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):  # a pipe (-i <(command)) must not lose its first bytes here
            return False
        with path.open("rb") as file:
            head = file.read(4)
    except OSError:
        return False  # the static loader says why it cannot be read
    if not head.startswith((SHEBANG, ELF)):
        return False
    if not mode & 0o111:
        raise InventoryError(
            "starts like an inventory script (#! or a program) but is not executable; "
            f"chmod u+x {path} to run it as one, or give a static inventory",
            file=path,
        )
    return True


def load(path: Path) -> RawInventory:
    """Run the script and read what it prints, as Ansible's script plugin reads it."""
    programs.check_trusted(path, "inventory script")
    allowed = programs.timeout(DEADLINE_SECONDS)
    deadline = Deadline.after(allowed)
    listing = f"{path} --list"
    done = _call(path, ["--list"], deadline, allowed)
    with _telling(done.stderr):
        doc = json_inventory.decode(done.stdout, _failer(listing, "what it printed "))
        raw = json_inventory.parse(doc, listing)
        asked = json_inventory.host_vars_of(doc, listing) is None
    if asked:
        _ask_each_host(path, raw, deadline, allowed)
    return raw


def _ask_each_host(path: Path, raw: RawInventory, deadline: Deadline, allowed: float) -> None:
    """``--host H`` for every host (a few at a time), as Ansible does when ``_meta`` is absent."""

    def ask(name: str) -> Any:
        done = _call(path, ["--host", name], deadline, allowed)
        with _telling(done.stderr):
            if not done.stdout.strip():
                return {}
            return json_inventory.decode(
                done.stdout, _failer(f"{path} --host {name}", "what it printed ")
            )

    names = list(raw.hosts)
    with ThreadPoolExecutor(max_workers=HOST_CALLS_AT_ONCE) as pool:
        answers = list(pool.map(ask, names))
    for name, values in zip(names, answers, strict=True):
        json_inventory.add_host_vars(raw, name, values, Origin(f"{path} --host {name}"))


def _call(path: Path, args: list[str], deadline: Deadline, allowed: float) -> programs.Finished:
    """The script's run with ``args``; a failure to run or a non-zero exit is an error."""
    fail = _failer(f"{path} {' '.join(args)}", "inventory script ")
    done = programs.run(
        [str(path.resolve()), *args],
        cwd=path.resolve().parent,
        deadline=deadline,
        allowed=allowed,
        fail=fail,
    )
    if done.exit_code != 0:
        ended = (
            f"was killed by signal {-done.exit_code}"
            if done.exit_code < 0
            else f"exited with status {done.exit_code}"
        )
        raise fail(ended + programs.stderr_said(done.stderr))
    return done


@contextmanager
def _telling(stderr: bytes) -> Iterator[None]:
    """An error about what the script printed also tells what it said on stderr."""
    try:
        yield
    except InventoryError as exc:
        said = programs.stderr_said(stderr)
        if not said:
            raise
        raise InventoryError(str(exc) + said) from None


def _failer(label: str, subject: str) -> Fail:
    def fail(reason: str) -> InventoryError:
        return InventoryError(subject + reason, file=label)

    return fail
