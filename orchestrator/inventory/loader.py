"""Reading inventory files: format detection, decoding, and merging several files in order."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from yaml.nodes import MappingNode, Node

from orchestrator.errors import InventoryError
from orchestrator.inventory import ansible_ini, ansible_yaml, csvfile, native, site, vault
from orchestrator.inventory.ansible_vars import READ_VARS, opened
from orchestrator.inventory.dynamic import detect_dynamic, load_dynamic
from orchestrator.inventory.formats import file_format, guessed_ini_error
from orchestrator.inventory.model import Inventory
from orchestrator.inventory.raw import Owner, RawInventory, Value
from orchestrator.inventory.resolve import resolve
from orchestrator.inventory.yamlnodes import compose

FORMATS = ("native", "ansible-yaml", "ansible-ini", "csv")


def load_inventories(paths: Sequence[Path], playbook_dir: Path | None = None) -> Inventory:
    """All files merged in order into one Inventory; any problem is an InventoryError. The
    group_vars/ and host_vars/ of ``playbook_dir`` apply too, as a playbook's do in Ansible."""
    if not paths:
        raise InventoryError("no inventory given; pass -i FILE")
    merged = RawInventory()
    given = site.sources(paths)  # a directory is its files; a comma list, hosts (site.py)
    files: list[Path] = []
    for source in given:
        for path in source.files:
            merged.absorb(load_file(path, files))
            files.append(path)
        if source.hosts is not None:
            merged.absorb(site.host_list(source.hosts))
    read = site.attach_vars(merged, given, read_decrypted, playbook_dir)  # group_vars/ ...
    return dataclasses.replace(resolve(merged), site=tuple(read))


def load_file(path: Path, earlier: Sequence[Path] = ()) -> RawInventory:
    """One file's raw content, before precedence and cross-file checks; ``earlier`` are the
    sources given before it (a ``constructed`` plugin config builds on them)."""
    kind = detect_dynamic(path)  # an inventory script may be a program: asked before decoding
    if kind is not None:
        return load_dynamic(path, kind)
    text = read_decrypted(path)
    kind = detect_dynamic(path, text)
    if kind is not None:
        raw = load_dynamic(path, kind, text, earlier)
    else:
        try:
            raw = parse_text(text, str(path), file_format(path, text))
        except InventoryError as exc:
            raise guessed_ini_error(exc, path, text) from None
    _open_read_vars(raw)
    return raw


def _open_read_vars(raw: RawInventory) -> None:
    """A vaulted var kremove reads itself (``kaspersky_login``) is decrypted in any format, as
    Ansible inventories' connection settings are: shown as ``!vault`` it would be sent as text."""
    layers = [(Owner("host", h.name), h.layer) for h in raw.hosts.values()]
    layers += [(Owner("group", g.name), g.layer) for g in raw.groups.values()]
    layers += [(Owner("defaults"), h.defaults) for h in raw.hosts.values() if h.defaults]
    for owner, layer in layers:
        for key in READ_VARS & layer.vars.keys():
            layer.vars[key] = Value(opened(layer.vars[key], owner, key), layer.vars[key].origin)


def read_decrypted(path: Path) -> str:
    """A file's text; a whole file encrypted with ansible-vault encrypt is decrypted."""
    text = read_text(path)
    return _decrypted(text, path) if vault.is_vaulted(text) else text


def _decrypted(text: str, path: Path) -> str:
    try:
        plain = vault.keyring().open(vault.vault_text(text, str(path)))
    except vault.VaultError as exc:
        raise InventoryError(f"vault-encrypted file: {exc}", file=path) from None
    try:
        return plain.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InventoryError("decrypted, is not UTF-8 text; save it as UTF-8", file=path) from None


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InventoryError("file not found; check the path given to -i", file=path) from None
    except IsADirectoryError:
        raise InventoryError("is a directory; give an inventory file", file=path) from None
    except PermissionError:
        raise InventoryError("cannot be read: permission denied", file=path) from None
    except OSError as exc:
        raise InventoryError(f"cannot be read: {exc.strerror or exc}", file=path) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InventoryError(
            f"is not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8",
            file=path,
            line=line,
        ) from None


def parse_text(text: str, file: str, kind: str) -> RawInventory:
    """Parse decoded text as ``yaml``, ``native``, ``ansible-yaml``, ``ansible-ini`` or ``csv``."""
    try:
        raw = _parse(text, file, kind)
    except RecursionError:
        raise InventoryError("is nested too deeply to read", file=file) from None
    if not raw.hosts and not raw.groups:
        raise InventoryError("defines no hosts or groups; the inventory is empty", file=file)
    return raw


def _parse(text: str, file: str, kind: str) -> RawInventory:
    if kind == "ansible-ini":
        return ansible_ini.parse(text, file)
    if kind == "csv":
        return csvfile.parse(text, file)
    root = compose(text, file)
    if root is None:
        raise InventoryError("is empty; the inventory defines no hosts", file=file)
    if kind == "yaml":
        kind = yaml_format(root, file)
    return native.parse(root, file) if kind == "native" else ansible_yaml.parse(root, file)


def yaml_format(root: Node, file: str) -> str:
    if not isinstance(root, MappingNode):
        raise InventoryError(
            "the top level must be a mapping (hosts:, groups: … or Ansible's all:)",
            file=file,
            line=root.start_mark.line + 1,
        )
    # Any of kremove's top-level keys makes it a kremove file, so that a misspelt key next to them
    # is reported as unknown instead of being read as an Ansible group.
    keys = {str(key.value) for key, _ in root.value}
    return "native" if keys & set(native.TOP_KEYS) else "ansible-yaml"
