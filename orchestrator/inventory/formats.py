"""Which format an inventory file is, from its content as Ansible decides it, not its name.

Ansible offers a file to its yaml plugin, then its ini plugin: a YAML mapping is a YAML
inventory whatever the file is called (``production``, ``inventories/prod/hosts``), and what YAML
cannot read as a mapping is INI. kremove does the same, with two guards so that a broken file is
one clear error instead of a different inventory: text whose first line is a YAML key (``all:``)
is YAML even when the YAML is broken (never hosts named ``all:``), and a file that is neither
says so in one line.
"""

from __future__ import annotations

import re
from pathlib import Path

from yaml.nodes import MappingNode, ScalarNode

from orchestrator.errors import InventoryError
from orchestrator.inventory.yamlnodes import compose

YAML_SUFFIXES = (".yml", ".yaml")
# An INI section header: [group], [group:vars], [group:children].
INI_SECTION = re.compile(r"\[\s*[^\[\]:\s]+\s*(?::\s*\w+\s*)?\]\s*(?:[#;].*)?")
# A YAML mapping key at the start of a line (``all:``, ``hosts: {}``), never an INI
# ``key=value`` or ``host:port``.
YAML_KEY = re.compile(r"[^\s=#;\[{-][^=#]*?:(?:\s|$)")
YAML_START = re.compile(r"(?:---|%YAML|- |-$|\{)")
NEITHER = (
    "is neither a YAML inventory (a mapping such as all: or hosts:) nor Ansible INI ([group] "
    "sections and host lines); give an Ansible INI or YAML inventory, a kremove YAML or a .csv"
)


def file_format(path: Path, text: str) -> str:
    """``csv`` and ``ansible-ini`` by extension (.csv, .ini); any other file by its content:
    ``yaml`` (kremove or Ansible YAML, parse_text tells them apart) or ``ansible-ini``."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".ini":
        return "ansible-ini"
    return content_format(text, str(path), yaml_suffix=suffix in YAML_SUFFIXES)


def content_format(text: str, file: str, *, yaml_suffix: bool = False) -> str:
    try:
        root = compose(text, file)
    except InventoryError:
        root = None
    if isinstance(root, MappingNode) and not _ini_keys(root):
        return "yaml"
    first = first_line(text)
    if first is None:
        return "yaml" if yaml_suffix else "ansible-ini"  # empty: each parser says so
    if not INI_SECTION.fullmatch(first[1]) and (
        YAML_KEY.match(first[1]) or YAML_START.match(first[1])
    ):
        return "yaml"  # written as YAML: the YAML parser names what is wrong with it
    return "ansible-ini"


def first_line(text: str) -> tuple[int, str] | None:
    """The first line that is not blank or a comment (``#``, INI's ``;``): number, stripped."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and stripped[0] not in "#;":
            return number, stripped
    return None


def _ini_keys(root: MappingNode) -> bool:
    """A YAML mapping whose keys hold ``=`` is INI host lines that happen to contain ``: ``
    (``h1 ansible_ssh_common_args='-o X: y'``); no group or kremove key holds one."""
    return any(isinstance(key, ScalarNode) and "=" in str(key.value) for key, _ in root.value)


def guessed_ini_error(exc: InventoryError, path: Path, text: str) -> InventoryError:
    """An INI error in a file read as INI only because it is not YAML: when its very first line
    is not INI either, the file is neither, and the message says what was expected."""
    first = first_line(text)
    if first is None or exc.line != first[0] or path.suffix.lower() in (".ini", ".csv"):
        return exc
    if content_format(text, str(path), yaml_suffix=path.suffix.lower() in YAML_SUFFIXES) == "yaml":
        return exc
    return InventoryError(NEITHER, file=exc.file, line=exc.line)
