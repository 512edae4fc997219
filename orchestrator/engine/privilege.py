"""Whether a host's removal has the privilege it needs, decided from the privilege probe.

Removal needs root (Windows: an elevated administrator). Where the login is not root and the
inventory and the command line say nothing about become, kremove becomes root with sudo when
``sudo -n`` lets it, as Ansible sites expect (their become lives in the playbook). With become
method su or doas the probe asks that tool instead (su always wants the password of the user
it becomes; doas -n tells a rule with nopass from one that wants a password); where the
privilege is missing, the host is refused before any change, with the setting that fixes it.
The same verdict is what ``plan`` shows, so a plan never promises a removal the run refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.inventory.model import Host
from orchestrator.inventory.overrides import SUDO_TRANSPORTS, from_cli
from orchestrator.playbook.parsers.privilege import Privilege

EVENT = "privilege"  # the ledger event recording each host's verdict

_PASSWORD_HINT = (
    "pass -K (or --become-password-file FILE) or set ansible_become_password "
    "(kremove YAML: become: {password_env: VAR})"
)


def _login_hint(method: str) -> str:
    return f"log in as root or as a user {method} lets become root (-u USER, ansible_user)"


@dataclass(frozen=True)
class Verdict:
    """``ok``: a removal can run; ``become``: its become steps go through the become method;
    ``shown``: what plan prints ("root", "sudo (passwordless, automatic)", "su (password from
    -K)", "MISSING: …")."""

    ok: bool
    become: bool
    shown: str
    login: str = ""
    access: str = "unknown"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "become": self.become,
            "shown": self.shown,
            "login": self.login,
            "access": self.access,
        }

    @property
    def refusal(self) -> str:
        """The reason a refused host ends with."""
        return f"refused before any change: privilege {self.shown}"


def unprobed(host: Host) -> Verdict:
    """No probe ran (a --playbooks detect playbook without the privilege step): become as the
    inventory or -b says, never by default, as before the probe existed."""
    become = host.become.enabled and not host.become.auto
    return Verdict(True, become, "unknown (the detect playbook has no privilege step)")


def decide(host: Host, probe: Privilege) -> Verdict:
    """The verdict for ``host`` from what its privilege probe found."""
    ok, become, shown = _judge(host, probe)
    return Verdict(ok, become, shown if ok else f"MISSING: {shown}", probe.login, probe.access)


# (ok, become, what is shown): the pieces of a verdict.
_Judged = tuple[bool, bool, str]


def _judge(host: Host, probe: Privilege) -> _Judged:
    login, access = probe.login, probe.access
    if access == "root":
        return True, False, "root"
    if access == "admin":
        return True, False, f"administrator (login '{login}')"
    if access == "not_admin":
        return (
            False,
            False,
            f"login '{login}' is not an elevated administrator ({probe.detail}); Windows has no "
            "become: log in as a member of Administrators (-u USER, ansible_user)",
        )
    return _sudo(host, probe)


def _sudo(host: Host, probe: Privilege) -> _Judged:
    """A login that is not root: what its become method (sudo, su, doas), and the settings
    about it, make of it."""
    become = host.become
    method = become.method
    not_root = f"login '{probe.login}' is not root"
    if host.transport not in SUDO_TRANSPORTS:
        return False, False, f"{not_root} and {host.transport} has no become"
    if not become.enabled:
        return (
            False,
            False,
            f"{not_root} and the inventory turns become off; set become: true "
            f"(ansible_become=true) or {_login_hint(method)}",
        )
    if host.transport == "local" and method != "sudo":
        return (
            False,
            False,
            f"{not_root} and the local transport becomes root with sudo only, not {method}; "
            "run kremove as root",
        )
    if become.user != "root":
        return (
            False,
            False,
            f"{not_root} and becomes '{become.user}', but removal needs root; set the become "
            "user to root (--become-user root, ansible_become_user=root)",
        )
    if probe.access == "nopasswd":
        automatic = ", automatic" if become.auto else ""
        return True, True, f"{method} (passwordless{automatic})"
    if probe.access == "password":
        return _with_password(host, not_root)
    why = (
        f"the host has no {method}"
        if probe.access == "missing"
        else f"{method} refuses it: {probe.detail}"
    )
    return False, False, f"{not_root} and {why}; {_login_hint(method)}"


def _with_password(host: Host, not_root: str) -> _Judged:
    ref = host.become.password
    method = host.become.method
    if ref is None:
        wants = {
            "su": "su asks for the password of the user it becomes",
            "doas": "doas -n wants a password",
        }.get(method, "sudo -n wants a password (or sudo does not allow this login)")
        return False, False, f"{not_root} and {wants} — " + _PASSWORD_HINT
    if host.transport == "local":
        return (
            False,
            False,
            f"{not_root} and sudo needs a password, which the local transport cannot give; "
            "run kremove as root or allow this user sudo without a password",
        )
    if from_cli(host, "become.password"):
        source = "-K" if ref.prompt else "--become-password-file"
    else:
        source = "the inventory's " + ref.describe()
    return True, True, f"{method} (password from {source})"
