"""Where an SSH host really is: the inventory first, then ``~/.ssh/config``, then jump hosts.

The inventory is explicit and wins. ``~/.ssh/config`` (matched against the address kremove would
dial, as ``ssh ADDRESS`` would) fills in what the inventory left at its default: HostName when the
address is just the host's name, Port when it is 22, User, IdentityFile, and ProxyJump when the
inventory names no ``jump`` and its ssh arguments no ProxyJump (``Host.proxy_jump``, from
Ansible's ``ansible_ssh_common_args``). A ProxyJump hop that is not an inventory host is reached
with its own ``~/.ssh/config`` settings, else the target's user and key.

Nothing in the config runs: a lookup that would run a ``Match exec`` command is refused (an input
error naming the config line), and only host names and IP addresses are looked up at all.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import paramiko

from orchestrator.errors import InputError
from orchestrator.inventory.addresses import address_problem
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


class _MatchExecReached(Exception):
    def __init__(self, line: int | None) -> None:
        super().__init__(line)
        self.line = line


class _NoExecConfig(paramiko.SSHConfig):  # type: ignore[misc]  # paramiko has no type hints
    """paramiko's parser and matcher, except that reaching a ``Match exec`` raises instead of
    running its command: the command would run with the operator's rights, before any host key
    check, with the looked-up name substituted for ``%h``."""

    def parse(self, file_obj: Iterable[str]) -> None:
        lines = list(file_obj)
        super().parse(lines)
        # paramiko keeps no line numbers: the k-th Host or Match line opens block k (block 0
        # holds the settings before any of them).
        heads = [n for n, text in enumerate(lines, start=1) if _HEAD.match(text)]
        for number, block in zip(heads, self._config[1:], strict=False):
            for criterion in block.get("matches", ()):
                criterion["line"] = number

    def _does_match(
        self,
        match_list: list[dict[str, Any]],
        target_hostname: str,
        canonical: bool,
        final: bool,
        options: Any,
    ) -> Any:
        for at, criterion in enumerate(match_list):
            if criterion["type"] != "exec":
                continue
            # Criteria are tried in order and the first that fails ends the test, as in OpenSSH:
            # an exec after a failing "host" criterion is never reached.
            before = match_list[:at]
            if before and not super()._does_match(
                before, target_hostname, canonical, final, options
            ):
                return False
            raise _MatchExecReached(criterion.get("line"))
        return super()._does_match(match_list, target_hostname, canonical, final, options)


# A Host or Match line, as paramiko's parser recognises one (keyword, then space or '=').
_HEAD = re.compile(r"\s*(?:host|match)(?:\s*=\s*|\s+)\S", re.IGNORECASE)


class SshConfig:
    """A parsed ``~/.ssh/config`` (or none). Lookups never run ``Match exec`` commands: a lookup
    that reaches one is an input error naming its line."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._config: paramiko.SSHConfig | None = None
        self._cache: dict[str, dict[str, Any]] = {}
        if path is not None and path.is_file():
            try:
                with path.open(encoding="utf-8") as stream:
                    self._config = _NoExecConfig.from_file(stream)
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
            problem = address_problem(name)
            if problem is not None:  # the inventory checks this; a Host made in code may not
                raise InputError(f"{self.path}: looking up {name!r}: it {problem}")
            try:
                self._cache[name] = dict(self._config.lookup(name))
            except _MatchExecReached as reached:
                where = f"{self.path}:{reached.line}" if reached.line else str(self.path)
                raise InputError(
                    f"{where}: Match exec would run a command to look up {name!r}, and kremove "
                    "runs no commands from an SSH config; set KREMOVE_SSH_CONFIG to a config "
                    "without Match exec (or /dev/null for none)"
                ) from None
            except Exception as exc:  # paramiko raises bare errors for a bad Match
                raise InputError(f"{self.path}: looking up {name!r}: {_short(exc)}") from None
        return self._cache[name]


def route(host: Host, inventory: Mapping[str, Host], config: SshConfig) -> Route:
    """The endpoints to pass through to reach ``host``; a loop or an overlong chain is an error."""
    hops: list[Endpoint] = []
    seen = {host.name}
    target = _endpoint(host, config)
    jump_spec = host.jump or host.proxy_jump or _proxyjump(host, config)
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
            current = jump_host.jump or jump_host.proxy_jump or _proxyjump(jump_host, config)
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
    problem = address_problem(host.address)
    if problem is not None:  # the inventory refuses these; a Host made elsewhere may not be checked
        where = f"{host.source}: " if host.source else ""
        raise InputError(f"{where}host {host.name!r}: address {host.address!r} {problem}")
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
        proxy_jump=None,
        source=str(config.path or ""),  # what is wrong with it is in the ssh config
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
    problem = address_problem(address)
    if problem is not None:
        raise InputError(f"host {owner!r}: ProxyJump {spec!r}: {address!r} {problem}")
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


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
