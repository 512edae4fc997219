"""``ansible_ssh_common_args`` / ``ansible_ssh_extra_args``: the jump host they name, and a
warning for every argument kremove does not follow.

Ansible appends these to the ``ssh`` command line. kremove speaks SSH itself (paramiko), so it
follows what decides *where* a connection goes — ``-o ProxyJump=[user@]host[:port][,...]``,
``-J ...`` and ``-o ProxyCommand="ssh -W %h:%p [-p PORT] [-l USER] [user@]host"`` — and says so
for everything else: a ProxyCommand it cannot follow is an error (the host would be dialled
directly), any other argument one warning naming it. Settings that switch off host key checks
(``StrictHostKeyChecking=no``, ``UserKnownHostsFile=/dev/null``) are never followed; the warning
names kremove's safe equivalent, in the wording ``hostkey_warning`` gives every such place
(ansible.cfg's ``host_key_checking`` too).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from orchestrator.inventory.addresses import address_problem
from orchestrator.inventory.settings import show

VARIABLES = ("ansible_ssh_common_args", "ansible_ssh_extra_args")
# Options that only weaken host key checks: never followed, always said.
HOSTKEY_OPTIONS = {"stricthostkeychecking": ("no", "off", "accept-new"), "userknownhostsfile": ()}
# ssh flags that take a value, to keep it with its flag (ssh(1) SYNOPSIS).
_WITH_VALUE = frozenset("BbcDEeFIiJLlmOopQRSWw")
PROXY_FORMS = (
    "kremove follows -o ProxyJump=[user@]host[:port], -J [user@]host[:port] and "
    "-o ProxyCommand='ssh -W %h:%p [user@]host'"
)


def hostkey_warning(setting: str, where: str) -> str:
    """The one wording for a setting that would switch off SSH host key checks."""
    return (
        f"{where}: {setting} is not followed: kremove always checks SSH host keys against "
        "known_hosts and its own pins; to accept and pin the keys of hosts it has not seen "
        "yet, pass --accept-new-hostkeys"
    )


class SshArgsError(ValueError):
    """An argument that cannot be followed and must not be ignored; the caller says where."""


@dataclass
class SshArgs:
    """What one host's ssh arguments say: its jump hosts (a ProxyJump spec), and warnings."""

    proxy_jump: str | None = None
    warnings: list[str] = field(default_factory=list)
    decided: bool = False  # a jump (or none) was given: ssh keeps an option's first value

    def jump(self, spec: str | None) -> None:
        if spec is None or self.decided:
            return
        self.decided = True
        self.proxy_jump = None if spec.lower() == "none" else check_jumps(spec)


def parse(text: str, where: str, user: str | None, found: SshArgs | None = None) -> SshArgs:
    """Read one variable's value; ``where`` ("inv.yml:3: ansible_ssh_common_args") starts each
    warning; ``user`` stands for ``%r`` in a ProxyCommand."""
    found = found if found is not None else SshArgs()
    words = _split(text)
    at = 0
    while at < len(words):
        flag, value, at = _next(words, at)
        if flag == "-o":
            _option(value, where, user, found)
        elif flag == "-J":
            found.jump(value)
        else:
            shown = flag if value is None else f"{flag} {value}"
            found.warnings.append(_ignored(shown, where))
    return found


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise SshArgsError(f"cannot be split as a shell would ({exc}); check the quotes") from None


def _next(words: list[str], at: int) -> tuple[str, str | None, int]:
    """The flag at ``at`` and its value (attached, as in -oX=Y, or the next word)."""
    word = words[at]
    if len(word) >= 2 and word[0] == "-" and word[1] in _WITH_VALUE:
        if len(word) > 2:
            return word[:2], word[2:], at + 1
        if at + 1 >= len(words):
            raise SshArgsError(f"{word} needs a value")
        return word, words[at + 1], at + 2
    return word, None, at + 1


