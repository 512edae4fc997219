"""An Ansible site read as Ansible reads it: what each ``-i`` names (a file, a directory of
inventories, a comma host list), and the group_vars/ and host_vars/ beside each source.

Rules from ansible-core (inventory/manager.py, plugins/vars/host_group_vars.py, parsing/
dataloader.py), documented in docs/inventory.md: a directory is every file in it, sorted and
recursively, except hidden ones, group_vars/host_vars/vars_plugins and Ansible's ignored
extensions; the vars of group or host ``x`` are the first of ``x`` (a directory: its files,
sorted, recursively), ``x.yml``, ``x.yaml``, ``x.json``; they are looked for in the directory of
an inventory file, or in a directory given as inventory, not in directories found inside it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from yaml.nodes import MappingNode

from orchestrator.errors import InventoryError
from orchestrator.inventory.ansible_vars import ansible_layer
from orchestrator.inventory.ansible_yaml import variables
from orchestrator.inventory.model import SiteFile
from orchestrator.inventory.raw import Layer, Origin, Owner, RawInventory, Value
from orchestrator.inventory.settings import put
from orchestrator.inventory.yamlnodes import compose, is_null

# Ansible's INVENTORY_IGNORE_EXTS default (REJECT_EXTS and .orig, .ini, .cfg, .retry), and the
# names it always passes over in an inventory directory.
REJECT_EXTS = (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst")
IGNORED_EXTS: tuple[str, ...] = (*REJECT_EXTS, ".orig", ".ini", ".cfg", ".retry")
IGNORED_NAMES = ("group_vars", "host_vars", "vars_plugins")
VARS_EXTS = (".yml", ".yaml", ".json")  # Ansible's YAML_FILENAME_EXTENSIONS
MAX_FILES = 10_000

Read = Callable[[Path], str]  # a file's text, decoded and decrypted (loader.read_inventory)


@dataclass(frozen=True)
class Source:
    """One ``-i``: the inventory files it stands for, or a comma host list; and the directory its
    group_vars/ and host_vars/ are looked for in."""

    given: str
    files: tuple[Path, ...] = ()
    hosts: str | None = None  # a comma host list: web1.example.org,db1:2222
    basedir: Path | None = None
    skipped: tuple[SiteFile, ...] = ()


def sources(paths: Sequence[Path]) -> list[Source]:
    return [source(path) for path in paths]


def source(path: Path) -> Source:
    """As Ansible's host_list plugin: a comma in something that is not a path makes a host list."""
    given = str(path)
    if "," in given and not path.exists():
        named = [part.strip() for part in given.split(",") if Path(part.strip()).is_file()]
        if named:  # Ansible would take them for host names: never dial a file's name
            raise InventoryError(
                f"names the file {named[0]!r}; -i takes one inventory, or a list of hosts: "
                "give each file with its own -i",
                file=f"-i {given}",
            )
        return Source(given, hosts=given)
    if not path.is_dir():
        return Source(given, (path,), basedir=path.parent)
    files: list[Path] = []
    skipped: list[SiteFile] = []
    _walk(path, files, skipped, set())
    if not files:
        raise InventoryError(
            "directory holds no inventory file (Ansible skips hidden files, group_vars, "
            f"host_vars and {', '.join(IGNORED_EXTS)}); give a directory of inventories or a file",
            file=path,
        )
    return Source(given, tuple(files), basedir=path, skipped=tuple(skipped))


def _walk(directory: Path, files: list[Path], skipped: list[SiteFile], seen: set[Path]) -> None:
    """Inventory files in ``directory``, sorted, subdirectories read in place."""
    real = directory.resolve()
    if real in seen:  # a symlink loop
        return
    seen.add(real)
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise InventoryError(f"cannot be read: {exc.strerror or exc}", file=directory) from None
    for name in names:
        path = directory / name
        reason = _ignored(name)
        if reason is not None:
            if name not in IGNORED_NAMES and not name.startswith("."):
                skipped.append(SiteFile(str(path), "skipped", reason))
        elif path.is_dir():
            _walk(path, files, skipped, seen)
        elif path.is_file() and path.stat().st_size == 0:
            skipped.append(SiteFile(str(path), "skipped", "empty"))
        else:
            files.append(path)
            if len(files) > MAX_FILES:
                raise InventoryError(f"holds more than {MAX_FILES} files", file=directory)


