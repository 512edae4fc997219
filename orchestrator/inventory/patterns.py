"""Ansible host patterns as ansible-core 2.18 reads them: how a pattern string splits into terms,
what a subscript is, and in which order a group lists its hosts (what ``web[0]`` indexes).

Facts checked against ansible-core's ``inventory/manager.py``, ``inventory/group.py`` and
``parsing/utils/addresses.py`` and against the real ``ansible --list-hosts``; no code is taken from
them. ``limit.py`` evaluates the terms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from orchestrator.errors import InventoryError
from orchestrator.inventory.model import Inventory

# Without a comma, a pattern splits on colons and whitespace, a bracketed part staying whole.
COLON_TERM = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
BALANCED = re.compile(r"(?:[^\[\]]|\[[^\]]*\])*")
# What ansible-core takes for one host (a name, an IPv4 or IPv6 address, with inventory ranges
# like [01:20] or [a:f] and an optional :port); such a string is one term although it has colons.
NAME_RANGE = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"
LABEL = rf"(?:\w|{NAME_RANGE})(?:[\w-]|{NAME_RANGE})*(?<![_-])"
HOST_NAME = re.compile(rf"{LABEL}(?:\.{LABEL})*", re.IGNORECASE)
HEX = r"(?:[0-9a-f]{1,4}|\[[0-9a-f]+:[0-9a-f]+(?::[0-9]+)?\])"  # or a range of them
# ansible-core's IPv6 expression anchors only its first alternative's start and its last's end,
# so the others match a prefix: "fe80::1:!fe80::2" is one (unmatchable) term, not two.
IPV6_START = re.compile(
    rf"(?:{HEX}:){{7}}{HEX}|(?:{HEX}:){{1,6}}:|{HEX}?::|(?:0:){{6}}(?:{HEX}\.){{3}}{HEX}",
    re.IGNORECASE,
)
IPV6_WHOLE = re.compile(rf"(?:0:){{5}}ffff:(?:{HEX}\.){{3}}{HEX}", re.IGNORECASE)
BRACKETED_PORT = re.compile(r"\[(.+)\]:([0-9]+)")
PORT = re.compile(r"((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)")
# name[i], name[-i], name[i:j], name[i:] (and the removed name[i-j]); j is included.
SUBSCRIPT = re.compile(r"(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]")
# What looks like a subscript but is not one to ansible-core ([:3], [-2:], [1:5:2]): a glob there.
NEAR_SUBSCRIPT = re.compile(r"(.+)\[(-?[0-9]*:-?[0-9]*(?::-?[0-9]*)?)\]")
SUBSCRIPT_FORMS = "subscripts are [N], [-N], [N:M] (M included) and [N:]"
IMPLICIT = ("all", "ungrouped")


@dataclass(frozen=True)
class Subscript:
    """``[start]`` (``stop`` None) or ``[start:end]``, ``stop`` being end + 1 (-1: to the end)."""

    start: int
    stop: int | None = None

    def apply(self, hosts: list[str]) -> list[str]:
        """The hosts taken; IndexError for a single position past either end."""
        if self.stop is None:
            return [hosts[self.start]]
        return hosts[self.start : None if self.stop == -1 else self.stop]


def split(text: str, limit: str) -> list[str]:
    """The terms of ``text``: on commas if it has one, else whole if it is one host or address
    (IPv6, ranges, :port), else on colons and whitespace. ``limit`` names the whole for errors."""
    if "," in text:
        parts = text.split(",")
    elif _one_host(text):
        parts = [text]
    else:
        parts = COLON_TERM.findall(text)
        if COLON_TERM.sub("", text).strip(": \t\r\n\f\v"):
            raise InventoryError(
                f"--limit {limit!r} has unbalanced brackets; close each [ with ], or separate "
                "terms with commas"
            )
    terms = [part.strip() for part in parts if part.strip()]
    for term in terms:
        body = term.lstrip("!&")
        if not body.startswith("~") and not BALANCED.fullmatch(body):
            raise InventoryError(
                f"--limit term {term!r} has unbalanced brackets; close each [ with ]"
            )
    return terms


def _one_host(text: str) -> bool:
    """Whether ansible-core's address parser takes ``text`` whole (ranges allowed)."""
    for form in (BRACKETED_PORT, PORT):
        match = form.fullmatch(text)
        if match:
            text = match.group(1)
    if HOST_NAME.fullmatch(text):
        return True
    return bool(IPV6_START.match(text) or IPV6_WHOLE.fullmatch(text))


