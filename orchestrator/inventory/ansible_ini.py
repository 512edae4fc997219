"""Ansible INI inventories: ``[group]``, ``[group:vars]``, ``[group:children]``, host ranges.

Values on host lines are Python literals where they parse (``22`` → int), else text; values in
``:vars`` sections stay text, as in Ansible. Error messages never repeat a line's content, which may
hold a secret.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from typing import Any

from orchestrator.errors import InventoryError
from orchestrator.inventory.ansible_vars import ansible_layer
from orchestrator.inventory.ranges import parse_pattern
from orchestrator.inventory.raw import Origin, Owner, RawInventory, Value
from orchestrator.inventory.settings import Fail, put

SECTION = re.compile(r"\[\s*([^\[\]:\s]+)\s*(?::\s*(\w+)\s*)?\]")
NAMES = {"host": re.compile(r"[^\s,\[\]=]+"), "group": re.compile(r"[^\s,\[\]:=]+")}
IMPLICIT = ("all", "ungrouped")


class _Parser:
    def __init__(self, file: str) -> None:
        self.file = file
        self.inventory = RawInventory(files=[file])
        self.group = "ungrouped"
        self.kind = "hosts"
        self.declared: set[str] = set(IMPLICIT)
        self.vars_sections: dict[str, Origin] = {}

    def error(self, message: str, line: int) -> InventoryError:
        return InventoryError(message, file=self.file, line=line)

    def parse(self, text: str) -> RawInventory:
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            where = Origin(self.file, number)
            if line.startswith("["):
                self.section(line, where)
            elif self.kind == "hosts":
                self.host_line(line, where)
            elif self.kind == "vars":
                self.vars_line(line, where)
            else:
                self.child_line(line, where)
        for name, where in self.vars_sections.items():
            if name not in self.declared:
                raise InventoryError(
                    f"[{name}:vars] is for a group this file does not define; "
                    f"add a [{name}] section or fix the name",
                    file=self.file,
                    line=where.line,
                )
        return self.inventory

    def section(self, line: str, where: Origin) -> None:
        match = SECTION.fullmatch(line.split("#")[0].split(";")[0].strip())
        assert where.line is not None
        if match is None:
            raise self.error(
                "malformed section header; write [group], [group:vars] or [group:children]",
                where.line,
            )
        self.group, kind = match.group(1), match.group(2) or "hosts"
        if kind not in ("hosts", "vars", "children"):
            raise self.error(f"unknown section type ':{kind}'; use :vars or :children", where.line)
        self.kind = kind
        self.inventory.group(self.group, where)
        if kind == "vars":
            self.vars_sections.setdefault(self.group, where)
        else:
            self.declared.add(self.group)

    def host_line(self, line: str, where: Origin) -> None:
        assert where.line is not None
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            raise self.error(
                f"host line cannot be split ({exc}); check its quotes", where.line
            ) from None
        if not tokens:
            return
        pattern, *assignments = tokens
        fail = self.failer(where, pattern)
        names, port = parse_pattern(pattern, fail)
        entries: dict[str, Value] = {}
        for position, assignment in enumerate(assignments, start=2):
            key, sep, value = assignment.partition("=")
            if not sep or not key:
                raise fail(
                    f"item {position} on the line is not key=value; quote values with spaces"
                )
            entries[key] = Value(_literal(value), where)
        for name in names:
            self.check_name(name, "host", where.line)
            owner = Owner("host", name)
            layer = ansible_layer(entries, owner)
            if port is not None:
                put(layer, "port", port, where, owner, "port")
            host = self.inventory.host(name, where)
            host.layer.absorb(layer, owner)
            self.inventory.group(self.group, where).hosts.setdefault(name, where)

    def failer(self, where: Origin, pattern: str) -> Fail:
        def fail(message: str) -> InventoryError:
            return InventoryError(message, file=self.file, line=where.line, host=pattern)

        return fail

    def vars_line(self, line: str, where: Origin) -> None:
        assert where.line is not None
        key, sep, value = line.partition("=")
        key, value = key.strip(), _unquote(value.strip())
        if not sep or not key:
            raise self.error(f"expected key=value in [{self.group}:vars]", where.line)
        owner = Owner("group", self.group)
        layer = ansible_layer({key: Value(value, where)}, owner)
        self.inventory.group(self.group, where).layer.absorb(layer, owner)

    def child_line(self, line: str, where: Origin) -> None:
        assert where.line is not None
        name = line.split("#")[0].split(";")[0].strip()
        self.check_name(name, "group", where.line)
        if name == "all":
            raise self.error(
                f"group 'all' cannot be a child; remove it from [{self.group}:children]", where.line
            )
        self.inventory.group(self.group, where).children.setdefault(name, where)
        self.inventory.group(name, where)
        self.declared.add(name)

    def check_name(self, name: str, what: str, line: int) -> None:
        if not NAMES[what].fullmatch(name):
            raise self.error(
                f"{what} name {name[:40]!r} is not usable; use letters, digits, '.', '-' or '_'",
                line,
            )


def _literal(text: str) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes in Windows paths are just text
            return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def parse(text: str, file: str) -> RawInventory:
    """The raw content of one Ansible INI inventory."""
    return _Parser(file).parse(text)
