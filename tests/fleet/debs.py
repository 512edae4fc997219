"""Dummy Kaspersky packages, built with dpkg-deb and cached by content.

They install files where the real products do (/opt/kaspersky, /var/opt/kaspersky,
/etc/opt/kaspersky, a log directory and systemd units under /etc/systemd/system), create runtime
files in postinst and delete them in postrm on purge, so that a purge leaves nothing behind. None
of their scripts needs systemd. ``kesl`` with ``fail_prerm`` is the variant whose removal fails.
Nothing is written outside /etc, /var and /opt, the directories a fleet host overlays.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

KESL_VERSION = "12.1.0-1297"
KLNAGENT_VERSION = "14.0.0-4646"
MAINTAINER = "kremove test fleet <fleet@fleet.invalid>"
_BUILD_LOCK = threading.Lock()


@dataclass(frozen=True)
class DebSpec:
    """One dummy package: control fields, files (path -> content) and maintainer scripts."""

    package: str
    version: str
    description: str
    files: dict[str, str]
    conffiles: tuple[str, ...] = ()
    depends: str = ""
    scripts: dict[str, str] = field(default_factory=dict)
    variant: str = ""  # distinguishes builds of the same package, e.g. "prerm-fails"

    def control(self) -> str:
        lines = [
            f"Package: {self.package}",
            f"Version: {self.version}",
            "Architecture: all",
            f"Maintainer: {MAINTAINER}",
            "Section: misc",
            "Priority: optional",
        ]
        if self.depends:
            lines.append(f"Depends: {self.depends}")
        lines.append(f"Description: {self.description}")
        lines.append(" A dummy package of the kremove test fleet; it is not Kaspersky software.")
        return "\n".join(lines) + "\n"

    def digest(self) -> str:
        doc = {
            "control": self.control(),
            "files": self.files,
            "conffiles": self.conffiles,
            "scripts": self.scripts,
            "variant": self.variant,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def _script(body: str) -> str:
    return "#!/bin/sh\nset -e\n" + body.strip() + "\nexit 0\n"


def _unit(name: str, exe: str) -> str:
    return (
        f"[Unit]\nDescription={name} (kremove test fleet dummy)\n\n"
        f"[Service]\nExecStart={exe}\n\n[Install]\nWantedBy=multi-user.target\n"
    )


def _binary(name: str, version: str) -> str:
    return f'#!/bin/sh\necho "{name} {version} (kremove test fleet dummy)"\n'


def kesl(*, fail_prerm: bool = False) -> DebSpec:
    prerm = (
        'echo "kesl: cannot stop the service, removal refused" >&2\nexit 1'
        if fail_prerm
        else 'echo "kesl: stopping kesl (dummy)"'
    )
    return DebSpec(
        package="kesl",
        version=KESL_VERSION,
        description="Kaspersky Endpoint Security for Linux (dummy)",
        files={
            "opt/kaspersky/kesl/bin/kesl-control": _binary("kesl-control", KESL_VERSION),
            "opt/kaspersky/kesl/lib/libkesl.so.dummy": "not a library\n",
            "opt/kaspersky/kesl/shared/version": KESL_VERSION + "\n",
            "var/opt/kaspersky/kesl/common/kesl.ini": "[General]\nInstalled=yes\n",
            "etc/opt/kaspersky/kesl.conf": "# kesl settings (dummy)\nUseKSN=no\n",
            "etc/systemd/system/kesl.service": _unit(
                "kesl", "/opt/kaspersky/kesl/bin/kesl-control"
            ),
        },
        conffiles=("/etc/opt/kaspersky/kesl.conf", "/etc/systemd/system/kesl.service"),
        scripts={
            "postinst": _script(
                """
if [ "$1" = configure ]; then
    mkdir -p /var/log/kaspersky/kesl /var/opt/kaspersky/kesl/private
    echo "kesl installed" >/var/log/kaspersky/kesl/kesl.log
    echo "runtime state" >/var/opt/kaspersky/kesl/private/state
fi
"""
            ),
            "prerm": _script(prerm),
            "postrm": _script(
                """
if [ "$1" = purge ]; then
    rm -rf /var/log/kaspersky/kesl /var/opt/kaspersky/kesl/private
    rmdir /var/log/kaspersky 2>/dev/null || true
