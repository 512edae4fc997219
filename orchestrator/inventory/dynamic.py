"""Inventories that are not static files: ``ansible-inventory --list`` JSON, executable
inventory scripts and inventory plugin configs — told apart here, read by json_inventory.py,
script.py and plugin.py.

The loader asks :func:`detect_dynamic` before it decodes a file (a script may be a program, not
text) and again with the decoded text; whatever it names, :func:`load_dynamic` reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from orchestrator.errors import InventoryError
from orchestrator.inventory import json_inventory, plugin, script
from orchestrator.inventory.raw import RawInventory

SCRIPT = "ansible-script"
JSON = "ansible-json"
PLUGIN = "ansible-plugin"
KINDS = (SCRIPT, JSON, PLUGIN)


def detect_dynamic(path: Path, text: str | None = None) -> str | None:
    """``ansible-script`` for an executable inventory (told from the file itself), and with the
    decoded ``text``: ``ansible-json`` for ``--list`` JSON, ``ansible-plugin`` for a plugin
    config; None for a static file. A file that only half looks like one of these (``#!`` without
    the execute bit, a plugin config not named .yml) is an InventoryError."""
    if script.is_script(path):
        return SCRIPT
    if text is None:
        return None
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            doc = None  # YAML's flow style also starts with {: the YAML reader decides
        if json_inventory.is_list_document(doc):
            return JSON
    return PLUGIN if plugin.plugin_name(text, path) is not None else None


def load_dynamic(
    path: Path, kind: str, text: str | None = None, earlier: Sequence[Path] = ()
) -> RawInventory:
    """Read ``path`` as ``kind`` (from :func:`detect_dynamic`); ``earlier`` are the sources given
    before it, which a ``constructed`` plugin config builds on."""
    if kind == SCRIPT:
        return script.load(path)
    assert text is not None, "JSON and plugin configs are read from their decoded text"
    if kind == JSON:
        doc = json_inventory.decode(text, lambda reason: InventoryError(reason, file=path))
        return json_inventory.parse(doc, str(path))
    name = plugin.plugin_name(text, path)
    assert name is not None
    return plugin.load(path, name, earlier)