def _option(text: str | None, where: str, user: str | None, found: SshArgs) -> None:
    assert text is not None
    name, value = _key_value(text)
    key = name.lower()
    if key == "proxyjump":
        found.jump(value)
    elif key == "proxycommand":
        found.jump(proxy_command(value, user, where, found) if value.lower() != "none" else value)
    elif key in HOSTKEY_OPTIONS:
        weakening = HOSTKEY_OPTIONS[key]
        if (weakening and value.lower() in weakening) or value == "/dev/null":
            found.warnings.append(hostkey_warning(f"{name}={value}", where))
        else:
            found.warnings.append(_ignored(f"-o {name}={value}", where))
    else:
        found.warnings.append(_ignored(f"-o {text}", where))


def _key_value(text: str) -> tuple[str, str]:
    """``Name=value`` or ``Name value``, as ssh_config reads an option."""
    stripped = text.strip()
    for at, char in enumerate(stripped):
        if char == "=" or char.isspace():
            value = stripped[at + 1 :].strip().lstrip("=").strip()
            return stripped[:at], value
    raise SshArgsError(f"-o {show(text)} has no value")


def proxy_command(command: str, user: str | None, where: str, found: SshArgs) -> str:
    """The jump a ``ssh -W %h:%p [options] [user@]host`` ProxyCommand makes, as a ProxyJump spec
    (``[user@]host[:port]``, with ``-J`` hops before it); anything else is an SshArgsError.
    Its ``-o`` options and keys are said like the arguments around it."""
    words = _split(command)
    if not words or words[0].rsplit("/", 1)[-1] != "ssh":
        raise SshArgsError(f"ProxyCommand {show(command)} is not understood; {PROXY_FORMS}")
    forward, port, login, hops, host = None, None, None, None, None
    at = 1
    while at < len(words):
        flag, value, at = _next(words, at)
        if flag == "-W":
            forward = value
        elif flag == "-p":
            port = value
        elif flag == "-l":
            login = value
        elif flag == "-J":
            hops = value
        elif flag == "-o":
            _option(value, f"{where}: ProxyCommand", user, found)
        elif flag in ("-i", "-F"):
            found.warnings.append(_ignored(f"{flag} {value}", f"{where}: ProxyCommand"))
        elif not flag.startswith("-") and host is None:
            host = flag
        elif not flag.startswith("-"):  # a remote command: kremove cannot run it on the way
            raise SshArgsError(
                f"ProxyCommand {show(command)}: {flag!r} is not followed; {PROXY_FORMS}"
            )
    if forward not in ("%h:%p", "[%h]:%p") or host is None:
        raise SshArgsError(f"ProxyCommand {show(command)} is not understood; {PROXY_FORMS}")
    if user is not None:
        host = host.replace("%r", user)
    if login is not None and "@" not in host:
        host = f"{login}@{host}"
    if port is not None:
        host = f"[{host}]:{port}" if ":" in host.rpartition("@")[2] else f"{host}:{port}"
    return f"{hops},{host}" if hops else host


def check_jumps(spec: str) -> str:
    """A ProxyJump value (``[user@]host[:port]``, comma separated) whose every host is a host
    name or an IP address, as every address kremove dials (docs/security.md H1)."""
    for hop in (part.strip() for part in spec.split(",")):
        text = hop.removeprefix("ssh://").rpartition("@")[2]
        if text.startswith("["):
            address, _, rest = text[1:].partition("]")
            port = rest.removeprefix(":")
        elif text.count(":") == 1:
            address, _, port = text.partition(":")
        else:
            address, port = text, ""
        problem = address_problem(address) if address else "names no host"
        if problem is not None:
            raise SshArgsError(f"jump host {show(hop)}: {address!r} {problem}")
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise SshArgsError(f"jump host {show(hop)}: port {port!r} is not 1 to 65535")
    return spec


def _ignored(arg: str, where: str) -> str:
    return f"{where}: ssh argument {show(arg)} is not understood by kremove and is ignored; " + (
        f"{PROXY_FORMS} (and no other ssh argument)"
    )
