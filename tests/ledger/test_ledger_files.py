"""The ledger file on disk: where it is, who may read it, which versions open, which refuse."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import InputError, LedgerError
from orchestrator.ledger import ENV_VAR, SCHEMA_VERSION, Ledger, resolve_ledger_path
from orchestrator.ledger.paths import default_ledger_path
from orchestrator.ledger.store import APPLICATION_ID
from tests.cli_runner import kremove

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_option_beats_environment_beats_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert resolve_ledger_path(None) == default_ledger_path()
    monkeypatch.setenv(ENV_VAR, "")
    assert resolve_ledger_path(None) == default_ledger_path()
    monkeypatch.setenv(ENV_VAR, "/srv/kremove/env.db")
    assert resolve_ledger_path(None) == Path("/srv/kremove/env.db")
    assert resolve_ledger_path(Path("cli.db")) == Path("cli.db")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_ledger_path(Path("~/x.db")) == tmp_path / "x.db"


def test_created_private_even_under_an_open_umask(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ledger.db"
    old = os.umask(0)
    try:
        ledger = Ledger.open(path)
    finally:
        os.umask(old)
    with ledger:
        ledger.start_run(
            kind="detect",
            operator="o",
            command_line="c",
            inventory_digest="d",
            playbook_version="p",
            hosts=["h"],
        )
        wal = path.with_name("ledger.db-wal")
        assert wal.exists()  # WAL files live while a connection is open
        assert mode(wal) == 0o600
        assert mode(path.with_name("ledger.db-shm")) == 0o600
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert mode(path.parent.parent) == 0o700


def test_existing_directory_is_left_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    Ledger.open(tmp_path / "ledger.db").close()
    assert mode(tmp_path) == 0o755


def test_schema_version_and_wal_are_recorded(ledger: Ledger, ledger_path: Path) -> None:
    conn = sqlite3.connect(ledger_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        meta = dict(conn.execute("SELECT key, value FROM meta"))
    finally:
        conn.close()
    assert meta["schema_version"] == str(SCHEMA_VERSION)
    assert meta["created_by"].startswith("kremove ")


def test_reopening_keeps_the_data(ledger_path: Path) -> None:
    with Ledger.open(ledger_path) as first:
        run_id = first.start_run(
            kind="plan",
            operator="o",
            command_line="c",
            inventory_digest="d",
            playbook_version="p",
            hosts=["h"],
        )
    with Ledger.open(ledger_path) as second:
        assert second.get_run(run_id).kind == "plan"


def test_newer_schema_is_refused(ledger_path: Path) -> None:
    Ledger.open(ledger_path).close()
    conn = sqlite3.connect(ledger_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 98}")
    conn.close()
    with pytest.raises(LedgerError) as caught:
        Ledger.open(ledger_path)
    assert str(caught.value) == (
        f"ledger {ledger_path} has schema version {SCHEMA_VERSION + 98}, this kremove knows up to"
        f" {SCHEMA_VERSION}; upgrade kremove"
    )


def assert_one_line_naming(error: LedgerError, path: Path) -> None:
    text = str(error)
    assert "\n" not in text
    assert str(path) in text
    assert "--ledger" in text or "upgrade" in text  # says what to do


def test_garbage_file_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(b"this is not a database\n" * 500)
    with pytest.raises(LedgerError, match="is not a SQLite database") as caught:
        Ledger.open(path)
    assert_one_line_naming(caught.value, path)
    assert not isinstance(caught.value, sqlite3.Error)


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE cookies (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(
        LedgerError, match="is a SQLite database but not a kremove ledger"
    ) as caught:
        Ledger.open(path)
    assert_one_line_naming(caught.value, path)


def test_unwritable_location_parent_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    path = blocker / "ledger.db"
    with pytest.raises(LedgerError, match="cannot be created") as caught:
        Ledger.open(path)
    assert_one_line_naming(caught.value, path)


def test_path_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="cannot be opened") as caught:
        Ledger.open(tmp_path)
    assert_one_line_naming(caught.value, tmp_path)


def open_as_unprivileged_user(path: Path) -> str:
    """Open the ledger in a child process that permission bits apply to: if we are root, the child
    imports everything first (the interpreter lives under /root) and then becomes nobody."""
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from orchestrator.errors import LedgerError\n"
        "from orchestrator.ledger import Ledger\n"
        "if os.geteuid() == 0:\n"
        f"    os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})\n"
        "try:\n"
        "    Ledger.open(Path(sys.argv[1])).close()\n"
        "except LedgerError as exc:\n"
        "    print(f'LedgerError: {exc}')\n"
        "else:\n"
        "    print('opened')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.stderr == ""  # no traceback
    return done.stdout.strip()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the unprivileged child can reach (pytest's tmp_path is private to us)."""
    top = Path(tempfile.mkdtemp(prefix="kremove-ledger-test-"))
    top.chmod(0o755)
    try:
        yield top
    finally:
        for sub in top.rglob("*"):
            if sub.is_dir():
                sub.chmod(0o755)
        shutil.rmtree(top)


