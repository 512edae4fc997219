"""kremove's own YAML inventory: ``defaults``, ``hosts`` and ``groups``; every key is checked.

See ``inventories/example.yml`` for a documented example of every key.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from yaml.nodes import MappingNode, Node

from orchestrator.errors import InventoryError
from orchestrator.inventory.raw import Layer, Origin, Owner, RawInventory, Value, same
from orchestrator.inventory.settings import (
    EVERY_PRODUCT,
    INLINE_SECRET,
    PRODUCT_ID,
    UNINSTALL,
    put,
    secret_ref,
    show,
    uninstall_password,
)
from orchestrator.inventory.yamlnodes import (
    Converter,
    is_null,
    mapping_items,
    name_of,
    sequence_items,
)

TOP_KEYS = ("version", "defaults", "hosts", "groups")
SIMPLE_KEYS = (
    "address",
    "port",
    "transport",
    "platform",
    "user",
    "key_file",
    "shell_type",
    "jump",
    "known_hosts",
)
# password_env → ("password", "env"): the setting a reference key fills, and how
SECRET_KEYS = {
    f"{key}_{kind}": (setting, kind)
    for key, setting in (
        ("password", "password"),
        ("key_passphrase", "key_passphrase"),
        ("uninstall_password", UNINSTALL + EVERY_PRODUCT),
    )
    for kind in ("env", "file", "prompt")
}
REFERENCE_KINDS = ("env", "file", "prompt")
INLINE_PRODUCT_SECRET = (
    "inline passwords are not accepted; reference it with env: VAR, file: PATH or prompt: true"
)
CONNECTION_KEYS = (*SIMPLE_KEYS, *SECRET_KEYS, "uninstall_passwords", "become", "winrm", "vars")
HOST_KEYS = (*CONNECTION_KEYS, "groups")
GROUP_KEYS = (*CONNECTION_KEYS, "hosts", "children")
BECOME_KEYS = ("enabled", "user", "method", "password_env", "password_file", "password_prompt")
WINRM_KEYS = ("auth", "scheme", "cert_validation", "ca_trust_path", "cert_pem", "cert_key_pem")


class _Parser:
    def __init__(self, file: str) -> None:
        self.file = file
        self.convert = Converter(file)
        self.inventory = RawInventory(files=[file])
        self.defaults = Layer()

    def unknown(self, key: str, where: Origin, owner: Owner, allowed: tuple[str, ...]) -> None:
        if key in ("password", "key_passphrase"):
            raise owner.error(INLINE_SECRET, where, key)
        if key == "uninstall_password":
            raise owner.error(INLINE_SECRET.replace("password_", "uninstall_password_"), where, key)
        raise owner.error(unknown_key(key, allowed), where, key)

    def document(self, root: Node) -> RawInventory:
        top = Owner("top level")
        for key, where, node in mapping_items(root, self.file, "the inventory"):
            if key == "version":
                if not same(self.convert.scalar(node), 1):
                    raise InventoryError(
                        "only version: 1 is known; write version: 1 or leave it out",
                        file=self.file,
                        line=where.line,
                    )
            elif key == "defaults":
                self.block(node, Owner("defaults"), self.defaults, CONNECTION_KEYS)
            elif key == "hosts":
                self.each(node, "hosts", self.host)
            elif key == "groups":
                self.each(node, "groups", self.group)
            else:
                self.unknown(key, where, top, TOP_KEYS)
        for host in self.inventory.hosts.values():
            host.defaults = self.defaults
        return self.inventory

    def each(self, node: Node, what: str, parse: Callable[[str, Origin, Node], None]) -> None:
        if is_null(node):
            return
        for name, where, item in mapping_items(node, self.file, what):
            parse(name, where, item)

    def host(self, name: str, where: Origin, node: Node) -> None:
        host = self.inventory.host(name, where)
        owner = Owner("host", name)
        for _, key_at, value in self.block(node, owner, host.layer, HOST_KEYS):
            for group in self.names(value, "groups"):
                host.groups.setdefault(group, key_at)

    def group(self, name: str, where: Origin, node: Node) -> None:
        group = self.inventory.group(name, where)
        for key, key_at, value in self.block(node, Owner("group", name), group.layer, GROUP_KEYS):
            members = group.hosts if key == "hosts" else group.children
            for member in self.names(value, key):
                members.setdefault(member, key_at)

    def names(self, node: Node, what: str) -> list[str]:
        if is_null(node):
            return []
        names = [name_of(item, self.file) for item in sequence_items(node, self.file, what)]
        return [name for name in names if name]

    def block(
        self, node: Node, owner: Owner, layer: Layer, allowed: tuple[str, ...]
    ) -> list[tuple[str, Origin, Node]]:
        """Read connection keys into ``layer``; return the membership entries for the caller."""
        rest: list[tuple[str, Origin, Node]] = []
        if is_null(node):
            return rest
        given: dict[str, str] = {}
        for key, where, value in mapping_items(node, self.file, owner.label):
            if key not in allowed:
                self.unknown(key, where, owner, allowed)
            elif key in SIMPLE_KEYS:
                put(layer, key, self.convert.scalar(value), where, owner, key)
            elif key in SECRET_KEYS:
                self.secret(layer, SECRET_KEYS[key], value, (where, owner, key), given)
            elif key == "become":
                self.become(layer, value, where, owner)
            elif key == "uninstall_passwords":
                self.uninstall_passwords(layer, value, owner)
            elif key == "winrm":
                self.winrm(layer, value, owner)
            elif key == "vars":
                self.vars(layer, value)
            else:
                rest.append((key, where, value))
        return rest

    def secret(
        self,
        layer: Layer,
        target: tuple[str, str],
        node: Node,
        place: tuple[Origin, Owner, str],
        given: dict[str, str],
    ) -> None:
        """One secret reference; ``given`` remembers which key of this block already set it."""
        setting, kind = target
        where, owner, key = place
        if setting in given:
            raise owner.error(
                f"{given[setting]} is already given; keep only one of them", where, key
            )
        given[setting] = key

        def fail(message: str) -> InventoryError:
            return owner.error(message, where, key)

        ref = secret_ref(kind, self.convert.scalar(node), fail)
        if setting.startswith(UNINSTALL):
            uninstall_password(layer, setting.removeprefix(UNINSTALL), ref, where, owner)
        else:
            layer.settings[setting] = Value(ref, where)

    def uninstall_passwords(self, layer: Layer, node: Node, owner: Owner) -> None:
        """``{product id: {env|file|prompt: ...}}``; the ids are checked against the catalog
        when a plan or run loads it (engine/uninstall_passwords.py)."""
        if is_null(node):
            return
        for product, where, entry in mapping_items(node, self.file, "uninstall_passwords"):
            field = f"uninstall_passwords.{product}"
            if not PRODUCT_ID.match(product):
                raise owner.error(
                    f"{show(product)} is not a catalog product id (lowercase letters, digits, "
                    "hyphens, e.g. kes-windows, klnagent)",
                    where,
                    field,
                )
            if not isinstance(entry, MappingNode):
                raise owner.error(
                    "expected {env: VAR}, {file: PATH} or {prompt: true}", where, field
                )
            given: dict[str, str] = {}
            for kind, key_at, value in mapping_items(entry, self.file, field):
                if kind == "password":
                    raise owner.error(INLINE_PRODUCT_SECRET, key_at, f"{field}.password")
                if kind not in REFERENCE_KINDS:
                    raise owner.error(unknown_key(kind, REFERENCE_KINDS), key_at, f"{field}.{kind}")
                target = (UNINSTALL + product, kind)
                self.secret(layer, target, value, (key_at, owner, f"{field}.{kind}"), given)

    def become(self, layer: Layer, node: Node, where: Origin, owner: Owner) -> None:
        if not isinstance(node, MappingNode):
            put(layer, "become.enabled", self.convert.scalar(node), where, owner, "become")
            return
        # Writing a become mapping means wanting become, unless it says enabled: false.
        put(layer, "become.enabled", True, where, owner, "become")
        given: dict[str, str] = {}
        for key, key_at, value in mapping_items(node, self.file, "become"):
            field = f"become.{key}"
            if key == "password":
                raise owner.error(INLINE_SECRET, key_at, field)
            if key not in BECOME_KEYS:
                raise owner.error(unknown_key(key, BECOME_KEYS), key_at, field)
            if key.startswith("password_"):
                target = ("become.password", key.removeprefix("password_"))
                self.secret(layer, target, value, (key_at, owner, field), given)
            else:
                put(layer, field, self.convert.scalar(value), key_at, owner, field)

    def winrm(self, layer: Layer, node: Node, owner: Owner) -> None:
        for key, key_at, value in mapping_items(node, self.file, "winrm"):
            field = f"winrm.{key}"
            if key == "password":
                raise owner.error(INLINE_SECRET, key_at, field)
            if key not in WINRM_KEYS:
                raise owner.error(unknown_key(key, WINRM_KEYS), key_at, field)
            put(layer, field, self.convert.scalar(value), key_at, owner, field)

    def vars(self, layer: Layer, node: Node) -> None:
        if is_null(node):
            return
        for key, where, value in mapping_items(node, self.file, "vars"):
            layer.vars[key] = Value(self.convert.value(value), where)


def unknown_key(key: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key; {hint}expected one of: {', '.join(allowed)}"


def parse(root: Node, file: str) -> RawInventory:
    """The raw content of one native inventory document."""
    return _Parser(file).document(root)
