"""The ways kremove reaches a host, one line each: the one table every layer reads.

The inventory reads names, aliases and default ports from here; the engine the platform a host
is assumed to run; the connector which module opens a kind's pool of connections. Adding a
transport is its module (with ``open_pool``) and one line in ``KINDS`` (and the inventory keys
of its own settings, if it has any). The table is in-tree on purpose: a removal tool never
loads third-party code because a name appeared in an inventory.

This module imports nothing of kremove's, so the inventory can read it without the transports.
"""

from __future__ import annotations

import platform as _platform
from collections.abc import Mapping
from dataclasses import dataclass

CONTROLLER = "controller"  # ``Kind.assumed``: the platform kremove itself runs on


@dataclass(frozen=True)
class Kind:
    """One transport. ``platform`` is what every host reached this way runs (the inventory
    records it); ``assumed`` what a host is taken to run when neither it nor ``platform`` says."""

    name: str
    module: str  # defines ``open_pool(setup: PoolSetup) -> Pool`` (transports/connector.py)
    default_port: int
    platform: str | None = None
    assumed: str = "linux"
    aliases: tuple[str, ...] = ()  # other spellings inventories use (Ansible's)


KINDS: Mapping[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("ssh", "orchestrator.transports.ssh", 22, aliases=("paramiko", "smart")),
        Kind("winrm", "orchestrator.transports.winrm", 5986, platform="windows"),
        Kind("psrp", "orchestrator.transports.psrp", 5986, platform="windows"),
        Kind("local", "orchestrator.transports.local", 0, assumed=CONTROLLER),
    )
}


def names() -> tuple[str, ...]:
    return tuple(KINDS)


def aliases() -> dict[str, str]:
    return {alias: kind.name for kind in KINDS.values() for alias in kind.aliases}


# Shell types that only Windows has: over SSH they make a host Windows (its OpenSSH server).
WINDOWS_SHELLS = frozenset({"cmd", "powershell"})


def implied_platform(transport: str, shell_type: str | None) -> str | None:
    """The platform a host's transport or shell type implies, None when neither does: what the
    inventory records for a host that does not name its platform."""
    kind = KINDS.get(transport)
    if kind is not None and kind.platform:
        return kind.platform
    return "windows" if shell_type in WINDOWS_SHELLS else None


def platform_of(transport: str, platform: str | None, shell_type: str | None = None) -> str:
    """The platform a host runs: its own setting, else what its transport or shell type
    implies, else the assumption."""
    if platform:
        return platform
    implied = implied_platform(transport, shell_type)
    if implied:
        return implied
    kind = KINDS.get(transport)
    if kind is None:
        return "linux"
    if kind.assumed == CONTROLLER:
        return {"Darwin": "macos", "Windows": "windows"}.get(_platform.system(), "linux")
    return kind.assumed
