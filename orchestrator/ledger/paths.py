"""Where the ledger lives, and creating its directory and files readable by the owner only.

Where: ``--ledger``, else ``$KREMOVE_LEDGER``, else the default, which does not depend on the
current directory (cron, another shell and ``--resume`` find the same ledger): root's is
/var/lib/kremove/ledger.db, a user's $XDG_STATE_HOME/kremove/ledger.db (~/.local/state/...). A
./.kremove/ledger.db in the current directory (the default before issue 17) is still used, with
a note saying how to move it.

What is found there already is used only if nobody else could have written it (issue 15, L4): the
directory holds the ledger and the pinned host keys, so whoever can write it can swap either. The
rule is OpenSSH's for ~/.ssh/config: owned by the user or root, writable by nobody else, where a
group whose only member is the owner does not count (Debian's OpenSSH; per-user groups, umask 002).
"""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import InputError

ENV_VAR = "KREMOVE_LEDGER"
LEGACY_RELATIVE = Path(".kremove") / "ledger.db"  # the default until issue 17, in the cwd
SYSTEM_DEFAULT = Path("/var/lib/kremove/ledger.db")  # root's default
SIDE_FILES = ("-wal", "-shm")  # SQLite's WAL companions; they hold the same data as the database

# The umask is process-wide: serialise our changes to it so two opens cannot interleave.
_umask_lock = threading.Lock()


@dataclass(frozen=True)
class LedgerLocation:
    """The ledger a command uses, what chose it, and the note to show when it is the old one."""

    path: Path
    chosen_by: str  # "--ledger", "KREMOVE_LEDGER", "default" or "current directory"
    notice: str | None = None


def resolve_ledger_path(option: Path | None) -> Path:
    """``--ledger PATH`` if given, else $KREMOVE_LEDGER, else the default (``locate_ledger``)."""
    return locate_ledger(option).path


def locate_ledger(option: Path | None) -> LedgerLocation:
    """The ledger to use. Unnamed, an existing ./.kremove/ledger.db wins over the default, even
    when both exist: the runs an operator made from that directory stay where they were, and
    the note says how to move them."""
    if option is not None:
        return LedgerLocation(option.expanduser(), "--ledger")
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return LedgerLocation(Path(env).expanduser(), ENV_VAR)
    default = default_ledger_path()
    legacy = _legacy_ledger()
    if legacy is None or legacy == default:
        return LedgerLocation(default, "default")
    return LedgerLocation(legacy, "current directory", _legacy_notice(legacy, default))


def default_ledger_path() -> Path:
    """Root's /var/lib/kremove/ledger.db; a user's $XDG_STATE_HOME/kremove/ledger.db, where
    the XDG base directory spec puts state (a relative XDG_STATE_HOME is ignored, as it says)."""
    if os.geteuid() == 0:
        return SYSTEM_DEFAULT
    state = os.environ.get("XDG_STATE_HOME", "").strip()
    if state and Path(state).is_absolute():
        return Path(state) / "kremove" / "ledger.db"
    try:
        home = Path.home()
    except RuntimeError:
        raise InputError(
            "no home directory to keep the ledger in (~/.local/state/kremove); set HOME or"
            f" XDG_STATE_HOME, or name the ledger with --ledger or ${ENV_VAR}"
        ) from None
    return home / ".local" / "state" / "kremove" / "ledger.db"


def _legacy_ledger() -> Path | None:
    try:
        candidate = Path.cwd() / LEGACY_RELATIVE
    except OSError:  # the current directory was deleted
        return None
    return candidate if candidate.is_file() else None


def _legacy_notice(legacy: Path, default: Path) -> str:
    """One line: which ledger is used, and how to move it to the default or silence this."""
    said = f"using the ledger {legacy} found in the current directory, not the default {default}"
    if default.exists():
        move = f" (which exists too: use it with --ledger {shlex.quote(str(default))})"
    else:
        target = shlex.quote(str(default.parent))
        files = shlex.quote(str(legacy)) + "*"  # the database and its -wal and -shm
        pins = legacy.parent / "known_hosts"
        if pins.exists():
            files += " " + shlex.quote(str(pins))
        move = f"; to move it there, run: mkdir -p -m 700 {target} && mv {files} {target}/"
    return said + move + f"; name a ledger with --ledger or ${ENV_VAR} and this note goes"


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
    """Create ``directory`` (and missing parents) as 0700; an existing one must be private."""
    if directory.is_dir():
        check_private_dir(directory)
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