def _ignored(name: str) -> str | None:
    if name.startswith("."):
        return "hidden"
    if name in IGNORED_NAMES:
        return f"{name}: read as variables, not as an inventory"
    ext = next((ext for ext in IGNORED_EXTS if name.endswith(ext)), None)
    if ext is not None:
        return f"Ansible ignores {ext} files in an inventory directory"
    return None


def host_list(text: str) -> RawInventory:
    """``-i web1.example.org,`` or ``-i 'a,b:2222,[2001:db8::1]:22'``: hosts in ``ungrouped``."""
    where = Origin(f"-i {text}")
    raw = RawInventory(files=[text])
    group = raw.group("ungrouped", where)
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, port = _address(item)
        owner = Owner("host", name)
        host = raw.host(name, where)
        if port is not None:
            put(host.layer, "port", port, where, owner, "port")
        group.hosts.setdefault(name, where)
    if not raw.hosts:
        raise InventoryError("the host list names no host; write -i host1,host2", file=where.file)
    return raw


def _address(item: str) -> tuple[str, str | None]:
    """``host``, ``host:port``, ``[v6]:port``; a bare IPv6 address has no port."""
    if item.startswith("[") and "]" in item:
        host, _, rest = item[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    host, sep, port = item.rpartition(":")
    if sep and ":" not in host and port.isascii() and port.isdigit():
        return host, port
    return item, None


@dataclass
class _VarsReader:
    """Reads each vars directory once, even when several sources share it."""

    read: Read
    names: dict[str, set[str]]  # group_vars/host_vars → the names they may give vars to
    done: dict[Path, tuple[dict[str, dict[str, Layer]], list[SiteFile]]] = field(
        default_factory=dict
    )

    def basedir(self, basedir: Path) -> tuple[dict[str, dict[str, Layer]], list[SiteFile]]:
        real = basedir.resolve()
        if real not in self.done:
            layers: dict[str, dict[str, Layer]] = {}
            files: list[SiteFile] = []
            for kind, names in self.names.items():
                layers[kind] = self.directory(basedir / kind, kind, names, files)
            self.done[real] = layers, files
        return self.done[real]

    def directory(
        self, directory: Path, kind: str, names: Iterable[str], files: list[SiteFile]
    ) -> dict[str, Layer]:
        if not directory.exists():
            return {}
        if not directory.is_dir():
            files.append(SiteFile(str(directory), "skipped", "not a directory (Ansible skips it)"))
            return {}
        owner_kind = "group" if kind == "group_vars" else "host"
        layers: dict[str, Layer] = {}
        chosen: set[Path] = set()
        for name in sorted(names):
            found = vars_files(directory, name)
            if found:
                chosen.update(found)
                layers[name] = self.merged(found, Owner(owner_kind, name))
                files += [SiteFile(str(path), kind, name) for path in found]
        files += unused(directory, set(names), owner_kind, chosen)
        return layers

    def merged(self, paths: Sequence[Path], owner: Owner) -> Layer:
        """The vars of several files of one group or host: a later file (sorted) wins a key."""
        layer = Layer()
        for path in paths:
            one = ansible_layer(self.entries(path), owner)
            layer.settings.update(one.settings)
            layer.vars.update(one.vars)
        return layer

    def entries(self, path: Path) -> dict[str, Value]:
        text = self.read(path)
        file = str(path)
        try:
            root = compose(text, file)
        except InventoryError:
            if path.suffix != ".json":
                raise
            return _json_entries(text, file)  # JSON YAML cannot read (tabs): no line numbers
        if root is None or is_null(root):
            return {}  # an empty file gives nothing, as in Ansible
        if not isinstance(root, MappingNode):
            raise InventoryError(
                "a vars file must be a mapping of variable names to values (name: value)",
                file=file,
                line=root.start_mark.line + 1,
            )
        return variables(root, file)


def _json_entries(text: str, file: str) -> dict[str, Value]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise InventoryError(
            "is neither YAML nor JSON; fix its syntax", file=file, line=line
        ) from None
    if not isinstance(data, dict):
        raise InventoryError("a vars file must be a JSON object of variable names", file=file)
    return {str(key): Value(value, Origin(file)) for key, value in data.items()}


def vars_files(directory: Path, name: str) -> list[Path]:
    """The files giving vars to group or host ``name``: the first of ``name`` (a directory: its
    files), ``name.yml``, ``name.yaml``, ``name.json`` that exists."""
    if name in ("", ".", "..") or "/" in name:  # never a path outside the directory
        return []
    for candidate in [directory / name, *(directory / f"{name}{ext}" for ext in VARS_EXTS)]:
        if candidate.is_dir():
            return _vars_directory(candidate)
        if candidate.exists():
            return [candidate]
    return []


def _vars_directory(directory: Path) -> list[Path]:
    """Sorted, recursively; hidden and backup (``~``) files are passed over, and files whose
    extension is not .yml, .yaml or .json (none is fine)."""
    found: list[Path] = []
    for name in sorted(os.listdir(directory)):
        if name.startswith(".") or name.endswith("~"):
            continue
        path = directory / name
        ext = os.path.splitext(name)[1]
        if path.is_dir() and not ext:
            found += _vars_directory(path)
        elif path.is_file() and (not ext or ext in VARS_EXTS):
            found.append(path)
    return found


def unused(directory: Path, names: set[str], kind: str, chosen: set[Path]) -> list[SiteFile]:
    """What a vars directory holds that nothing reads, and why: a name that is not in the
    inventory (a typo?), a file another one shadows, an extension Ansible passes over."""
    skipped: list[SiteFile] = []
    for name in sorted(os.listdir(directory)):
        path = directory / name
        if name.startswith(".") or name.endswith("~") or path in chosen:
            continue
        if path.is_dir() and any(found.is_relative_to(path) for found in chosen):
            continue
        stem, ext = os.path.splitext(name)
        valid = ext in VARS_EXTS
        entity = name if name in names else stem if valid and stem in names else None
        if entity is not None:
            options = ", ".join([entity, *(entity + e for e in VARS_EXTS)])
            why = f"not read: Ansible reads only the first of {options}"
        elif stem in names:
            why = f"not read: Ansible reads only {', '.join(VARS_EXTS)} or no extension"
        else:
            why = f"not read: no {kind} {stem if valid else name!r} in the inventory"
        skipped.append(SiteFile(str(path), "skipped", why))
    return skipped


def attach_vars(
    raw: RawInventory, given: Sequence[Source], read: Read, playbook_dir: Path | None = None
) -> list[SiteFile]:
    """Fill ``raw.vars_files`` from the group_vars/ and host_vars/ of each source, in the order
    the sources were given, and of ``playbook_dir``; return every file read or skipped."""
    groups = set(raw.groups) | {"all", "ungrouped"}
    groups |= {name for host in raw.hosts.values() for name in host.groups}
    reader = _VarsReader(read, {"group_vars": groups, "host_vars": set(raw.hosts)})
    site: list[SiteFile] = []
    for src in given:
        site += [SiteFile(str(path), "inventory") for path in src.files]
        if src.hosts is not None:
            site.append(SiteFile(src.hosts, "inventory", "host list"))
        site += src.skipped
    for src in given:
        if src.basedir is None:  # a host list has no directory (Ansible: no vars files either)
            continue
        first = src.basedir.resolve() not in reader.done
        layers, files = reader.basedir(src.basedir)
        raw.vars_files.groups.append(layers["group_vars"])
        raw.vars_files.hosts.append(layers["host_vars"])
        if first:
            site += files
    if playbook_dir is not None:
        first = playbook_dir.resolve() not in reader.done
        layers, files = reader.basedir(playbook_dir)
        raw.vars_files.play_groups = layers["group_vars"]
        raw.vars_files.play_hosts = layers["host_vars"]
        site += files if first else []
    return site
