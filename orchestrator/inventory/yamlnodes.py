"""YAML read as nodes, so that every key keeps its line for error messages.

PyYAML's composer keeps marks; its constructor drops them. We compose, walk the nodes ourselves, and
construct only scalars. Aliases may form cycles or blow up exponentially, so the walk is guarded.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orchestrator.errors import InventoryError
from orchestrator.inventory.raw import Origin
from orchestrator.inventory.vault import VaultedVar, vault_text

MERGE_TAG = "tag:yaml.org,2002:merge"
NULL_TAG = "tag:yaml.org,2002:null"
VAULT_TAGS = ("!vault", "!vault-encrypted")  # Ansible's tags for a vaulted value
MAX_VALUES = 200_000
MAX_MERGE_DEPTH = 32
# libyaml's loader when PyYAML was built with it: ~10x faster, with the same nodes and marks.
LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def compose(text: str, file: str) -> Node | None:
    """The document's root node, or None for an empty document."""
    try:
        return yaml.compose(text, Loader=LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise InventoryError(
            f"YAML syntax error: {problem}; fix the syntax at this line",
            file=file,
            line=mark.line + 1 if mark else None,
        ) from None
    except yaml.reader.ReaderError as exc:
        # The offending character comes as its code point; libyaml counts its position in
        # UTF-8 bytes, PyYAML in characters.
        before = (
            text.encode("utf-8", "surrogatepass")[: exc.position].decode("utf-8", "replace")
            if LOADER is not yaml.SafeLoader
            else text[: exc.position]
        )
        raise InventoryError(
            f"character #x{exc.character:04x} is not allowed in YAML; remove it",
            file=file,
            line=before.count("\n") + 1,
        ) from None
    except yaml.YAMLError as exc:
        raise InventoryError(f"YAML cannot be read: {type(exc).__name__}", file=file) from None


def origin(node: Node, file: str) -> Origin:
    return Origin(file, node.start_mark.line + 1)


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG


def mapping_items(node: Node, file: str, what: str) -> list[tuple[str, Origin, Node]]:
    """The (key, where, value node) pairs of a mapping, with ``<<`` merges applied.

    Keys are taken as written (``01`` stays ``01``); a key given twice is an error.
    """
    if not isinstance(node, MappingNode):
        raise InventoryError(f"{what} must be a mapping of keys to values", **_at(node, file))
    items: list[tuple[str, Origin, Node]] = []
    seen: dict[str, Origin] = {}
    for key_node, value_node in _pairs(node, file, 0):
        key = _key(key_node, file, what)
        where = origin(key_node, file)
        if key in seen:
            raise InventoryError(
                f"key {key!r} appears twice in {what} (first at line {seen[key].line}); keep one",
                file=file,
                line=where.line,
            )
        seen[key] = where
        items.append((key, where, value_node))
    return items


def sequence_items(node: Node, file: str, what: str) -> list[Node]:
    if not isinstance(node, SequenceNode):
        raise InventoryError(f"{what} must be a list", **_at(node, file))
    return list(node.value)


def name_of(node: Node, file: str) -> str:
    """A host or group name as written (``01`` stays ``01``, ``yes`` stays ``yes``)."""
    if not isinstance(node, ScalarNode):
        raise InventoryError("expected a host or group name here", **_at(node, file))
    return str(node.value).strip()


def _at(node: Node, file: str) -> dict[str, Any]:
    return {"file": file, "line": node.start_mark.line + 1}


def _key(node: Node, file: str, what: str) -> str:
    if not isinstance(node, ScalarNode) or not node.value.strip():
        raise InventoryError(f"keys in {what} must be plain non-empty names", **_at(node, file))
    return str(node.value)


def _pairs(node: MappingNode, file: str, depth: int) -> list[tuple[Node, Node]]:
    """Explicit pairs first, then pairs merged in with ``<<`` whose key is not given explicitly."""
    if depth > MAX_MERGE_DEPTH:
        raise InventoryError("YAML merge keys (<<) nest too deeply", **_at(node, file))
    explicit = [(k, v) for k, v in node.value if k.tag != MERGE_TAG]
    names = {k.value for k, _ in explicit if isinstance(k, ScalarNode)}
    merged: list[tuple[Node, Node]] = []
    for key, value in node.value:
        if key.tag != MERGE_TAG:
            continue
        sources = value.value if isinstance(value, SequenceNode) else [value]
        for source in sources:
            if not isinstance(source, MappingNode):
                raise InventoryError("a YAML merge (<<) must name a mapping", **_at(source, file))
            for pair in _pairs(source, file, depth + 1):
                if isinstance(pair[0], ScalarNode) and pair[0].value not in names:
                    names.add(pair[0].value)
                    merged.append(pair)
    return explicit + merged


class Converter:
    """Turns nodes into plain Python values (dicts, lists, scalars), within a budget."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.count = 0
        self.constructor = yaml.SafeLoader("")

    def value(self, node: Node, active: frozenset[int] = frozenset()) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise InventoryError(
                "YAML expands to too many values (aliases?)", **_at(node, self.file)
            )
        if id(node) in active:
            raise InventoryError("a YAML alias refers to itself; remove it", **_at(node, self.file))
        inner = active | {id(node)}
        if isinstance(node, SequenceNode):
            return [self.value(item, inner) for item in node.value]
        if isinstance(node, MappingNode):
            return {
                key: self.value(item, inner)
                for key, _, item in mapping_items(node, self.file, "a mapping")
            }
        return self.scalar(node)

    def scalar(self, node: Node) -> Any:
        if not isinstance(node, ScalarNode):
            raise InventoryError("expected a single value here", **_at(node, self.file))
        if node.tag in VAULT_TAGS:
            # Kept encrypted: only the variable it is given to decides whether it is ever opened.
            return VaultedVar(vault_text(str(node.value), str(origin(node, self.file))))
        try:
            return self.constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            if node.tag.startswith("!"):
                raise InventoryError(
                    f"YAML tag {node.tag[:40]} is not supported; remove it "
                    "(Ansible Vault values are written !vault |)",
                    **_at(node, self.file),
                ) from None
            kind = node.tag.rsplit(":", 1)[-1]
            raise InventoryError(
                f"value cannot be read as {kind}; quote it to keep it as text",
                **_at(node, self.file),
            ) from None
