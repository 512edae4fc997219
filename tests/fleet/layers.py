"""The read-only layers a fleet host's /etc, /var and /opt are stacked from.

- ``base``: the login user ``kops`` (passwd, shadow, group, gshadow copied from this machine with
  one line added), passwordless sudo for kops, ``hosts: files`` name lookup (a host never asks
  DNS), a minimal /etc/hosts and the command-logging wrapper at /etc/kremove-fleet/log-command.
- ``pkgs-*``: the upper dir left by running ``dpkg -i`` on the dummy packages inside a namespace
  whose lower layer is ``base``; prepared once per fleet, shared by every host of those kinds.
  The packages' file lists then drop the line ``/opt``: a host's /opt is a mount point on a
  read-only root, so dpkg must not try to rmdir it when a purge leaves it empty (EROFS).
- ``sudo-password``: sudoers where kops must give its password.

Nothing outside the fleet's work directory is written.
"""

from __future__ import annotations

import grp
import os
import shutil
import subprocess
from pathlib import Path

from tests.fleet import debs
from tests.fleet.kinds import PACKAGE_TEMPLATES, SUDO_PASSWORD_LAYER

HERE = Path(__file__).resolve().parent
HOST_SH = HERE / "host.sh"
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
    return root


def build_sudo_password_layer(root: Path) -> Path:
    empty_layer(root)
    _write(root / "etc" / "sudoers.d" / USER, f"{USER} ALL=(ALL:ALL) ALL\n", 0o440)
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


def namespace_command(
    layers: list[Path], upper: Path, work: Path, stage: Path, hostdir: Path | None, hostname: str
) -> tuple[list[str], dict[str, str]]:
    """argv and environment that run host.sh in new mount and UTS namespaces (command follows)."""
    for path in (*layers, upper, work, stage):
        if ":" in str(path) or "," in str(path):
            raise LayerError(f"overlayfs cannot use a path with ':' or ',': {path}")
    stage.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": PATH,
        "LANG": "C.UTF-8",
        "FLEET_LAYERS": ":".join(str(layer) for layer in layers),
        "FLEET_UPPER": str(upper),
        "FLEET_WORK": str(work),
        "FLEET_STAGE": str(stage),
        "FLEET_HOSTNAME": hostname,
    }
    if hostdir is not None:
        env["FLEET_HOSTDIR"] = str(hostdir)
    argv = ["unshare", "--mount", "--uts", "--propagation", "private", "/bin/sh", str(HOST_SH)]
    return argv, env


def build_template(name: str, layers_dir: Path, debs_dir: Path) -> Path:
    """Install the packages of template ``name`` over the base layer; the upper dir is the layer."""
    root = layers_dir / name
    if (root / ".done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    scratch = layers_dir / f".{name}.scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    built = [debs.build(make(), debs_dir) for make in PACKAGE_TEMPLATES[name]]
    argv, env = namespace_command(
        [layers_dir / "base"], root, scratch / "work", scratch / "stage", debs_dir, "fleet-template"
    )
    inside = [f"/run/fleet-host/{deb.relative_to(debs_dir)}" for deb in built]
    result = subprocess.run(
        [*argv, "dpkg", "-i", *inside], env=env, capture_output=True, text=True, check=False
    )
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
    return build_template(name, layers_dir, debs_dir)
