"""The read-only layers a fleet host's /etc, /var and /opt are stacked from.

- ``base``: the login user ``kops`` (passwd, shadow, group, gshadow copied from this machine with
  one line added), passwordless sudo for kops, ``hosts: files`` name lookup (a host never asks
  DNS), a minimal /etc/hosts and the command-logging wrapper at /etc/kremove-fleet/log-command;
  and a lean dpkg database (see ``lean_dpkg``).
- ``pkgs-*``: the upper dir left by running ``dpkg -i`` on the dummy packages inside a namespace
  whose lower layer is ``base``; prepared once per fleet, shared by every host of those kinds.
  The packages' file lists then drop the line ``/opt``: a host's /opt is a mount point on a
  read-only root, so dpkg must not try to rmdir it when a purge leaves it empty (EROFS).
- ``sudo-password``: sudoers where kops must give its password.
- ``no-sudo``: sudoers with no rule for kops (its file only a comment): sudo refuses it.
- ``su-root-password``: shadow in which root's password is kops's (su to root takes it).
- ``doas-password`` / ``doas-nopass``: /etc/doas.conf letting kops become root with / without
  its password (the doas program is this machine's, installed by system.py).
- ``macos-*``: the Mac tree, receipts, launchd state and shim commands of the macOS kinds
  (built by macos.py, without dpkg).
- ``windows-openssh``: the emulated Windows and its scripts in /etc/kremove-fleet
  (windows_openssh.py).

Nothing outside the fleet's work directory is written.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import debs, macos, windows_openssh
from .kinds import (
    DOAS_LAYER,
    DOAS_NOPASS_LAYER,
    NO_SUDO_LAYER,
    PACKAGE_TEMPLATES,
    SU_LAYER,
    SUDO_PASSWORD_LAYER,
)

HERE = Path(__file__).resolve().parent
LAUNCHER = HERE / "launcher.py"
LOG_COMMAND_SH = HERE / "log-command.sh"
LOG_COMMAND = "/etc/kremove-fleet/log-command"
OVERLAID = ("etc", "var", "opt")
USER = "kops"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class LayerError(RuntimeError):
    pass


def empty_layer(root: Path) -> Path:
    for sub in OVERLAID:
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def free_id(start: int = 1500) -> int:
    """A uid that is also a free gid on this machine, for kops."""
    used_uids = {int(line.split(":")[2]) for line in _lines(Path("/etc/passwd"))}
    used_gids = {int(line.split(":")[2]) for line in _lines(Path("/etc/group"))}
    uid = start
    while uid in used_uids or uid in used_gids:
        uid += 1
    return uid


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.count(":") >= 2]


def password_hash(password: str) -> str:
    result = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"],
        input=password,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def build_base(root: Path, *, uid: int, password: str) -> Path:
    """The fleet-wide base layer in ``root``."""
    empty_layer(root)
    etc = root / "etc"
    days = 19000
    _append(
        etc / "passwd", Path("/etc/passwd"), f"{USER}:x:{uid}:{uid}:kops:/home/{USER}:/bin/bash"
    )
    _append(
        etc / "shadow",
        Path("/etc/shadow"),
        f"{USER}:{password_hash(password)}:{days}:0:99999:7:::",
        mode=0o640,
        group="shadow",
    )
    _append(etc / "group", Path("/etc/group"), f"{USER}:x:{uid}:")
    _append(etc / "gshadow", Path("/etc/gshadow"), f"{USER}:!::", mode=0o640, group="shadow")
    _write(etc / "sudoers.d" / USER, f"{USER} ALL=(ALL:ALL) NOPASSWD: ALL\n", 0o440)
    nsswitch = Path("/etc/nsswitch.conf").read_text().splitlines()
    nsswitch = [("hosts:          files" if n.startswith("hosts:") else n) for n in nsswitch]
    _write(etc / "nsswitch.conf", "\n".join(nsswitch) + "\n", 0o644)
    _write(
        etc / "hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n", 0o644
    )
    (etc / "kremove-fleet").mkdir(exist_ok=True)
    _write(etc / "kremove-fleet" / "log-command", LOG_COMMAND_SH.read_text(), 0o755)
    lean_dpkg(root / "var" / "lib" / "dpkg", Path("/var/lib/dpkg"))
    return root


# Besides Debian's required and essential packages, what a fleet host is known to have.
LEAN_KEEP = frozenset({"sudo", "openssh-server", "openssh-client", "python3", "python3-minimal"})
OPAQUE = "trusted.overlay.opaque"


def lean_dpkg(dest: Path, source: Path) -> None:
    """A fleet host's dpkg database: this machine's, cut to the packages a minimal server has.

    This machine has hundreds of packages (~127,000 file-list entries); every ``dpkg --purge``
    reads all their file lists, so with the full database a purge costs ~0.15 s of CPU, and a
    fleet of hundreds of hosts sharing this machine's two cores spends most of a removal wave
    there (a real host spends it on its own CPU). Kept: Debian's required and essential
    packages, ``LEAN_KEEP``, and everything those depend on, so that apt-get finds no broken
    dependencies (~130 packages, ~10,000 entries). ``info`` and ``triggers`` are opaque
    directories in this layer: the machine's own files below them are hidden from the host.
    dpkg and apt-get behave the same; they just have fewer packages to read.
    """
    installed: dict[str, dict[str, str]] = {}
    provided: dict[str, str] = {}
    text: dict[str, str] = {}
    for paragraph in (source / "status").read_text().split("\n\n"):
        lines = [ln for ln in paragraph.splitlines() if ": " in ln and not ln.startswith(" ")]
        fields = dict(ln.split(": ", 1) for ln in lines)
        name = fields.get("Package", "")
        if not name or not fields.get("Status", "").endswith(" installed"):
            continue
        installed[name], text[name] = fields, paragraph.strip("\n")
        for item in fields.get("Provides", "").split(","):
            provided.setdefault(_dep_name(item), name)
    keep = {
        name
        for name, fields in installed.items()
        if name in LEAN_KEEP
        or fields.get("Priority") == "required"
        or fields.get("Essential") == "yes"
    }
    todo = list(keep)
    while todo:  # the dependency closure: the first alternative that is installed
        fields = installed[todo.pop()]
        groups = f"{fields.get('Pre-Depends', '')},{fields.get('Depends', '')}".split(",")
        for group in filter(str.strip, groups):
            names = [_dep_name(alt) for alt in group.split("|")]
            found = [n if n in installed else provided.get(n) for n in names]
            real = next((n for n in found if n), None)
            if real and real not in keep:
                keep.add(real)
                todo.append(real)
    (dest / "info").mkdir(parents=True, exist_ok=True)
    (dest / "triggers").mkdir(exist_ok=True)
    (dest / "status").write_text("\n\n".join(text[n] for n in installed if n in keep) + "\n")
    for path in (source / "info").iterdir():
        owner = path.name.rsplit(".", 1)[0].split(":", 1)[0]  # "libc6:amd64.list" -> "libc6"
        if owner in keep and path.is_file():
            shutil.copy2(path, dest / "info" / path.name)
    for path in (source / "triggers").iterdir():  # interests of packages not kept are dropped
        if path.is_file() and path.name not in ("Lock", "Unincorp"):
            lines = [ln for ln in path.read_text().splitlines() if _trigger_owner(ln) in keep]
            (dest / "triggers" / path.name).write_text("".join(f"{ln}\n" for ln in lines))
    (dest / "triggers" / "Unincorp").write_text("")
    for sub in ("info", "triggers"):
        os.setxattr(dest / sub, OPAQUE, b"y")


def _dep_name(item: str) -> str:
    """ "libc6:any (>= 2.34)" -> "libc6"."""
    words = item.split()
    return words[0].split(":", 1)[0] if words else ""


def _trigger_owner(line: str) -> str:
    """The package named by a line of a triggers file ("/path pkg/noawait" or "pkg:arch")."""
    words = line.split()
    return words[-1].split("/", 1)[0].split(":", 1)[0] if words else ""


def build_sudo_password_layer(root: Path) -> Path:
    empty_layer(root)
    _write(root / "etc" / "sudoers.d" / USER, f"{USER} ALL=(ALL:ALL) ALL\n", 0o440)
    return root


def build_no_sudo_layer(root: Path) -> Path:
    empty_layer(root)
    _write(root / "etc" / "sudoers.d" / USER, f"# {USER} may not use sudo\n", 0o440)
    return root


def build_su_layer(root: Path, base: Path) -> Path:
    """shadow where root's password is kops's (the base layer's hash), for su to root."""
    empty_layer(root)
    lines = (base / "etc" / "shadow").read_text().splitlines()
    kops = next(line.split(":")[1] for line in lines if line.startswith(f"{USER}:"))
    lines = [
        ":".join(["root", kops, *line.split(":")[2:]]) if line.startswith("root:") else line
        for line in lines
    ]
    _write(root / "etc" / "shadow", "\n".join(lines) + "\n", 0o640, "shadow")
    return root


def build_doas_layer(root: Path, *, nopass: bool) -> Path:
    """/etc/doas.conf letting kops become root, with or without its password (doas refuses a
    config others can write)."""
    empty_layer(root)
    rule = f"permit {'nopass ' if nopass else ''}{USER} as root\n"
    _write(root / "etc" / "doas.conf", rule, 0o400)
    return root


def _append(dest: Path, source: Path, line: str, mode: int = 0o644, group: str = "root") -> None:
    text = source.read_text()
    if text and not text.endswith("\n"):
        text += "\n"
    _write(dest, text + line + "\n", mode, group)


def _write(path: Path, text: str, mode: int, group: str = "root") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chown(path, 0, grp.getgrnam(group).gr_gid)
    path.chmod(mode)


def host_spec(
    layers: list[Path],
    upper: Path,
    work: Path,
    stage: Path,
    hostdir: Path | None,
    hostname: str,
    argv: list[str],
    *,
    uid: int | None = None,
    log: Path | None = None,
    mac: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What launcher.py needs to start one host (see its docstring for what it does)."""
    for path in (*layers, upper, work, stage):
        if ":" in str(path) or "," in str(path):
            raise LayerError(f"overlayfs cannot use a path with ':' or ',': {path}")
    return {
        "layers": [str(layer) for layer in layers],
        "upper": str(upper),
        "work": str(work),
        "stage": str(stage),
        "hostdir": str(hostdir) if hostdir else None,
        "hostname": hostname,
        "user": USER,
        "uid": uid,
        "argv": argv,
        "env": {"PATH": PATH, "LANG": "C.UTF-8"},
        "log": str(log) if log else None,
        "macos": mac,
    }


def launch(mode: str, specs: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    """Run launcher.py: ``spawn`` starts the hosts and returns, ``run`` waits for one command."""
    return subprocess.run(
        [sys.executable, "-S", "-E", str(LAUNCHER)],
        input=json.dumps({"mode": mode, "hosts": specs}),
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )


def build_template(name: str, layers_dir: Path, debs_dir: Path) -> Path:
    """Install the packages of template ``name`` over the base layer; the upper dir is the layer."""
    root = layers_dir / name
    if (root / ".done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    scratch = layers_dir / f".{name}.scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    built = [debs.build(make(), debs_dir) for make in PACKAGE_TEMPLATES[name]]
    inside = [f"/run/fleet-host/{deb.relative_to(debs_dir)}" for deb in built]
    dpkg = [shutil.which("dpkg") or "/usr/bin/dpkg", "-i", *inside]
    spec = host_spec(
        [layers_dir / "base"], root, scratch / "work", scratch / "stage", debs_dir, "template", dpkg
    )
    result = launch("run", [spec])
    shutil.rmtree(scratch, ignore_errors=True)
    if result.returncode != 0:
        raise LayerError(f"dpkg -i for layer {name} failed: {result.stdout}{result.stderr}")
    for make in PACKAGE_TEMPLATES[name]:
        listing = root / "var" / "lib" / "dpkg" / "info" / f"{make().package}.list"
        kept = [line for line in listing.read_text().splitlines() if line != "/opt"]
        listing.write_text("\n".join(kept) + "\n")
    empty_layer(root)
    (root / ".done").write_text("")
    return root


def build_layer(name: str, layers_dir: Path, debs_dir: Path) -> Path:
    if name == SUDO_PASSWORD_LAYER:
        return build_sudo_password_layer(layers_dir / name)
    if name == NO_SUDO_LAYER:
        return build_no_sudo_layer(layers_dir / name)
    if name == SU_LAYER:
        return build_su_layer(layers_dir / name, layers_dir / "base")
    if name in (DOAS_LAYER, DOAS_NOPASS_LAYER):
        return build_doas_layer(layers_dir / name, nopass=name == DOAS_NOPASS_LAYER)
    if name in macos.LAYERS:
        return macos.build_layer(name, layers_dir / name)
    if name == windows_openssh.LAYER:
        return windows_openssh.build_layer(layers_dir / name)
    return build_template(name, layers_dir, debs_dir)