def check_private_dir(directory: Path) -> None:
    """Refuse a directory someone else owns or can write: one-line InputError saying what to do."""
    st = directory.stat()
    if st.st_uid not in (0, os.geteuid()):
        raise InputError(
            f"ledger directory {directory} belongs to {_user(st.st_uid)} (uid {st.st_uid}), not to"
            " you or root: they could replace the ledger or the host keys pinned there; run:"
            f" chown {_user(os.geteuid())} {shlex.quote(str(directory))}, or keep the ledger"
            f" elsewhere with --ledger or ${ENV_VAR}"
        )
    if not _others_can_write(st):
        return
    mode = stat.S_IMODE(st.st_mode)
    if mode & stat.S_ISVTX:  # /tmp and the like: shared on purpose, cannot be made private
        raise InputError(
            f"ledger directory {directory} is shared (mode {mode:04o}): anyone could replace the"
            " ledger or the host keys pinned there; keep it in a private directory with --ledger"
            f" or ${ENV_VAR} (e.g. ~/.kremove/ledger.db)"
        )
    raise InputError(
        f"ledger directory {directory} is writable by others (mode {mode:04o}): they could"
        f" replace the ledger or the host keys pinned there; run: chmod go-w"
        f" {shlex.quote(str(directory))}"
    )


def check_private_file(path: Path, what: str, risk: str, check: str) -> None:
    """Refuse an existing file someone else owns or can write, in one line: "{what} PATH is
    writable by others (mode M): {risk}; {check}, then run: chmod 600 PATH"."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    quoted = shlex.quote(str(path))
    if st.st_uid not in (0, os.geteuid()):
        raise InputError(
            f"{what} {path} belongs to {_user(st.st_uid)} (uid {st.st_uid}), not to you or root:"
            f" {risk}; {check}, then run: chown {_user(os.geteuid())} {quoted}"
        )
    if _others_can_write(st):
        raise InputError(
            f"{what} {path} is writable by others (mode {stat.S_IMODE(st.st_mode):04o}): {risk};"
            f" {check}, then run: chmod 600 {quoted}"
        )


def secure_ledger_files(path: Path) -> tuple[str, ...]:
    """Before an existing ledger is opened: refuse it (or a WAL companion) if someone else could
    have written it; make one others can read 0600, as it was created, and say so.

    Tightening rather than refusing: the ledger is kremove's own file and 0600 its documented
    mode, and a readable one is most likely a copy restored under a loose umask; its WAL files
    would inherit the mode and spread the same data."""
    notes: list[str] = []
    for candidate in (path, *(path.with_name(path.name + s) for s in SIDE_FILES)):
        check_private_file(
            candidate,
            "ledger file",
            "it could have been edited",
            "check it with kremove audit verify",
        )
        with suppress(FileNotFoundError):
            st = candidate.stat()
            mode = stat.S_IMODE(st.st_mode)
            if mode & 0o077 and st.st_uid == os.geteuid():
                candidate.chmod(0o600)
                notes.append(
                    f"ledger {candidate} was readable by others (mode {mode:04o}); it is now 0600"
                )
    return tuple(notes)


def _others_can_write(st: os.stat_result) -> bool:
    if st.st_mode & stat.S_IWOTH:
        return True
    return bool(st.st_mode & stat.S_IWGRP) and not _group_is_owner_alone(st)


def _group_is_owner_alone(st: os.stat_result) -> bool:
    """True when the file's group has exactly one member, its owner (as Debian's OpenSSH asks)."""
    try:
        group = grp.getgrgid(st.st_gid)
        owner = pwd.getpwuid(st.st_uid)
    except KeyError:
        return False
    if any(member != owner.pw_name for member in group.gr_mem):
        return False
    primary = [p.pw_uid for p in pwd.getpwall() if p.pw_gid == st.st_gid]
    return all(uid == st.st_uid for uid in primary) and bool(primary or group.gr_mem)


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
