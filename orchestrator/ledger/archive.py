"""Archive-and-prune (`kremove runs prune`), and the private files kremove writes for a user.

Old finished runs are appended to a JSON Lines archive, on disk before their rows are deleted;
the journal keeps an entry for each run with the archive line's SHA-256, so `audit verify` still
passes and the archive can be matched against the chain later.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import InputError
from orchestrator.ledger.records import RUNNING, RunSummary

if TYPE_CHECKING:
    from orchestrator.ledger import Ledger


def prunable(book: Ledger, before: str) -> list[RunSummary]:
    """Finished runs started before a date (YYYY-MM-DD) or a run id, newest first."""
    runs = [r for r in book.list_runs(10**9) if r.started < before or r.id < before]
    return [r for r in runs if r.status != RUNNING]


def archive_and_prune(book: Ledger, runs: list[RunSummary], archive: Path) -> None:
    """Oldest first: append each run to the archive (fsynced), then delete it from the ledger with
    the digest of what was written. A run is never deleted before its archive line is on disk."""
    for summary in reversed(runs):
        detail = book.get_run(summary.id).to_dict()
        line = json.dumps({"type": "run", **detail}, default=str) + "\n"
        digest = hashlib.sha256(line.encode()).hexdigest()
        write_private(archive, f"--archive {archive}", line, append=True)
        book.prune_run(summary.id, digest)


def write_private(path: Path, option: str, text: str, *, append: bool = False) -> None:
    """Write a file for the user (a report, an archive of runs): they hold host names, findings
    and commands, so it is readable by its owner only whatever the umask — created 0600, and an
    existing one made 0600 before anything is written to it. On disk when this returns."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else 0), 0o600)
    except OSError as exc:
        raise InputError(f"{option}: cannot write: {exc.strerror}") from None
    with open(fd, "a" if append else "w", encoding="utf-8") as fh:
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)  # not /dev/stdout or /dev/null
            if regular:
                os.fchmod(fd, 0o600)
        except OSError as exc:
            raise InputError(
                f"{option}: cannot make it readable by its owner only: {exc.strerror}; "
                "give a new file"
            ) from None
        try:
            if regular and not append:
                os.ftruncate(fd, 0)  # only now: a file that cannot be made private is kept
            fh.write(text)
            fh.flush()
            if regular:
                os.fsync(fd)
        except OSError as exc:
            raise InputError(f"{option}: cannot write: {exc.strerror}") from None
