"""``--limit``: Ansible host patterns, selecting what ansible-core 2.18 selects, in its order.

Terms are separated by commas, or, in a pattern without commas that is not one host or address
(IPv6, ``web[01:03]``, ``host:port``), by colons and whitespace. A term is ``all`` or ``*``, a
host or group name, a glob (``web*``, case-sensitive, matching group and host names), ``~regex``
(``re.match``: anchored at the start only), or ``@file`` (one term per line; ``#`` lines and blank
lines skipped). Any but a regex may end in a subscript over the hosts it matches, in Ansible's
order: ``[N]``, ``[-N]``, ``[N:M]`` (M included), ``[N:]``. ``&term`` intersects, ``!term``
excludes. As in Ansible, the plain terms are united first, whatever their place in the string,
then the intersections apply, then the exclusions (no plain term: all hosts). The result is in the
order ``ansible -i INV 'PATTERN' --list-hosts`` prints.

Where Ansible warns and goes on, kremove stops with one line: a term that matches no host or
group (a typo must neither drop a host nor, after ``!``, keep one), a subscript past the end, a
selection of no host, and the forms ansible-core reads otherwise than documented (``[:3]``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from orchestrator.errors import InventoryError
from orchestrator.inventory.loader import read_text
from orchestrator.inventory.model import Host, Inventory
from orchestrator.inventory.patterns import SUBSCRIPT_FORMS, Order, split, subscript

GLOB_MARKS = (".", "?", "*", "[")  # a term with one of these matches host names even beside groups
IMPLICIT_LOCALHOST = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Written:
    """A pattern as written, and the file and line it was read from (None: the command line)."""

    text: str
    path: Path | None = None
    line: int | None = None


@dataclass(frozen=True)
class Term:
    """``op`` is "", "&" or "!"; the patterns are united (several only in ``!@f``/``&@f``)."""

    op: str
    patterns: tuple[Written, ...]


def select(inventory: Inventory, limit: str | None, cwd: Path | None = None) -> list[Host]:
    """The hosts ``limit`` selects in Ansible's order; None selects every host, as defined."""
    if limit is None:
        return list(inventory.hosts.values())
    terms = _terms(split(limit, limit), cwd or Path.cwd())
    if not terms:
        raise InventoryError("--limit is empty; give host or group names or patterns")
    chosen = _Evaluation(inventory).run(terms)
    if not chosen:
        sources = ", ".join(inventory.sources) or "the inventory"
        options = " ".join(f"-i {source}" for source in inventory.sources) or "-i FILE"
        raise InventoryError(
            f"--limit {limit!r} selects no host from {sources}; "
            f"run `kremove inventory check {options}` to list them"
        )
    return [inventory.hosts[name] for name in chosen]


def _terms(parts: Iterable[str], cwd: Path) -> list[Term]:
    terms: list[Term] = []
    for part in parts:
        op, body = _operator(Written(part))
        if not body.text.startswith("@"):
            terms.append(Term(op, (body,)))
            continue
        lines = _lines(body.text[1:], cwd)
        if not op:  # Ansible's @file: each line a term of its own
            for line in lines:
                line_op, line_body = _operator(line)
                terms.append(Term(line_op, (line_body,)))
            continue
        for line in lines:  # kremove's !@file and &@file: the union of the file's terms
            if line.text[0] in "&!@":
                raise InventoryError(
                    f"with {op}@ each line is a plain name or pattern; move {line.text[:60]!r} "
                    "to the --limit itself",
                    file=line.path,
                    line=line.line,
                )
        terms.append(Term(op, tuple(lines)))
    return terms


def _operator(written: Written) -> tuple[str, Written]:
    """``&`` or ``!`` (or "") and what follows it."""
    text = written.text
    op = text[0] if text[0] in "&!" else ""
    body = text[len(op) :].strip()
    if not body:
        raise InventoryError(
            f"--limit term {text!r} needs a name or pattern after {op}",
            file=written.path,
            line=written.line,
        )
    return op, Written(body, written.path, written.line)


def _lines(name: str, cwd: Path) -> list[Written]:
    """The terms in an ``@file`` with their line numbers; blank and ``#`` lines skipped."""
    path = cwd / name
    if not path.exists():
        raise InventoryError(f"--limit @{name}: file not found (relative to {cwd})", file=path)
    if not path.is_file():
        raise InventoryError(f"--limit @{name}: give a file with one host or pattern a line")
    found = []
    for number, raw in enumerate(read_text(path).splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            found.append(Written(line, path, number))
    return found


class _Evaluation:
    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.order = Order(inventory)

    def run(self, terms: list[Term]) -> list[str]:
        plain = [term for term in terms if not term.op] or [Term("", (Written("all"),))]
        chosen = dict.fromkeys(name for term in plain for name in self.matched(term))
        for term in (t for t in terms if t.op == "&"):
            keep = set(self.matched(term))
            chosen = {name: None for name in chosen if name in keep}
        for term in (t for t in terms if t.op == "!"):
            drop = set(self.matched(term))
            chosen = {name: None for name in chosen if name not in drop}
        return list(chosen)

    def matched(self, term: Term) -> list[str]:
        found: list[str] = []
        for written in term.patterns:
            if not term.op and written.text in self.inventory.hosts:
                found.append(written.text)  # a host's own name is that host, as in Ansible
            else:
                found.extend(self._one(written))
        return found

    def _one(self, written: Written) -> list[str]:
        expr, index = subscript(written.text)
        found, groups = self._enumerate(expr)
        if not found and not groups:
            raise _no_match(written)
        if index is None or not found:
            return found
        try:
            taken = index.apply(found)
        except IndexError:
            taken = []
        if not taken:
            raise InventoryError(
                f"--limit term {written.text!r} is past the end: {expr!r} lists {len(found)} "
                f"host(s), [0] to [{len(found) - 1}]",
                file=written.path,
                line=written.line,
            )
        return taken

    def _enumerate(self, expr: str) -> tuple[list[str], bool]:
        """The hosts ``expr`` stands for in Ansible's order, duplicates kept (a subscript counts
        them), and whether it matched a group's name."""
        test = _matcher(expr)
        groups = [name for name in self.order.groups if test(name)]
        found = [host for name in groups for host in self.order.members(name)]
        if not groups or expr.startswith("~") or any(mark in expr for mark in GLOB_MARKS):
            found += [name for name in self.order.hosts if test(name)]
        return found, bool(groups)


def _matcher(expr: str) -> Callable[[str], bool]:
    if not expr.startswith("~"):
        return lambda name: fnmatchcase(name, expr)
    if not expr[1:]:
        raise InventoryError("--limit term '~' is an empty regex; write a regex after ~, or all")
    try:
        pattern = re.compile(expr[1:])
    except re.error as exc:
        raise InventoryError(f"--limit term {expr!r} is not a valid regex: {exc}") from None
    return lambda name: pattern.match(name) is not None


def _no_match(written: Written) -> InventoryError:
    text = written.text
    if written.path is not None:
        kind = "pattern" if any(mark in text for mark in "?*[~") else "host"
        return InventoryError(
            f"{kind} {text[:60]!r} is not in the inventory; fix or remove the line",
            file=written.path,
            line=written.line,
        )
    hint = "check the spelling"
    if text.endswith("]") and "[" in text:
        hint = SUBSCRIPT_FORMS
    elif ":" in text:
        hint = "in a list with commas a colon does not separate terms; use commas only"
    elif text in IMPLICIT_LOCALHOST:
        hint = "kremove has no implicit localhost; add it to the inventory (transport local)"
    return InventoryError(f"--limit term {text!r} matches no host or group; {hint}")
