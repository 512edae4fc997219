"""Ansible's inventory JSON: what ``ansible-inventory --list`` prints and an inventory script
prints for ``--list``, read as Ansible's script plugin reads it.

``{"_meta": {"hostvars": {HOST: {VAR: VALUE}}}, GROUP: {"hosts": [..], "children": [..],
"vars": {..}}, ..}``. A group may also be a bare list of hosts, or a mapping with none of those
three keys: Ansible's shorthand for a host of the group's own name with those vars. Hosts exist by
being listed in a group (``ungrouped`` included); hostvars of a host no group lists are ignored,
as Ansible ignores them. Vaulted values come as ``{"__ansible_vault": TEXT}``, values Ansible marks
unsafe as ``{"__ansible_unsafe": TEXT}``. There are no line numbers: messages name the source
(``inv.json``, ``SCRIPT --list``) with the group or host.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from orchestrator import textsafe
from orchestrator.errors import InventoryError
from orchestrator.inventory.ansible_vars import ansible_layer
from orchestrator.inventory.raw import Origin, Owner, RawInventory, Value
from orchestrator.inventory.settings import Fail
from orchestrator.inventory.vault import VaultedVar, vault_text

META = "_meta"
GROUP_KEYS = ("hosts", "vars", "children")
VAULT = "__ansible_vault"
UNSAFE = "__ansible_unsafe"
UNSAFE_TEMPLATE = (
    "Ansible marks this value unsafe (it comes from the inventory's data source) and it holds "
    "template text ({{, {% or {#), which Ansible would not evaluate; kremove does not take such "
    "text: change the value at its source"
)


def decode(data: bytes | str, fail: Fail) -> Any:
    """The JSON document in ``data``; ``fail`` says why there is none (with where it broke and
    how the text begins, controls made visible)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise fail(f"is not UTF-8 text (byte {exc.start + 1})") from None
    if not text.strip():
        raise fail("is empty; an inventory is a JSON object")
    try:
        return json.loads(text)
    except RecursionError:
        raise fail("is nested too deeply to read") from None
    except ValueError as exc:
        where = getattr(exc, "lineno", None), getattr(exc, "colno", None)
        begins = textsafe.line(text.strip()[:60])
        raise fail(
            f"is not JSON (line {where[0]} column {where[1]}: {getattr(exc, 'msg', exc)}); "
            f"it begins {begins!r}"
        ) from None


def is_list_document(doc: Any) -> bool:
    """Whether ``doc`` has the shape of ``--list`` output (``_meta``, a group that is a list or
    whose hosts or children are a list) rather than of an Ansible YAML inventory written as JSON
    (hosts and children as mappings), which the YAML reader reads."""
    if not isinstance(doc, dict):
        return False
    if META in doc:
        return True
    for group in doc.values():
        if isinstance(group, list):
            return True
        if isinstance(group, dict) and any(
            isinstance(group.get(key), list) for key in ("hosts", "children")
        ):
            return True
    return False


class _Reader:
    def __init__(self, source: str, define_hosts: bool) -> None:
        self.origin = Origin(source)
        self.define_hosts = define_hosts
        self.inventory = RawInventory(files=[source])

    def document(self, doc: Any) -> RawInventory:
        if not isinstance(doc, dict):
            raise InventoryError(
                f"is JSON {type(doc).__name__}, not an object of groups; an inventory is "
                '{"group": {"hosts": [...]}, "_meta": {"hostvars": {...}}}',
                file=self.origin.file,
            )
        for name, data in doc.items():
            if name != META:
                self.group(name, data)
        hostvars = host_vars_of(doc, self.origin.file)
        for name, values in (hostvars or {}).items():
            if name in self.inventory.hosts or self.define_hosts:
                add_host_vars(self.inventory, name, values, self.origin)
        return self.inventory

    def group(self, name: str, data: Any) -> None:
        owner = Owner("group", name)
        if isinstance(data, list):
            data = {"hosts": data}
        elif isinstance(data, dict) and not any(key in data for key in GROUP_KEYS):
            data = {"hosts": [name], "vars": data}  # Ansible's shorthand: a host with its vars
        elif not isinstance(data, dict):
            raise owner.error(
                f"is JSON {type(data).__name__}; a group is an object with hosts, vars, children",
                self.origin,
            )
        group = self.inventory.group(name, self.origin)
        for member in self.names(data.get("hosts"), owner, "hosts"):
            self.inventory.host(member, self.origin)
            group.hosts.setdefault(member, self.origin)
        for child in self.names(data.get("children"), owner, "children"):
            if child == "all":
                raise owner.error("group 'all' cannot be a child", self.origin, "children")
            self.inventory.group(child, self.origin)
            group.children.setdefault(child, self.origin)
        values = data.get("vars")
        if values is not None:
            if not isinstance(values, dict):
                raise owner.error("must be an object of variables", self.origin, "vars")
            group.layer.absorb(ansible_layer(variables(values, owner, self.origin), owner), owner)

    def names(self, value: Any, owner: Owner, key: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(n, str) and n for n in value):
            raise owner.error(f"must be a list of {key[:-1]} names", self.origin, key)
        return value


def host_vars_of(doc: Mapping[str, Any], source: str) -> Mapping[str, Any] | None:
    """``_meta.hostvars``, or None when the document has none (a script is then asked
    ``--host`` for each host, as Ansible asks)."""
    meta = doc.get(META)
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise InventoryError(f"{META} must be an object with hostvars", file=source)
    hostvars = meta.get("hostvars")
    if hostvars is not None and not isinstance(hostvars, dict):
        raise InventoryError(f"{META}.hostvars must be an object of hosts", file=source)
    return hostvars


def add_host_vars(inventory: RawInventory, name: str, values: Any, origin: Origin) -> None:
    """One host's variables, as Ansible variables (connection settings, secret references)."""
    owner = Owner("host", name)
    if not isinstance(values, dict):
        raise owner.error(
            f"its variables are JSON {type(values).__name__}, not an object", origin, None
        )
    entries = variables(values, owner, origin)
    inventory.host(name, origin).layer.absorb(ansible_layer(entries, owner), owner)


def variables(values: Mapping[str, Any], owner: Owner, origin: Origin) -> dict[str, Value]:
    """Variables as the Ansible loaders take them (values with where they were written)."""

    def entry(key: str, value: Any) -> Value:
        return Value(plain(value, origin, lambda m: owner.error(m, origin, key)), origin)

    return {key: entry(key, value) for key, value in values.items()}


def plain(value: Any, origin: Origin, fail: Fail) -> Any:
    """A JSON value with Ansible's markers read: a vaulted value stays encrypted (VaultedVar),
    an unsafe one is its text, which must hold no template: Ansible never evaluates one (it came
    from the plugin's data source, a cloud tag), and kremove would."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get(VAULT), str):
            return VaultedVar(vault_text(value[VAULT], str(origin)))
        if len(value) == 1 and isinstance(value.get(UNSAFE), str):
            if any(mark in value[UNSAFE] for mark in ("{{", "{%", "{#")):
                raise fail(UNSAFE_TEMPLATE)
            return value[UNSAFE]
        return {key: plain(item, origin, fail) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item, origin, fail) for item in value]
    return value


def parse(doc: Any, source: str, *, define_hosts: bool = False) -> RawInventory:
    """The raw content of one inventory JSON document; ``source`` names it in messages.
    ``define_hosts``: a host in ``_meta.hostvars`` exists even when no group lists it."""
    try:
        return _Reader(source, define_hosts).document(doc)
    except RecursionError:
        raise InventoryError("is nested too deeply to read", file=source) from None