def test_unwritable_location_read_only_directory(shared_dir: Path) -> None:
    locked = shared_dir / "locked"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)
    for path in (locked / "ledger.db", locked / "deeper" / "ledger.db"):
        assert open_as_unprivileged_user(path) == (
            f"LedgerError: ledger {path} cannot be created (Permission denied);"
            f" choose a writable location with --ledger or ${ENV_VAR}"
        )


def test_read_only_ledger_file(shared_dir: Path) -> None:
    path = shared_dir / "ledger.db"
    Ledger.open(path).close()
    path.chmod(0o444)
    message = open_as_unprivileged_user(path)
    assert message.startswith(f"LedgerError: ledger {path} is read-only (")
    assert message.endswith(f"or choose another location with --ledger or ${ENV_VAR}")


# -- issue 15 L4: a ledger directory or file someone else can write is not used as found ----------


def root_group_is_roots_alone() -> bool:
    """Debian's OpenSSH rule lets a group-writable file pass when its group has only the owner."""
    others = [p for p in pwd.getpwall() if p.pw_gid == 0 and p.pw_uid != 0]
    return os.geteuid() == 0 and not others and grp.getgrgid(0).gr_mem in ([], ["root"])


@pytest.mark.parametrize(
    ("mode", "group"),
    [(0o777, 0), (0o757, 0), (0o770, NOBODY)],
    ids=["0777", "0757", "0770-nogroup"],
)
def test_a_ledger_directory_others_can_write_is_refused(
    tmp_path: Path, mode: int, group: int
) -> None:
    directory = tmp_path / "state"
    directory.mkdir()
    os.chown(directory, os.geteuid(), group)
    directory.chmod(mode)
    with pytest.raises(InputError) as caught:
        Ledger.open(directory / "ledger.db")
    assert str(caught.value) == (
        f"ledger directory {directory} is writable by others (mode {mode:04o}): they could"
        " replace the ledger or the host keys pinned there; run: chmod go-w"
        f" {directory}"
    )
    assert list(directory.iterdir()) == []  # nothing was created in it


def test_a_shared_directory_like_tmp_is_refused_with_a_way_out(tmp_path: Path) -> None:
    shared = tmp_path / "tmp"
    shared.mkdir()
    Ledger.open(shared / "ledger.db").close()
    shared.chmod(0o1777)
    done = kremove("runs", "list", "--ledger", str(shared / "ledger.db"), timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"kremove: error: ledger directory {shared} is shared (mode 1777): anyone could replace"
        " the ledger or the host keys pinned there; keep it in a private directory with --ledger"
        " or $KREMOVE_LEDGER (e.g. ~/.kremove/ledger.db)"
    )


def test_a_ledger_directory_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a directory to another user")
    directory = tmp_path / "state"
    directory.mkdir(mode=0o700)
    os.chown(directory, NOBODY, NOBODY)
    with pytest.raises(InputError) as caught:
        Ledger.open(directory / "ledger.db")
    assert str(caught.value) == (
        f"ledger directory {directory} belongs to nobody (uid {NOBODY}), not to you or root:"
        " they could replace the ledger or the host keys pinned there; run: chown root"
        f" {directory}, or keep the ledger elsewhere with --ledger or $KREMOVE_LEDGER"
    )


def test_a_group_of_the_owner_alone_may_write_as_openssh_on_debian_allows(tmp_path: Path) -> None:
    if not root_group_is_roots_alone():
        pytest.skip("needs root, and a root group with no other member")
    directory = tmp_path / "state"
    directory.mkdir()
    os.chown(directory, 0, 0)
    directory.chmod(0o770)  # what umask 002 with per-user groups gives
    Ledger.open(directory / "ledger.db").close()


@pytest.mark.parametrize(
    ("name", "mode", "group"),
    [("ledger.db", 0o666, 0), ("ledger.db", 0o660, NOBODY), ("ledger.db-wal", 0o606, 0)],
    ids=["ledger-0666", "ledger-0660-nogroup", "wal-0606"],
)
def test_a_ledger_file_others_can_write_is_refused(
    tmp_path: Path, name: str, mode: int, group: int
) -> None:
    path = tmp_path / "ledger.db"
    Ledger.open(path).close()
    loose = tmp_path / name
    loose.touch()
    os.chown(loose, os.geteuid(), group)
    loose.chmod(mode)
    with pytest.raises(InputError) as caught:
        Ledger.open(path)
    assert str(caught.value) == (
        f"ledger file {loose} is writable by others (mode {mode:04o}): it could have been"
        f" edited; check it with kremove audit verify, then run: chmod 600 {loose}"
    )


def test_a_ledger_others_can_read_is_made_private_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "my ledger.db"
    Ledger.open(path).close()
    path.chmod(0o644)
    with Ledger.open(path) as ledger:
        assert mode(path) == 0o600
        assert ledger.notes == (
            f"ledger {path} was readable by others (mode 0644); it is now 0600",
        )
        ledger.start_run(
            kind="detect",
            operator="o",
            command_line="c",
            inventory_digest="d",
            playbook_version="p",
            hosts=["h"],
        )
        assert mode(path.with_name("my ledger.db-wal")) == 0o600
    with Ledger.open(path) as again:
        assert again.notes == ()
