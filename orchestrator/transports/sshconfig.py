"""Where an SSH host really is: the inventory first, then ``~/.ssh/config``, then jump hosts.

The inventory is explicit and wins. ``~/.ssh/config`` (matched against the address kremove would
dial, as ``ssh ADDRESS`` would) fills in what the inventory left at its default: HostName when the
address is just the host's name, Port when it is 22, User, IdentityFile, and ProxyJump when the
inventory names no ``jump``. A ProxyJump hop that is not an inventory host is reached with its own
``~/.ssh/config`` settings, else the target's user and key.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import paramiko

from orchestrator.errors import InputError
from orchestrator.inventory.model import Host

MAX_HOPS = 8


@dataclass(frozen=True)
class Endpoint:
    """One SSH server to authenticate to: a target or a hop on the way to one."""

    label: str  # inventory name, or the ProxyJump spec that produced it
    address: str
    port: int
    user: str
    key_files: tuple[str, ...]  # candidates, in order
    host: Host  # the inventory entry whose credentials apply (a synthetic one for ad-hoc hops)
    known_hosts: str | None

    @property
    def where(self) -> str:
        return f"{self.user}@{self.address}:{self.port}"


@dataclass(frozen=True)
class Route:
    """The target and the hops before it, nearest first."""

    target: Endpoint
    hops: tuple[Endpoint, ...]


class SshConfig:
    """A parsed ``~/.ssh/config`` (or none). Lookups never run ``Match exec`` commands twice."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._config: paramiko.SSHConfig | None = None
        self._cache: dict[str, dict[str, Any]] = {}
        if path is not None and path.is_file():
            try:
                self._config = paramiko.SSHConfig.from_path(str(path))
            except (OSError, UnicodeDecodeError, ValueError, paramiko.SSHException) as exc:
                raise InputError(f"{path}: cannot be used as an SSH config: {exc}") from None

    @classmethod
    def default(cls) -> SshConfig:
        override = os.environ.get("KREMOVE_SSH_CONFIG")
        return cls(Path(override).expanduser() if override else Path("~/.ssh/config").expanduser())

    def lookup(self, name: str) -> dict[str, Any]:
        if self._config is None:
            return {}
        if name not in self._cache:
            try:
                self._cache[name] = dict(self._config.lookup(name))
            except Exception as exc:  # paramiko raises bare errors for a bad Match
                raise InputError(f"{self.path}: looking up {name!r}: {exc}") from None
        return self._cache[name]


def route(host: Host, inventory: Mapping[str, Host], config: SshConfig) -> Route:
    """The endpoints to pass through to reach ``host``; a loop or an overlong chain is an error."""
    hops: list[Endpoint] = []
    seen = {host.name}
    target = _endpoint(host, config)
    jump_spec = host.jump or _proxyjump(host, config)
    current: str | None = jump_spec
    via_inventory = host.jump is not None
    owner = host
    while current:
        if len(hops) >= MAX_HOPS:
            raise InputError(f"host {host.name!r}: more than {MAX_HOPS} jump hosts; check jump")
        specs = [s.strip() for s in current.split(",") if s.strip()]
        if via_inventory:
            jump_host = inventory.get(current)
            if jump_host is None:
                raise InputError(f"host {owner.name!r}: jump host {current!r} is not in inventory")
            if jump_host.name in seen:
                raise InputError(f"host {host.name!r}: jump hosts loop through {jump_host.name!r}")
            seen.add(jump_host.name)
            hops.insert(0, _endpoint(jump_host, config))
            owner = jump_host
            current = jump_host.jump or _proxyjump(jump_host, config)
            via_inventory = jump_host.jump is not None
            continue
        # ProxyJump: "a,b,c" means a first; an inventory name is used as that host.
        chain = []
        for spec in specs:
            known = inventory.get(spec)
            chain.append(
                _endpoint(known, config) if known is not None else _adhoc(spec, owner, config)
            )
        hops[:0] = chain
        break
    return Route(target, tuple(hops))


def _endpoint(host: Host, config: SshConfig) -> Endpoint:
    found = config.lookup(host.address)
    address = host.address
    if host.address == host.name and "hostname" in found:
        address = found["hostname"]
    port = host.port
    if port == 22 and "port" in found:
        port = _port(found["port"], config, host.name)
    user = host.user or found.get("user") or getpass.getuser()
    if host.key_file:
        key_files: tuple[str, ...] = (host.key_file,)
    else:
        key_files = tuple(found.get("identityfile", ()))
    known = host.known_hosts or None
    return Endpoint(host.name, address, port, user, key_files, host, known)


def _adhoc(spec: str, owner: Host, config: SshConfig) -> Endpoint:
    user, address, port = _parse_jump(spec, owner.name)
    found = config.lookup(address)
    address = found.get("hostname", address)
    if port is None:
        port = _port(found["port"], config, spec) if "port" in found else 22
    synthetic = replace(
        owner,
        name=spec,
        address=address,
        port=port,
        user=user or found.get("user") or owner.user,
        key_file=(found.get("identityfile") or [owner.key_file])[0],
        jump=None,
    )
    return _endpoint(synthetic, SshConfig(None))


def _proxyjump(host: Host, config: SshConfig) -> str | None:
    value = config.lookup(host.address).get("proxyjump")
    if not value or str(value).lower() == "none":
        return None
    return str(value)


def _parse_jump(spec: str, owner: str) -> tuple[str | None, str, int | None]:
    text = spec.removeprefix("ssh://")
    user = None
    if "@" in text:
        user, _, text = text.rpartition("@")
    port = None
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], None, owner)
    elif text.count(":") == 1:
        address, _, raw = text.partition(":")
        port = _port(raw, None, owner)
    else:
        address = text
    if not address:
        raise InputError(f"host {owner!r}: ProxyJump {spec!r} names no host")
    return user, address, port


def _port(value: object, config: SshConfig | None, host: str) -> int:
    try:
        port = int(str(value))
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        where = f"{config.path}: " if config is not None and config.path else ""
        raise InputError(f"{where}host {host!r}: port {value!r} is not a number from 1 to 65535")
    return port
