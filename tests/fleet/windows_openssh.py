"""The windows_openssh kinds: Windows hosts reached over a real sshd, as Windows Server 2019+
and Windows 10/11 are over their OpenSSH server.

Such a host is a fleet host like any other (its own namespaces, sshd on 127.0.0.1, kops with
the fleet's client key), except that what sshd runs is the WinRM test host's emulated Windows
(winrm_host/windows.py and cmdexe.py) instead of bash:

- the layer ``windows-openssh`` carries the emulator as the package ``winhost`` in
  /etc/kremove-fleet, and three scripts beside it: ``windows-server``, ``windows-shell`` and
  ``windows-login``;
- the host's first process starts ``windows-server`` (winrm_host/openssh.py), which holds the
  emulated machine, then execs sshd;
- sshd's ForceCommand is ``windows-login``: the fleet's log-command (so ``commands.log`` has
  every command line as received) with ``windows-shell`` as the login shell, which runs the
  command as ``cmd.exe /c`` does on Windows, in the server.

The machine's files are in the host directory's ``windows/`` (``/run/fleet-host/windows``
inside): ``initial.json`` (the kind's state with its uninstall passwords, 0600), ``state.json``
after every command, ``commands.jsonl`` (the WinRM test host's events: command, script,
msiexec, output). ``WindowsFiles`` reads them as the WinRM fleet's are read.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

from .winrm_host.fleet import UNINSTALL_PASSWORD_SHAPE
from .winrm_host.kinds import initial_state
from .winrm_host.machine_files import MachineFiles
from .winrm_host.openssh import INITIAL, LOG, STATE

LAYER = "windows-openssh"
HERE = Path(__file__).resolve().parent
EMULATOR = ("windows.py", "cmdexe.py", "openssh.py")  # from winrm_host/, standard library only
INSIDE = "/etc/kremove-fleet"
FOLDER = "windows"  # in the host dir; /run/fleet-host/windows inside the host
FORCE_COMMAND = f"{INSIDE}/windows-login"
PYTHON = "#!/usr/bin/python3 -ISB"  # the host's own Python; no site, no environment, no .pyc
# The protected kind's uninstall passwords (KES's and the Network Agent's differ): references
# an inventory gives per product. cmd.exe and msiexec metacharacters on purpose.
KES_PASSWORD_ENV = "KREMOVE_FLEET_WINDOWS_KES_PASSWORD"
AGENT_PASSWORD_ENV = "KREMOVE_FLEET_WINDOWS_AGENT_PASSWORD"


def build_layer(root: Path) -> Path:
    """The layer: the emulator package and the scripts (rebuilt each time: it is small)."""
    shutil.rmtree(root, ignore_errors=True)
    for sub in ("etc", "var", "opt"):
        (root / sub).mkdir(parents=True)
    etc = root / INSIDE.lstrip("/")
    package = etc / "winhost"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name in EMULATOR:
        shutil.copyfile(HERE / "winrm_host" / name, package / name)
    run = f'sys.path.insert(0, "{INSIDE}")\nfrom winhost.openssh import main\n'
    folder = f"/run/fleet-host/{FOLDER}"
    scripts = {
        "windows-server": f'{PYTHON}\nimport sys\n{run}sys.exit(main(["server", "{folder}"]))\n',
        "windows-shell": (
            f'{PYTHON}\nimport sys\n{run}sys.exit(main(["shell", "{folder}", *sys.argv[1:]]))\n'
        ),
        "windows-login": (
            "#!/bin/sh\n# ForceCommand: log the command as every fleet host does, then run it\n"
            f"# with the emulated cmd.exe as the login shell.\nSHELL={INSIDE}/windows-shell\n"
            f"export SHELL\nexec {INSIDE}/log-command\n"
        ),
    }
    for name, text in scripts.items():
        (etc / name).write_text(text)
        (etc / name).chmod(0o755)
    return root


def argv(sshd: list[str]) -> list[str]:
    """The host's first process: the Windows server in the background, then sshd itself."""
    return ["/bin/sh", "-c", f'{INSIDE}/windows-server & exec "$@"', "sh", *sshd]


def new_passwords() -> dict[str, str]:
    return {
        KES_PASSWORD_ENV: UNINSTALL_PASSWORD_SHAPE + secrets.token_hex(4),
        AGENT_PASSWORD_ENV: "Ag^%" + UNINSTALL_PASSWORD_SHAPE + secrets.token_hex(4),
    }


def hex_forms(env: dict[str, str]) -> list[str]:
    """The Network Agent's form of each password (UTF-16LE in hex), as secret as the password."""
    return [
        env[key].encode("utf-16-le").hex().upper()
        for key in (KES_PASSWORD_ENV, AGENT_PASSWORD_ENV)
        if key in env
    ]


def prepare_host(hostdir: Path, name: str, windows_kind: str, env: dict[str, str]) -> None:
    """The host's machine at its kind's initial state (again, on reset), with an empty log."""
    folder = hostdir / FOLDER
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    folder.chmod(0o711)  # sessions (kops) reach the server's socket; the files are root's, 0600
    own = {"kes": env[KES_PASSWORD_ENV], "klnagent": env[AGENT_PASSWORD_ENV]}
    state = initial_state(windows_kind, name, "kops", env[KES_PASSWORD_ENV], own)
    fd = os.open(folder / INITIAL, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"name": name, "state": state}, f)
    (folder / STATE).write_text(json.dumps(state), encoding="utf-8")
    (folder / LOG).write_text("")
    for path in (folder / STATE, folder / LOG):
        path.chmod(0o600)


class WindowsFiles(MachineFiles):
    """The Windows hosts' state and logs: ``fleet.windows.state(name)``, ``.leftovers(name)``,
    ``.scripts(name)``, ``.log(name)`` … (what sshd received is ``fleet.commands_log(name)``)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def _machine_dir(self, name: str) -> Path:
        return self.workdir / "hosts" / name / "run" / FOLDER