def subscript(term: str) -> tuple[str, Subscript | None]:
    """The term without its subscript, and the subscript; an error for forms ansible-core reads
    differently from its documentation or warns about, so none selects hosts by surprise."""
    if term.startswith("~"):
        return term, None
    match = SUBSCRIPT.fullmatch(term)
    if match is None:
        near = NEAR_SUBSCRIPT.fullmatch(term)
        if near:
            base, inside = near.groups()
            fix = f"; write {base}[0{inside}]" if inside.startswith(":") else ""
            raise InventoryError(
                f"--limit term {term!r} is no subscript to ansible-core, which reads it as a "
                f"glob; {SUBSCRIPT_FORMS}{fix}"
            )
        return term, None
    base, index, start, separator, end = match.groups()
    if index is not None:
        return base, Subscript(int(index))
    if separator == "-":
        raise InventoryError(
            f"--limit term {term!r}: ansible-core reads [{start}-{end}] as positions (a removed "
            f"form) where a shell glob means characters; write {base}[{start}:{end}] for "
            "positions, or a ~regex for names"
        )
    if end and int(end) < int(start):
        raise InventoryError(
            f"--limit term {term!r}: the slice ends before it starts; write "
            f"{base}[{end}:{start}] or {base}[{start}]"
        )
    return base, Subscript(int(start), int(end) + 1 if end else -1)


class Order:
    """Groups and hosts in the order ansible-core keeps them: groups as created (``all`` and
    ``ungrouped`` first), a group's hosts its own in the order listed, then its children's,
    breadth first; ``all`` lists its own hosts, ``ungrouped``, then the top-level groups."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        defined = [name for name in inventory.groups if name not in IMPLICIT]
        self.groups: tuple[str, ...] = (*IMPLICIT, *defined)
        self.hosts: tuple[str, ...] = tuple(inventory.hosts)
        self._cache: dict[str, list[str]] = {}
        top = inventory.groups.get("all")
        listed = top.children if top else ()
        nested = {child for name in defined for child in inventory.groups[name].children}
        parentless = (name for name in defined if name not in nested)
        self._top = tuple(dict.fromkeys(["ungrouped", *listed, *parentless]))

    def members(self, group: str) -> list[str]:
        """The hosts of ``group`` and of its descendants, as ansible-core lists them."""
        if group not in self._cache:
            self._cache[group] = list(dict.fromkeys(self._members(group)))
        return self._cache[group]

    def _members(self, group: str) -> Iterator[str]:
        for name in self._descendants(group):
            yield from self._own(name)

    def _descendants(self, group: str) -> Iterator[str]:
        seen = {group}
        level = [group]
        yield group
        while level:
            below = []
            for name in level:
                for child in self._children(name):
                    if child not in seen:
                        seen.add(child)
                        below.append(child)
                        yield child
            level = below

    def _children(self, group: str) -> Iterable[str]:
        if group == "all":
            return self._top
        found = self.inventory.groups.get(group)
        return found.children if found else ()

    def _own(self, group: str) -> Iterable[str]:
        found = self.inventory.groups.get(group)
        own = found.hosts if found else ()
        if group != "ungrouped":
            return own
        alone = (n for n, h in self.inventory.hosts.items() if set(h.groups) <= {"ungrouped"})
        return dict.fromkeys([*own, *alone])
