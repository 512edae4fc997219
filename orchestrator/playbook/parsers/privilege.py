"""The privilege probes: who the login is on the host and whether it can become root (POSIX, the
records playbooks/linux/privilege.sh.j2 prints) or is an administrator (Windows, ``whoami`` and
``whoami /groups /fo csv /nh`` as playbooks/windows/privilege.cmd.j2 runs them).

A probe's answer is a fact about the login, not a finding: the engine decides from it whether
the removal has the privilege it needs (engine/privilege.py).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator.playbook.parsers.common import ParseError
from orchestrator.transports.base import CommandResult

# root: the login is root. nopasswd: sudo to root works without a password. password: sudo
# wants one. denied: sudo refuses this login. missing: no sudo on the host. admin / not_admin: a
# Windows login in, or not in, the enabled Administrators group of a full (high) token.
Access = Literal["root", "nopasswd", "password", "denied", "missing", "admin", "not_admin"]

ADMINISTRATORS_SID = "S-1-5-32-544"
# Integrity levels at or above High: an elevated (not UAC-filtered) token.
ELEVATED_LEVELS = frozenset({"S-1-16-12288", "S-1-16-16384", "S-1-16-20480"})
# sudo's sentences (run with LC_ALL=C): what each refusal means.
_PASSWORD_WANTED = ("password is required", "a terminal is required")
_DENIED = ("may not run sudo", "not in the sudoers", "not allowed to execute", "not allowed to run")
# doas's (OpenBSD's, as Debian ships it): -n and a rule that wants a password; no rule for it.
_DOAS_PASSWORD = ("authentication required", "a tty is required")
_DOAS_DENIED = ("not permitted", "not enabled")
TOOLS = ("sudo", "doas", "su")  # the become tool whose record the probe prints


@dataclass(frozen=True)
class Privilege:
    """What the probe learned: the login, and how it stands with root or Administrators."""

    login: str
    access: Access
    detail: str = ""  # sudo's or whoami's own words, for the reason shown

    def to_dict(self) -> dict[str, Any]:
        return {"login": self.login, "access": self.access, "detail": self.detail}


ProbeParser = Callable[[CommandResult], Privilege]


def posix_privilege(result: CommandResult) -> Privilege:
    """Tab-separated records: ``login NAME UID``, then unless UID is 0 one record of the host's
    become tool: ``sudo missing``, ``sudo ok UID`` (uid after ``sudo -n``) or ``sudo refused
    MESSAGE``, followed by ``sudo_list MESSAGE`` (the last line of ``sudo -n -l``); ``doas
    missing|ok UID|refused MESSAGE`` (``doas -n``); ``su missing|password``."""
    records = _records(result.stdout)
    login = records.get("login")
    if not login or len(login) < 2:
        raise ParseError("the privilege probe printed no login record; output was cut short")
    name, uid = login[0] or "?", login[1].strip()
    if uid == "0":
        return Privilege(name, "root")
    tool = next((tool for tool in TOOLS if records.get(tool)), None)
    if tool is None:
        raise ParseError(f"the privilege probe says login {name!r} is uid {uid}, then stops")
    record = records[tool]
    if record[0] == "missing":
        return Privilege(name, "missing", f"{tool} is not installed")
    if tool == "su":  # su always asks the password of the user it becomes
        return Privilege(name, "password", "su asks for the password of the user it becomes")
    if record[0] == "ok":
        after = record[1].strip() if len(record) > 1 else ""
        if after == "0":
            return Privilege(name, "nopasswd")
        return Privilege(name, "denied", f"{tool} -n ran as uid {after or '?'}, not root")
    said = record[1].strip() if len(record) > 1 else ""
    if tool == "doas":
        return Privilege(name, _doas_refusal(said), said)
    listed = " ".join(records.get("sudo_list", [])).strip()
    return Privilege(name, _refusal(said, listed), said or listed)


def _doas_refusal(said: str) -> Access:
    words = said.lower()
    if any(sentence in words for sentence in _DOAS_DENIED):
        return "denied"
    return "password" if any(s in words for s in _DOAS_PASSWORD) else "denied"


def _refusal(said: str, listed: str) -> Access:
    """sudo -n refused: a password it would take, or a login it never lets through."""
    words = f"{said} {listed}".lower()
    if any(sentence in words for sentence in _DENIED):
        return "denied"
    if any(sentence in said.lower() for sentence in _PASSWORD_WANTED):
        return "password"
    return "denied"


def _records(text: str) -> Mapping[str, list[str]]:
    """Each record's fields by its tag; a later record of a tag replaces an earlier one."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        tag, _, rest = line.rstrip("\r").partition("\t")
        if tag in ("login", "sudo_list", *TOOLS):
            found[tag] = rest.split("\t") if rest else []
    return found


def windows_privilege(result: CommandResult) -> Privilege:
    """``whoami`` (DOMAIN\\user), then ``whoami /groups /fo csv /nh``: one CSV row per group of
    the token, "name","type","SID","attributes". Administrator: S-1-5-32-544 enabled (not
    "deny only", as UAC leaves it in a filtered token) and a High integrity label."""
    lines = [ln.strip() for ln in result.stdout.replace("\r", "").splitlines() if ln.strip()]
    if not lines:
        raise ParseError("the privilege probe printed nothing; whoami did not run")
    login = lines[0]
    rows = [row for row in csv.reader(lines[1:]) if len(row) >= 4]
    if not rows:
        raise ParseError(f"the privilege probe printed no groups for {login!r}")
    admins = [row for row in rows if row[2].strip().upper() == ADMINISTRATORS_SID]
    enabled = any(
        "enabled group" in row[3].lower() and "deny only" not in row[3].lower() for row in admins
    )
    elevated = any(row[2].strip().upper() in ELEVATED_LEVELS for row in rows)
    if enabled and elevated:
        return Privilege(login, "admin")
    if not admins:
        why = "not a member of Administrators"
    elif not enabled:
        why = "Administrators is for deny only (a UAC-filtered token)"
    else:
        why = "the token is not elevated (no High integrity level)"
    return Privilege(login, "not_admin", why)