fi
"""
            ),
        },
        variant="prerm-fails" if fail_prerm else "",
    )


def kesl_gui() -> DebSpec:
    return DebSpec(
        package="kesl-gui",
        version=KESL_VERSION,
        description="Kaspersky Endpoint Security for Linux graphical interface (dummy)",
        files={
            "opt/kaspersky/kesl-gui/bin/kesl-gui": _binary("kesl-gui", KESL_VERSION),
            "opt/kaspersky/kesl-gui/share/kesl-gui.desktop": "[Desktop Entry]\nName=KESL\n",
        },
        depends="kesl",
        scripts={"prerm": _script('echo "kesl-gui: closing the interface (dummy)"')},
    )


def klnagent64() -> DebSpec:
    return DebSpec(
        package="klnagent64",
        version=KLNAGENT_VERSION,
        description="Kaspersky Security Center Network Agent (dummy)",
        files={
            "opt/kaspersky/klnagent64/bin/klnagent": _binary("klnagent", KLNAGENT_VERSION),
            "opt/kaspersky/klnagent64/lib/bin/setup/postinstall.pl": "# dummy\n",
            "var/opt/kaspersky/klnagent64/1093/.settings/nagent.conf": "[nagent]\n",
            "etc/systemd/system/klnagent64.service": _unit(
                "klnagent64", "/opt/kaspersky/klnagent64/bin/klnagent"
            ),
        },
        conffiles=("/etc/systemd/system/klnagent64.service",),
        scripts={
            "postinst": _script(
                """
if [ "$1" = configure ]; then
    mkdir -p /var/log/kaspersky/klnagent64
    echo "klnagent64 installed" >/var/log/kaspersky/klnagent64/klnagent.log
fi
"""
            ),
            "postrm": _script(
                """
if [ "$1" = purge ]; then
    rm -rf /var/log/kaspersky/klnagent64 /var/opt/kaspersky/klnagent64
    rmdir /var/log/kaspersky 2>/dev/null || true
fi
"""
            ),
        },
    )


KESS_VERSION = "3.3.0-233"
KICS_VERSION = "2.0.0-1420"
UNKNOWN_VERSION = "9.9.0-1"


def _product(package: str, version: str, description: str, depends: str = "") -> DebSpec:
    """A Linux product laid out like kesl: a program in /opt/kaspersky/<package>, data in /var."""
    return DebSpec(
        package=package,
        version=version,
        description=description,
        files={
            f"opt/kaspersky/{package}/bin/{package}-control": _binary(package, version),
            f"opt/kaspersky/{package}/shared/version": version + "\n",
            f"var/opt/kaspersky/{package}/common/{package}.ini": "[General]\nInstalled=yes\n",
        },
        depends=depends,
        scripts={"prerm": _script(f'echo "{package}: stopping (dummy)"')},
    )


def kess() -> DebSpec:
    return _product("kess", KESS_VERSION, "Kaspersky Embedded Systems Security for Linux (dummy)")


def kess_gui() -> DebSpec:
    return _product("kess-gui", KESS_VERSION, "KESS graphical interface (dummy)", depends="kess")


def kics() -> DebSpec:
    return _product("kics", KICS_VERSION, "Kaspersky Industrial CyberSecurity for Linux (dummy)")


def kics_gui() -> DebSpec:
    return _product("kics-gui", KICS_VERSION, "KICS graphical interface (dummy)", depends="kics")


def kav4ws() -> DebSpec:
    return _product("kav4ws", "5.7.0-25", "Kaspersky Anti-Virus for Linux Workstation (dummy)")


def kwts() -> DebSpec:
    return _product("kwts", "6.1.0-4762", "Kaspersky Web Traffic Security (dummy)")


def unknown_kaspersky() -> DebSpec:
    """A Kaspersky product no catalog entry names (modelled on the KSC Linux server, whose
    package name no source gives): files under /opt/kaspersky, a package name kremove cannot
    know. Detection must report it, never call the host clean."""
    return _product("klunlisted", UNKNOWN_VERSION, "An uncatalogued Kaspersky product (dummy)")


def build(spec: DebSpec, cache: Path) -> Path:
    """The .deb for ``spec``, built with dpkg-deb unless ``cache`` already holds it."""
    with _BUILD_LOCK:
        return _build(spec, cache)


def _build(spec: DebSpec, cache: Path) -> Path:
    out = cache / spec.digest() / f"{spec.package}_{spec.version}_all.deb"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    debian = staging / "DEBIAN"
    debian.mkdir(parents=True)
    (debian / "control").write_text(spec.control())
    if spec.conffiles:
        (debian / "conffiles").write_text("".join(f"{c}\n" for c in spec.conffiles))
    for name, body in spec.scripts.items():
        (debian / name).write_text(body)
        (debian / name).chmod(0o755)
    for rel, content in spec.files.items():
        path = staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(0o755 if "/bin/" in rel else 0o644)
    tmp = out.with_suffix(".tmp")
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(staging), str(tmp)],
        check=True,
        capture_output=True,
    )
    tmp.rename(out)
    shutil.rmtree(staging)
    return out
