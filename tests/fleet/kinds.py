"""The kinds of simulated host: what each has installed and how it behaves.

Each kind is a name usable in code (``Fleet.start(workdir, {"one_product": 3})``). A host's file
system is a stack of layers: the fleet-wide base layer at the bottom, then the layers of its kind
(package templates prepared once per fleet, a sudoers change), then the host's own upper dir.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import debs, macos, macos_kes, windows_openssh

CLEAN = "clean"
ONE_PRODUCT = "one_product"
SEVERAL_PRODUCTS = "several_products"
UNINSTALL_FAILS = "uninstall_fails"
UNREACHABLE = "unreachable"
SILENT = "silent"
SLOW = "slow"
CHANGED_HOSTKEY = "changed_hostkey"
PASSWORD_ONLY = "password_only"
JUMP = "jump"
BEHIND_JUMP = "behind_jump"
WRONG_SUDO_PASSWORD = "wrong_sudo_password"
SUDO_PASSWORD = "sudo_password"
NO_SUDO = "no_sudo"
MACOS_CLEAN = "macos_clean"
MACOS_KAV = "macos_kav"
MACOS_UNINSTALL_FAILS = "macos_uninstall_fails"
MACOS_KES12 = "macos_kes12"
MACOS_KES12_SYSEXT_STAYS = "macos_kes12_sysext_stays"
MACOS_KES12_NO_UNINSTALLER = "macos_kes12_no_uninstaller"
MACOS_KES12_REBOOT = "macos_kes12_reboot"
SU_PASSWORD = "su_password"
DOAS_PASSWORD = "doas_password"
DOAS_NOPASS = "doas_nopass"
WINDOWS_OPENSSH = "windows_openssh"
WINDOWS_OPENSSH_PROTECTED = "windows_openssh_protected"
WINDOWS_OPENSSH_HANGING = "windows_openssh_hanging"
KESS_GUI = "kess_gui"
KICS_GUI = "kics_gui"
UNKNOWN_KASPERSKY = "unknown_kaspersky"
OTHER_LINUX = "other_linux"

# Package templates: layer name -> the packages dpkg installs into it.
PACKAGE_TEMPLATES: dict[str, tuple[Callable[[], debs.DebSpec], ...]] = {
    "pkgs-kesl": (debs.kesl,),
    "pkgs-several": (debs.kesl, debs.kesl_gui, debs.klnagent64),
    "pkgs-kesl-prerm-fails": (lambda: debs.kesl(fail_prerm=True),),
    "pkgs-kess": (debs.kess, debs.kess_gui),
    "pkgs-kics": (debs.kics, debs.kics_gui),
    "pkgs-unknown": (debs.unknown_kaspersky,),
    "pkgs-other-linux": (debs.kav4ws, debs.kwts),
}
SUDO_PASSWORD_LAYER = "sudo-password"  # sudoers: kops needs its password (no NOPASSWD)
NO_SUDO_LAYER = "no-sudo"  # sudoers: no rule for kops, which cannot become root at all
SU_LAYER = "su-root-password"  # shadow: root's password is kops's, so su to root takes it
DOAS_LAYER = "doas-password"  # /etc/doas.conf: kops may become root with its password
DOAS_NOPASS_LAYER = "doas-nopass"  # /etc/doas.conf: kops may become root without one


@dataclass(frozen=True)
class Kind:
    name: str
    layers: tuple[str, ...] = ()  # above the base layer, top first
    has_system: bool = True  # False: no sshd at all, only a port (unreachable, silent)
    description: str = ""
    platform: str = "linux"  # macos: a Linux namespace dressed as a Mac with shims (macos.py)
    become_method: str = "sudo"  # how kops becomes root there (su, doas: no sudoers rule)
    # windows: sshd runs the WinRM test host's emulated Windows of this kind (windows_openssh.py)
    windows: str | None = None

    def packages(self) -> dict[str, str]:
        """name -> version of the packages a fresh host of this kind has installed."""
        found: dict[str, str] = {}
        for layer in self.layers:
            for make in PACKAGE_TEMPLATES.get(layer, ()):
                spec = make()
                found.setdefault(spec.package, spec.version)
        return found

    def receipts(self) -> dict[str, str]:
        """Kaspersky pkgutil receipt id -> version of a fresh host of this (macOS) kind."""
        found: dict[str, str] = {}
        for layer in self.layers:
            found = {**macos.receipts_of(layer), **found}
        return found

    def launchd_jobs(self) -> dict[str, str]:
        """Kaspersky launchd label -> domain loaded on a fresh host of this (macOS) kind."""
        found: dict[str, str] = {}
        for layer in self.layers:
            found = {**macos.jobs_of(layer), **found}
        return found


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(CLEAN, description="no Kaspersky product"),
        Kind(ONE_PRODUCT, ("pkgs-kesl",), description="kesl installed"),
        Kind(
            SEVERAL_PRODUCTS,
            ("pkgs-several",),
            description="kesl, kesl-gui (depends on kesl) and klnagent64 installed",
        ),
        Kind(
            UNINSTALL_FAILS,
            ("pkgs-kesl-prerm-fails",),
            description="kesl installed whose prerm exits 1, so removing or purging it fails",
        ),
        Kind(KESS_GUI, ("pkgs-kess",), description="kess and kess-gui (depends on kess)"),
        Kind(KICS_GUI, ("pkgs-kics",), description="kics and kics-gui (depends on kics)"),
        Kind(
            UNKNOWN_KASPERSKY,
            ("pkgs-unknown",),
            description="klunlisted: a Kaspersky package no catalog entry names, owning files "
            "under /opt/kaspersky and /var/opt/kaspersky",
        ),
        Kind(
            OTHER_LINUX,
            ("pkgs-other-linux",),
            description="kav4ws (Anti-Virus for Linux Workstation) and kwts (Web Traffic Security)",
        ),
        Kind(
            UNREACHABLE,
            has_system=False,
            description="a reserved port on 127.0.0.1 with nothing listening: connection refused",
        ),
        Kind(
            SILENT,
            has_system=False,
            description="accepts TCP connections and never sends a byte",
        ),
        Kind(
            SLOW,
            ("pkgs-kesl",),
            description="like one_product, but every connection is answered only after a delay",
        ),
        Kind(
            CHANGED_HOSTKEY,
            ("pkgs-kesl",),
            description="like one_product; the fleet's known_hosts holds a different key for it",
        ),
        Kind(
            PASSWORD_ONLY,
            ("pkgs-kesl",),
            description="like one_product; sshd refuses keys and takes kops's password",
        ),
        Kind(JUMP, description="clean, and allows TCP forwarding: the jump host for behind_jump"),
        Kind(
            BEHIND_JUMP,
            ("pkgs-kesl",),
            description="like one_product; its address is a name only its jump host resolves",
        ),
        Kind(
            WRONG_SUDO_PASSWORD,
            (SUDO_PASSWORD_LAYER, "pkgs-kesl"),
            description="like one_product; sudo asks for kops's password and the inventory "
            "references a wrong one",
        ),
        Kind(
            SUDO_PASSWORD,
            (SUDO_PASSWORD_LAYER, "pkgs-kesl"),
            description="like one_product; sudo asks for kops's password and the inventory "
            "references the right one",
        ),
        Kind(
            NO_SUDO,
            (NO_SUDO_LAYER, "pkgs-kesl"),
            description="like one_product; kops is in no sudoers rule: it cannot become root",
        ),
        Kind(
            SU_PASSWORD,
            (SU_LAYER, NO_SUDO_LAYER, "pkgs-kesl"),
            description="like one_product; kops is in no sudoers rule, root has a password "
            "(kops's): kops becomes root with su",
            become_method="su",
        ),
        Kind(
            DOAS_PASSWORD,
            (DOAS_LAYER, NO_SUDO_LAYER, "pkgs-kesl"),
            description="like one_product; no sudoers rule, doas lets kops become root with "
            "kops's password",
            become_method="doas",
        ),
        Kind(
            DOAS_NOPASS,
            (DOAS_NOPASS_LAYER, NO_SUDO_LAYER, "pkgs-kesl"),
            description="like one_product; no sudoers rule, doas lets kops become root "
            "without a password (doas -n)",
            become_method="doas",
        ),
        Kind(
            MACOS_CLEAN,
            (macos.BASE_LAYER,),
            description="a Mac (shims) with no Kaspersky product",
            platform="macos",
        ),
        Kind(
            MACOS_KAV,
            (macos.KAV_LAYER, macos.BASE_LAYER),
            description="a Mac (shims) with Kaspersky Anti-Virus for Mac 11.3.0.520 and the "
            "Network Agent, each with a working UninstallScript",
            platform="macos",
        ),
        Kind(
            MACOS_UNINSTALL_FAILS,
            (macos.KAV_FAILS_LAYER, macos.BASE_LAYER),
            description="like macos_kav, but KAV's UninstallScript exits 1 with a message on "
            "stderr and changes nothing",
            platform="macos",
        ),
        Kind(
            MACOS_KES12,
            (macos_kes.KES_LAYER, macos.BASE_LAYER),
            description="a Mac (shims) with Kaspersky Endpoint Security for Mac 12.0.0.411: the "
            "app, its system extension activated, receipts, daemon, and the vendor kav CLI",
            platform="macos",
        ),
        Kind(
            MACOS_KES12_SYSEXT_STAYS,
            (macos_kes.KES_STAYS_LAYER, macos.BASE_LAYER),
            description="like macos_kes12, but kav uninstall deletes the app and files and "
            "leaves the system extension activated",
            platform="macos",
        ),
        Kind(
            MACOS_KES12_NO_UNINSTALLER,
            (macos_kes.KES_NO_CLI_LAYER, macos.BASE_LAYER),
            description="like macos_kes12, without the vendor kav CLI",
            platform="macos",
        ),
        Kind(
            MACOS_KES12_REBOOT,
            (macos_kes.KES_REBOOT_LAYER, macos.BASE_LAYER),
            description="like macos_kes12, but kav uninstall leaves the extension terminated, "
            "waiting to uninstall on reboot",
            platform="macos",
        ),
        Kind(
            WINDOWS_OPENSSH,
            (windows_openssh.LAYER,),
            description="Windows over OpenSSH (emulated cmd.exe): KES 12.4 and Network Agent 14",
            platform="windows",
            windows="kes_and_agent",
        ),
        Kind(
            WINDOWS_OPENSSH_PROTECTED,
            (windows_openssh.LAYER,),
            description="like windows_openssh; KES and the Network Agent each need their own "
            "uninstall password",
            platform="windows",
            windows="protected_kes",
        ),
        Kind(
            WINDOWS_OPENSSH_HANGING,
            (windows_openssh.LAYER,),
            description="Windows over OpenSSH with KES whose msiexec /x never ends",
            platform="windows",
            windows="hanging_uninstall",
        ),
    )
}
