"""What loaders produce before precedence is applied: values that remember where they were written.

Every loader fills a ``RawInventory``; several files are merged by absorbing one into another, and a
host or group defined twice is merged key by key, so that only a real disagreement is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import InventoryError


@dataclass(frozen=True)
class Origin:
    """Where something was written: a file and, when known, a 1-based line."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Owner:
    """Who a setting belongs to — a host, a group or the defaults — for locating error messages."""

    kind: str  # "host" | "group" | "defaults" | "top level"
    name: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name!r}" if self.name else self.kind

    def error(
        self, message: str, origin: Origin | None, field: str | None = None
    ) -> InventoryError:
        file = origin.file if origin else None
        line = origin.line if origin else None
        if self.kind == "host":
            return InventoryError(message, file=file, line=line, host=self.name, field=field)
        if field is not None:
            message = f"field {field!r}: {message}"
        return InventoryError(f"{self.label}: {message}", file=file, line=line)


@dataclass(frozen=True)
class Value:
    value: Any
    origin: Origin


def same(a: Any, b: Any) -> bool:
    """Equality that does not take ``1`` and ``True`` for the same setting."""
    return type(a) is type(b) and bool(a == b)


def shown(value: Any) -> str:
    text = value.describe() if hasattr(value, "describe") else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class Layer:
    """Settings (canonical keys such as ``port``, ``become.user``) and free vars at one level."""

    settings: dict[str, Value] = field(default_factory=dict)
    vars: dict[str, Value] = field(default_factory=dict)

    def absorb(self, other: Layer, owner: Owner) -> None:
        """Add ``other``'s entries; the same key with a different value is an error naming both."""
        for key, new in other.settings.items():
            old = self.settings.setdefault(key, new)
            if not same(old.value, new.value):
                raise owner.error(
                    f"defined twice with different values: {shown(old.value)} at {old.origin} and "
                    f"{shown(new.value)} at {new.origin}; make the definitions agree or keep one",
                    new.origin,
                    key,
                )
        for key, new in other.vars.items():
            old = self.vars.setdefault(key, new)
            # Free vars may hold anything, so the values themselves are not repeated here.
            if not same(old.value, new.value):
                raise owner.error(
                    f"var defined twice with different values, at {old.origin} and {new.origin}; "
                    "make the definitions agree or keep one",
                    new.origin,
                    key,
                )


@dataclass
class RawHost:
    name: str
    origin: Origin
    layer: Layer = field(default_factory=Layer)
    groups: dict[str, Origin] = field(default_factory=dict)  # membership declared by the host
    # The ``defaults`` of the native file that defined the host: each file's defaults apply to
    # that file's hosts, so a Linux and a Windows inventory can be merged with -i twice.
    defaults: Layer | None = None


@dataclass
class RawGroup:
    name: str
    origin: Origin
    layer: Layer = field(default_factory=Layer)
    hosts: dict[str, Origin] = field(default_factory=dict)  # membership declared by the group
    children: dict[str, Origin] = field(default_factory=dict)


@dataclass
class VarsFiles:
    """The group_vars/ and host_vars/ beside each inventory source, one mapping (group or host
    name → its files' vars) per source in the order given, and the playbook directory's (the
    current directory, as ansible-inventory reads it), as Ansible applies them."""

    groups: list[dict[str, Layer]] = field(default_factory=list)
    hosts: list[dict[str, Layer]] = field(default_factory=list)
    play_groups: dict[str, Layer] = field(default_factory=dict)
    play_hosts: dict[str, Layer] = field(default_factory=dict)

    def group_layers(self, groups: Sequence[str]) -> list[Layer]:
        """Ansible's order: every source's group_vars/all, the playbook's; then source by
        source the host's groups in the order given (by depth, then name), the playbook's. A
        host in no other group is in ``ungrouped``."""
        named = [name for name in groups if name not in ("all", "ungrouped")] or ["ungrouped"]
        layers = [source["all"] for source in [*self.groups, self.play_groups] if "all" in source]
        for source in [*self.groups, self.play_groups]:
            layers += [source[name] for name in named if name in source]
        return layers

    def host_layers(self, name: str) -> list[Layer]:
        return [source[name] for source in [*self.hosts, self.play_hosts] if name in source]

    def of_group(self, name: str) -> list[Layer]:
        return [source[name] for source in [*self.groups, self.play_groups] if name in source]


@dataclass
class RawInventory:
    files: list[str] = field(default_factory=list)
    hosts: dict[str, RawHost] = field(default_factory=dict)
    groups: dict[str, RawGroup] = field(default_factory=dict)
    vars_files: VarsFiles = field(default_factory=VarsFiles)

    def host(self, name: str, origin: Origin) -> RawHost:
        return self.hosts.setdefault(name, RawHost(name, origin))

    def group(self, name: str, origin: Origin) -> RawGroup:
        return self.groups.setdefault(name, RawGroup(name, origin))

    def absorb(self, other: RawInventory) -> None:
        """Merge another file's content into this one (the order of first definition is kept)."""
        self.files.extend(other.files)
        for raw_host in other.hosts.values():
            host = self.host(raw_host.name, raw_host.origin)
            host.layer.absorb(raw_host.layer, Owner("host", host.name))
            if host.defaults is None:
                host.defaults = raw_host.defaults
            for name, origin in raw_host.groups.items():
                host.groups.setdefault(name, origin)
        for raw_group in other.groups.values():
            group = self.group(raw_group.name, raw_group.origin)
            group.layer.absorb(raw_group.layer, Owner("group", group.name))
            for name, origin in raw_group.hosts.items():
                group.hosts.setdefault(name, origin)
            for name, origin in raw_group.children.items():
                group.children.setdefault(name, origin)
