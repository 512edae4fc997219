"""Where the ledger is when nothing names it (issue 17): not the current directory, but root's
/var/lib/kremove or a user's XDG state directory; an old ./.kremove/ledger.db still works, with a
note; reading commands never create one, and audit verify without one is an input error.

The real default is never written: a user's is tried as nobody with a HOME in /tmp, root's in a
private mount namespace whose /var/lib is a tmpfs.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import InputError
from orchestrator.ledger import paths
from orchestrator.ledger.paths import SYSTEM_DEFAULT, default_ledger_path, locate_ledger
from tests.cli_runner import KREMOVE, cli_env, kremove

NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """In-process: an ordinary user (uid 1000) whose home is tmp_path, in an empty directory."""
    monkeypatch.setattr(paths.os, "geteuid", lambda: 1000)
    monkeypatch.delenv(paths.ENV_VAR, raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path


def test_root_keeps_it_in_var_lib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(paths.os, "geteuid", lambda: 0)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # a user's setting, not root's
    monkeypatch.delenv(paths.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_ledger_path() == SYSTEM_DEFAULT == Path("/var/lib/kremove/ledger.db")
    assert locate_ledger(None) == paths.LedgerLocation(SYSTEM_DEFAULT, "default")


def test_a_user_keeps_it_in_the_xdg_state_directory(user: Path, monkeypatch: pytest.MonkeyPatch):
    assert default_ledger_path() == user / "home" / ".local" / "state" / "kremove" / "ledger.db"
    monkeypatch.setenv("XDG_STATE_HOME", str(user / "state"))
    assert default_ledger_path() == user / "state" / "kremove" / "ledger.db"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")  # the spec says: ignore it
    assert default_ledger_path() == user / "home" / ".local" / "state" / "kremove" / "ledger.db"


def test_no_home_is_one_line_saying_what_to_set(user: Path, monkeypatch: pytest.MonkeyPatch):
    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(paths.Path, "home", staticmethod(no_home))
    with pytest.raises(InputError, match="set HOME or XDG_STATE_HOME") as caught:
        default_ledger_path()
    assert "\n" not in str(caught.value) and "--ledger" in str(caught.value)


def test_the_option_and_the_variable_beat_everything(user: Path, monkeypatch: pytest.MonkeyPatch):
    _legacy(Path.cwd())
    assert locate_ledger(Path("x.db")) == paths.LedgerLocation(Path("x.db"), "--ledger")
    monkeypatch.setenv(paths.ENV_VAR, str(user / "env.db"))
    assert locate_ledger(None) == paths.LedgerLocation(user / "env.db", "KREMOVE_LEDGER")


def _legacy(directory: Path, pins: bool = False) -> Path:
    legacy = directory / ".kremove" / "ledger.db"
    legacy.parent.mkdir(mode=0o700)
    legacy.write_bytes(b"")
    if pins:
        (legacy.parent / "known_hosts").write_text("")
    return legacy


def test_an_old_ledger_in_the_current_directory_wins_with_a_note(user: Path) -> None:
    legacy = _legacy(Path.cwd(), pins=True)
    default = default_ledger_path()
    where = locate_ledger(None)
    assert (where.path, where.chosen_by) == (legacy, "current directory")
    assert where.notice is not None and "\n" not in where.notice
    assert where.notice.startswith(f"using the ledger {legacy} found in the current directory")
    assert (
        f"mkdir -p -m 700 {default.parent} && mv {legacy}* {legacy.parent / 'known_hosts'} "
        f"{default.parent}/" in where.notice
    )
    assert where.notice.endswith(
        "; name a ledger with --ledger or $KREMOVE_LEDGER and this note goes"
    )


def test_when_both_exist_the_old_one_wins_and_the_note_names_the_default(user: Path) -> None:
    legacy = _legacy(Path.cwd())
    default = default_ledger_path()
    default.parent.mkdir(parents=True)
    default.write_bytes(b"")
    where = locate_ledger(None)
    assert where.path == legacy and where.notice is not None
    assert f"(which exists too: use it with --ledger {default})" in where.notice
    assert " mv " not in where.notice  # nothing is moved onto an existing ledger


# -- the command line, for real --------------------------------------------------------------------


@pytest.fixture
def nobody_home() -> Iterator[Path]:
    """A HOME that user nobody owns, outside pytest's root-only tmp, with an inventory of one
    SSH host nothing listens for (it ends unreachable at once: a run is recorded)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root to run kremove as nobody with setpriv")
    home = Path(tempfile.mkdtemp(prefix="kremove-nobody-"))
    _unreachable_inventory(home / "inv.yml")
    for path in (home, home / "inv.yml"):
        os.chown(path, NOBODY, NOBODY)
    try:
        yield home
    finally:
        shutil.rmtree(home)


def _unreachable_inventory(path: Path) -> Path:
    path.write_text("hosts:\n  web1:\n    address: 127.0.0.1\n    port: 1\n    user: ops\n")
    return path


