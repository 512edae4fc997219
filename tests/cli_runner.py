"""The installed `kremove` script, run as a real subprocess the way an operator runs it.

Every test that goes through the command line calls :func:`kremove` (or :func:`start`, to
signal or race a run in the background), so a test says only what is particular to it: its
directory, ledger, a fleet's secrets, a wrapper or a terminal. A test that hands kremove to
another program (tmux) builds the same environment with :func:`cli_env`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

# The script pip installed beside this interpreter, so the tests run this checkout's kremove.
KREMOVE = shutil.which("kremove", path=str(Path(sys.executable).parent)) or "kremove"

# The developer's own settings (a ledger, where state goes, an ssh config, an agent, an Ansible
# config or inventory) would make a test depend on the machine it runs on; they are left out
# unless a test asks otherwise.
OWN_SETTINGS = ("KREMOVE_", "SSH_", "XDG_STATE_HOME", "ANSIBLE_")

# Output as a test reads it: no colour codes, and lines wide enough that nothing is wrapped.
PLAIN = {"NO_COLOR": "1", "COLUMNS": "200"}


def cli_env(
    *,
    home: Path | None = None,
    ledger: Path | None = None,
    env: Mapping[str, str] | None = None,
    strip: tuple[str, ...] = OWN_SETTINGS,
    plain: bool = True,
    cwd: Path | None = None,
    default_ledger: bool = False,
) -> dict[str, str]:
    """This process's environment without the variables whose names start with one of ``strip``,
    then :data:`PLAIN` (unless ``plain`` is false), ``env``, HOME and KREMOVE_LEDGER, in that
    order: a later setting wins.

    ``home`` sets HOME; the ledger is ``ledger`` if given, else ``home / "l.db"`` when ``home``
    is given, else KREMOVE_LEDGER if ``env`` or what ``strip`` left has it, else
    ``cwd / ".kremove/ledger.db"`` (``cwd`` defaults to this process's directory). A test never
    reaches kremove's real default ledger (/var/lib/kremove as root) unless ``default_ledger``
    says so; such a test gives kremove a HOME or XDG_STATE_HOME, or a private /var/lib.
    """
    full = {k: v for k, v in os.environ.items() if not k.startswith(strip)}
    if plain:
        full.update(PLAIN)
    full.update(env or {})
    if home is not None:
        full["HOME"] = str(home)
        ledger = ledger if ledger is not None else home / "l.db"
    if ledger is not None:
        full["KREMOVE_LEDGER"] = str(ledger)
    elif not default_ledger and not full.get("KREMOVE_LEDGER"):
        full["KREMOVE_LEDGER"] = str((cwd or Path.cwd()) / ".kremove" / "ledger.db")
    return full


def kremove(
    *args: str,
    home: Path | None = None,
    cwd: Path | None = None,
    ledger: Path | None = None,
    env: Mapping[str, str] | None = None,
    strip: tuple[str, ...] = OWN_SETTINGS,
    timeout: float = 300,
    wrap: Sequence[str] = (),
    terminal: bool = False,
    default_ledger: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``kremove *args`` to its end, with no input, and return what it printed as text.

    It runs in ``cwd`` (default: ``home``, else this process's directory) with the environment
    :func:`cli_env` builds from ``home``, ``ledger``, ``env`` and ``strip``. ``wrap`` is a
    command kremove runs under (``/usr/bin/time -f %M``, ``prlimit ...``, ``setpriv ...``).
    ``terminal`` runs it under ``script`` so it sees a terminal, as in an operator's shell:
    then :data:`PLAIN` is not added, everything it printed is in ``stdout``, and carriage returns
    are kept (the text is decoded, invalid bytes replaced, without newline translation).
    """
    command = [*wrap, KREMOVE, *args]
    where = cwd if cwd is not None else home
    full_env = cli_env(
        home=home,
        ledger=ledger,
        env=env,
        strip=strip,
        plain=not terminal,
        cwd=where,
        default_ledger=default_ledger,
    )
    if not terminal:
        return subprocess.run(
            command,
            cwd=where,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    raw = subprocess.run(
        ["script", "-qfec", shlex.join(command), "/dev/null"],
        cwd=where,
        env=full_env,
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return subprocess.CompletedProcess(
        raw.args,
        raw.returncode,
        raw.stdout.decode("utf-8", "replace"),
        raw.stderr.decode("utf-8", "replace"),
    )


def start(
    *args: str, home: Path, env: Mapping[str, str] | None = None, keep_output: bool = True
) -> subprocess.Popen[str]:
    """Start ``kremove *args`` in the background, to signal it or race it, in ``home`` with the
    environment :func:`kremove` would give it. What it prints comes in pipes, as text, or is
    discarded when ``keep_output`` is false (a process killed midway leaves nobody to read it).
    """
    sink = subprocess.PIPE if keep_output else subprocess.DEVNULL
    return subprocess.Popen(
        [KREMOVE, *args],
        cwd=home,
        env=cli_env(home=home, env=env),
        stdin=subprocess.DEVNULL,
        stdout=sink,
        stderr=sink,
        text=True,
    )
