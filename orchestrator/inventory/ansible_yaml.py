"""Ansible YAML inventories: ``all: {hosts: {h: vars}, vars: {}, children: {g: {...}}}``."""

from __future__ import annotations

from yaml.nodes import Node

from orchestrator.errors import InventoryError
from orchestrator.inventory.ansible_vars import ansible_layer
from orchestrator.inventory.ranges import parse_pattern
from orchestrator.inventory.raw import Origin, Owner, RawInventory, Value
from orchestrator.inventory.settings import put
from orchestrator.inventory.yamlnodes import Converter, is_null, mapping_items

GROUP_KEYS = ("hosts", "vars", "children")


class _Parser:
    def __init__(self, file: str) -> None:
        self.file = file
        self.convert = Converter(file)
        self.inventory = RawInventory(files=[file])

    def document(self, root: Node) -> RawInventory:
        for name, where, node in mapping_items(root, self.file, "the inventory"):
            self.group(name, where, node)
        return self.inventory

    def group(self, name: str, where: Origin, node: Node) -> None:
        group = self.inventory.group(name, where)
        owner = Owner("group", name)
        if is_null(node):
            return
        for key, key_at, value in mapping_items(node, self.file, owner.label):
            if is_null(value):
                continue
            if key == "hosts":
                self.hosts(name, value)
            elif key == "vars":
                group.layer.absorb(ansible_layer(self.entries(value), owner), owner)
            elif key == "children":
                for child, child_at, child_node in mapping_items(value, self.file, "children"):
                    if child == "all":
                        raise owner.error("group 'all' cannot be a child", child_at, "children")
                    group.children.setdefault(child, child_at)
                    self.group(child, child_at, child_node)
            else:
                raise owner.error(
                    f"unknown key {key!r}; a group has {', '.join(GROUP_KEYS)}", key_at
                )

    def hosts(self, group_name: str, node: Node) -> None:
        group = self.inventory.groups[group_name]
        for pattern, where, value in mapping_items(node, self.file, "hosts"):

            def fail(message: str, where: Origin = where, pattern: str = pattern) -> InventoryError:
                return InventoryError(message, file=where.file, line=where.line, host=pattern)

            names, port = parse_pattern(pattern, fail)
            entries = {} if is_null(value) else self.entries(value)
            for name in names:
                owner = Owner("host", name)
                layer = ansible_layer(entries, owner)
                if port is not None:
                    put(layer, "port", port, where, owner, "port")
                self.inventory.host(name, where).layer.absorb(layer, owner)
                group.hosts.setdefault(name, where)

    def entries(self, node: Node) -> dict[str, Value]:
        return {
            key: Value(self.convert.value(value), where)
            for key, where, value in mapping_items(node, self.file, "vars")
        }


def parse(root: Node, file: str) -> RawInventory:
    """The raw content of one Ansible YAML inventory document."""
    return _Parser(file).document(root)


def variables(node: Node, file: str) -> dict[str, Value]:
    """A mapping of Ansible variables (a group_vars file), each with the line it is written on."""
    return _Parser(file).entries(node)