def as_nobody(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return kremove(
        *args, cwd=home, wrap=AS_NOBODY, strip=("",), default_ledger=True, timeout=120,
        env={"PATH": os.environ["PATH"], "HOME": str(home), **env},
    )  # fmt: skip


def test_a_user_gets_the_state_directory_wherever_kremove_runs(nobody_home: Path) -> None:
    ledger = nobody_home / ".local" / "state" / "kremove" / "ledger.db"
    done = as_nobody(nobody_home, "detect", "-i", "inv.yml", "--json")
    assert done.returncode == 1, done.stderr  # unreachable
    run = json.loads(done.stdout)["run"]
    assert ledger.is_file() and not (nobody_home / ".kremove").exists()
    assert mode(ledger) == 0o600 and ledger.stat().st_uid == NOBODY
    for directory in (ledger.parent, ledger.parent.parent, nobody_home / ".local"):
        assert mode(directory) == 0o700, directory  # created private, parents too
    elsewhere = nobody_home / "elsewhere"
    elsewhere.mkdir()
    os.chown(elsewhere, NOBODY, NOBODY)
    listed = kremove(
        "runs", "list", "--json", cwd=elsewhere, wrap=AS_NOBODY, strip=("",), default_ledger=True,
        env={"PATH": os.environ["PATH"], "HOME": str(nobody_home)},
    )  # fmt: skip
    doc = json.loads(listed.stdout)
    assert doc["ledger"] == str(ledger) and [r["id"] for r in doc["runs"]] == [run]
    human = as_nobody(nobody_home, "runs", "list")
    assert f"runs in {ledger}" in human.stdout and run in human.stdout
    assert human.stderr == ""  # no note: nothing old in the current directory


def test_xdg_state_home_moves_a_users_default(nobody_home: Path) -> None:
    state = nobody_home / "state"
    done = as_nobody(nobody_home, "detect", "-i", "inv.yml", XDG_STATE_HOME=str(state))
    assert done.returncode == 1, done.stderr
    assert (state / "kremove" / "ledger.db").is_file()
    assert not (nobody_home / ".local").exists()


def test_an_old_ledger_in_the_current_directory_is_used_with_a_one_line_note(
    nobody_home: Path,
) -> None:
    made = as_nobody(nobody_home, "detect", "-i", "inv.yml", "--ledger", ".kremove/ledger.db")
    assert made.returncode == 1 and made.stderr.count("kremove: note:") == 0, made.stderr
    run = json.loads(as_nobody(nobody_home, "runs", "list", "--json").stdout)
    assert run["ledger"] == str(nobody_home / ".kremove" / "ledger.db") and len(run["runs"]) == 1
    listed = as_nobody(nobody_home, "runs", "list")
    note = listed.stderr.strip().splitlines()
    default = nobody_home / ".local" / "state" / "kremove"
    assert len(note) == 1 and note[0].startswith("kremove: note: using the ledger "), note
    assert f"mv {nobody_home / '.kremove' / 'ledger.db'}* {default}/" in note[0]
    assert not default.exists()  # a read went to the old ledger; the default was not created
    silent = as_nobody(nobody_home, "runs", "list", KREMOVE_LEDGER=".kremove/ledger.db")
    assert silent.returncode == 0 and silent.stderr == ""


def test_root_gets_var_lib_kremove(tmp_path: Path) -> None:
    """As root in a private mount namespace whose /var/lib is an empty tmpfs: the real
    /var/lib/kremove is never touched."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a private /var/lib")
    inventory = _unreachable_inventory(tmp_path / "inv.yml")
    script = (
        'mount -t tmpfs -o mode=755 tmpfs /var/lib && "$0" detect -i "$1" >/dev/null; '
        '"$0" runs list --json && stat -c "%a %u %n" /var/lib/kremove /var/lib/kremove/ledger.db'
    )
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, KREMOVE,
         str(inventory)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env=cli_env(env={"HOME": str(tmp_path)}, default_ledger=True),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc, end = json.JSONDecoder().raw_decode(done.stdout)
    assert doc["ledger"] == "/var/lib/kremove/ledger.db" and len(doc["runs"]) == 1
    assert done.stdout[end:].strip().splitlines() == [
        "700 0 /var/lib/kremove",
        "600 0 /var/lib/kremove/ledger.db",
    ]
    assert not (tmp_path / ".kremove").exists() and not (tmp_path / ".local").exists()


def test_audit_verify_without_a_ledger_is_an_input_error(tmp_path: Path) -> None:
    missing = tmp_path / "state" / "ledger.db"
    for args in (["audit", "verify"], ["audit", "verify", "--json"]):
        done = kremove(*args, cwd=tmp_path, ledger=missing)
        assert done.returncode == 2, done.stderr  # 1 would say the chain is broken
        assert done.stderr == (
            f"kremove: error: no ledger at {missing}; run a scan first (kremove detect -i "
            "FILE), or point --ledger or KREMOVE_LEDGER at an existing one\n"
        )
        assert done.stdout == ""
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "list"],
        ["runs", "show", "20261125"],
        ["runs", "export", "20261125"],
        ["runs", "prune", "--before", "2026-01-01", "--archive", "a.jsonl"],
        ["report", "20261125"],
        ["report", "--fleet"],
        ["audit", "verify"],
        ["audit", "host", "web1"],
        ["rollback", "20261125"],
        ["run", "--resume", "20261125", "--yes"],
        ["run", "--plan", "20261125", "--yes"],
    ],
    ids=" ".join,
)
def test_commands_that_read_a_ledger_never_create_one(tmp_path: Path, args: list[str]) -> None:
    missing = tmp_path / "state" / "ledger.db"
    done = kremove(*args, cwd=tmp_path, ledger=missing)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and f"no ledger at {missing}" in done.stderr
    assert not (tmp_path / "state").exists() and not (tmp_path / "a.jsonl").exists()
