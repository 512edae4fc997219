"""Where the ledger lives, and creating its directory and files readable by the owner only."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ENV_VAR = "KREMOVE_LEDGER"
DEFAULT_RELATIVE = Path(".kremove") / "ledger.db"
SIDE_FILES = ("-wal", "-shm")  # SQLite's WAL companions; they hold the same data as the database

# The umask is process-wide: serialise our changes to it so two opens cannot interleave.
_umask_lock = threading.Lock()


def resolve_ledger_path(option: Path | None) -> Path:
    """``--ledger PATH`` if given, else $KREMOVE_LEDGER, else ./.kremove/ledger.db."""
    if option is not None:
        return option.expanduser()
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    return Path.cwd() / DEFAULT_RELATIVE


@contextmanager
def private_umask() -> Iterator[None]:
    """Files and directories created inside get no group or other permissions."""
    with _umask_lock:
        old = os.umask(0o077)
        try:
            yield
        finally:
            os.umask(old)


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` (and missing parents) as 0700; an existing one is left as it is."""
    if directory.is_dir():
        return
    with private_umask():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists. True if this call created it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    os.close(fd)
    os.chmod(path, 0o600)
    return True


def restrict_side_files(path: Path) -> None:
    """chmod 0600 the database and whichever WAL companions exist (SQLite copies the db's mode)."""
    for candidate in (path, *(path.with_name(path.name + s) for s in SIDE_FILES)):
        with suppress(FileNotFoundError):
            candidate.chmod(0o600)
