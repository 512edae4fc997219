"""``--limit``: Ansible-style host patterns.

Terms separated by commas (or by colons, as Ansible also accepts): names of hosts or groups, globs
(``web*``), ``~regex`` (matched from the start of the name), ``@file`` (host names, one per line),
``all`` or ``*``. ``&term`` intersects, ``!term`` excludes. The plain terms are united (none means
all), then intersected, then subtracted; the result keeps inventory order. A plain name that matches
nothing is an error: a typo must not drop a host.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path

from orchestrator.errors import InventoryError
from orchestrator.inventory.loader import read_text
from orchestrator.inventory.model import Host, Inventory

GLOB_CHARS = frozenset("*?[")
COLON_TERMS = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")


def select(inventory: Inventory, limit: str | None, cwd: Path | None = None) -> list[Host]:
    """The hosts ``limit`` selects, in inventory order; None selects every host."""
    if limit is None:
        return list(inventory.hosts.values())
    terms = _terms(limit)
    if not terms:
        raise InventoryError("--limit is empty; give host or group names or patterns")
    union: set[str] = set()
    intersections: list[set[str]] = []
    exclusions: set[str] = set()
    for term in terms:
        if term[0] in "&!":
            body = term[1:].strip()
            if not body:
                raise InventoryError(
                    f"--limit term {term!r} needs a name or pattern after {term[0]}"
                )
            matched = _match(inventory, body, cwd or Path.cwd())
            if term[0] == "&":
                intersections.append(matched)
            else:
                exclusions |= matched
        else:
            union |= _match(inventory, term, cwd or Path.cwd())
    chosen = union if any(term[0] not in "&!" for term in terms) else set(inventory.hosts)
    for matched in intersections:
        chosen &= matched
    chosen -= exclusions
    hosts = [host for name, host in inventory.hosts.items() if name in chosen]
    if not hosts:
        sources = ", ".join(inventory.sources) or "the inventory"
        options = " ".join(f"-i {source}" for source in inventory.sources) or "-i FILE"
        raise InventoryError(
            f"--limit {limit!r} selects no host from {sources}; "
            f"run `kremove inventory check {options}` to list them"
        )
    return hosts


def _terms(limit: str) -> list[str]:
    """Split on commas; without commas, on colons as Ansible does (``web:!db*``), unless IPv6."""
    if "," in limit or ":" not in limit or _is_ip(limit.strip()):
        parts = limit.split(",")
    else:
        parts = COLON_TERMS.findall(limit)
    return [part.strip() for part in parts if part.strip()]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _match(inventory: Inventory, term: str, cwd: Path) -> set[str]:
    if term in ("all", "*"):
        return set(inventory.hosts)
    if term.startswith("@"):
        return _from_file(inventory, term[1:], cwd)
    if term.startswith("~"):
        try:
            pattern = re.compile(term[1:])
        except re.error as exc:
            raise InventoryError(f"--limit term {term!r} is not a valid regex: {exc}") from None
        return _hosts_where(inventory, lambda name: pattern.match(name) is not None)
    if GLOB_CHARS & set(term):
        return _hosts_where(inventory, lambda name: fnmatchcase(name, term))
    matched = _hosts_where(inventory, lambda name: name == term)
    if not matched and term not in inventory.groups:
        raise InventoryError(f"--limit term {term!r} matches no host or group; check the spelling")
    return matched


def _hosts_where(inventory: Inventory, test: Callable[[str], bool]) -> set[str]:
    """Hosts whose own name matches, and the members of every group whose name matches."""
    groups = {name for name in inventory.groups if test(name)}
    if test("all"):
        return set(inventory.hosts)
    return {
        name
        for name, host in inventory.hosts.items()
        if test(name) or groups.intersection(host.groups)
    }


def _from_file(inventory: Inventory, name: str, cwd: Path) -> set[str]:
    path = cwd / name
    if not path.is_file():
        raise InventoryError(f"--limit @{name}: file not found (relative to {cwd})", file=path)
    hosts: set[str] = set()
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        host = line.strip()
        if not host or host.startswith("#"):
            continue
        if host not in inventory.hosts:
            raise InventoryError(
                f"host {host[:60]!r} is not in the inventory; fix or remove the line",
                file=path,
                line=number,
            )
        hosts.add(host)
    return hosts
