"""Loads the catalog and playbooks: the built-in set with any --playbooks directories over it.

The built-in set is package data (``orchestrator/_playbooks``, read through importlib.resources),
so an installed kremove has it wherever it runs. Each --playbooks directory lies over what came
before it (docs/playbooks.md, "Overriding the built-in playbooks"):

- a file replaces the file at the same path relative to its directory (``windows/remove.yml``,
  ``linux/purge.sh.j2``); the rest is kept;
- a playbook also replaces an earlier directory's playbook of the same ``name``;
- ``catalog.yml`` is merged key by key (``products.kesl.linux.services`` replaces that one fact).

What a run used is what the digest in ``PlaybookSet.version`` covers: every catalog.yml merged, and
of every other path the file that won.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath
from typing import Any

import orchestrator
from orchestrator.errors import PlaybookError
from orchestrator.playbook.catalog import build_catalog, merge, read_catalog
from orchestrator.playbook.model import Catalog, Playbook
from orchestrator.playbook.parsers import PARSERS, PROBES
from orchestrator.playbook.playbook_file import read_playbook
from orchestrator.playbook.render import Renderer

CATALOG = "catalog.yml"
# Where a built-in set taken out of a zipped package is kept until kremove exits.
_KEPT = contextlib.ExitStack()
atexit.register(_KEPT.close)


@functools.cache
def builtin_dir() -> Path | None:
    """The built-in playbooks as a directory: ``files("orchestrator") / "_playbooks"`` (a link to
    the checkout's ``playbooks/``; files in a wheel), or None when this installation lacks them.
    Templates and the digest read real files: a package imported from a zip has them copied out
    (``as_file``) for as long as kremove runs."""
    root = resources.files(orchestrator) / "_playbooks"
    if not root.is_dir():
        return None
    if isinstance(root, Path) or sys.version_info >= (3, 12):
        return _KEPT.enter_context(resources.as_file(root)).resolve()
    # Python 3.11's as_file() takes files only: copy the directory out the same way.
    kept = Path(_KEPT.enter_context(tempfile.TemporaryDirectory(prefix="kremove-playbooks-")))
    _copy(root, kept)
    return kept


def _copy(source: Traversable, target: Path) -> None:
    for item in source.iterdir():
        if item.is_dir():
            (target / item.name).mkdir()
            _copy(item, target / item.name)
        else:
            (target / item.name).write_bytes(item.read_bytes())


@dataclass(frozen=True)
class PlaybookSet:
    """Everything content-side a run needs. ``version`` identifies the exact content used."""

    dirs: tuple[Path, ...]
    catalog: Catalog
    playbooks: Mapping[str, Playbook]
    version: str
    renderer: Renderer

    def playbook_for(self, platform: str, kind: str) -> Playbook | None:
        """The playbook of ``platform`` whose steps are of ``kind`` (detect, remove, verify)."""
        for playbook in self.playbooks.values():
            if playbook.platform == platform and kind in playbook.kinds:
                return playbook
        return None

    def detect_playbook(self, platform: str) -> Playbook | None:
        return self.playbook_for(platform, "detect")


def load_playbooks(extra_dirs: Sequence[Path] = ()) -> PlaybookSet:
    """The built-in set (when installed) with ``extra_dirs`` over it, later over earlier."""
    for d in extra_dirs:
        if not d.is_dir():
            raise PlaybookError(f"playbooks directory {d} does not exist")
    builtin = builtin_dir()
    dirs = (*([builtin] if builtin is not None else []), *extra_dirs)
    files = _winning_files(dirs)
    catalog_files = [d / CATALOG for d in dirs if (d / CATALOG).is_file()]
    if not catalog_files:
        given = f"{', '.join(map(str, extra_dirs))} has none" if extra_dirs else "no --playbooks"
        raise PlaybookError(
            f"no {CATALOG} found: this installation has no built-in playbooks "
            f"(orchestrator/_playbooks) and {given}; reinstall kremove or pass "
            f"--playbooks DIR with a {CATALOG}"
        )
    merged: dict[str, Any] = {}
    for catalog_file in catalog_files:
        merged = merge(merged, read_catalog(catalog_file))
    catalog = build_catalog(merged, catalog_files[-1])
    playbooks = _read_playbooks(files, dirs)
    renderer = Renderer(list(reversed(dirs)))
    for playbook in playbooks.values():
        _check_references(playbook, catalog, renderer)
    return PlaybookSet(
        dirs=dirs,
        catalog=catalog,
        playbooks=playbooks,
        version=f"{orchestrator.__version__}+{_digest(files, catalog_files)}",
        renderer=renderer,
    )


def _winning_files(dirs: Sequence[Path]) -> dict[str, Path]:
    """Each path relative to its directory, with the file of the last directory that has it."""
    files: dict[str, Path] = {}
    for d in dirs:
        for path in sorted(p for p in d.rglob("*") if p.is_file()):
            files[path.relative_to(d).as_posix()] = path
    return files


def _read_playbooks(files: Mapping[str, Path], dirs: Sequence[Path]) -> dict[str, Playbook]:
    """The playbooks (``<platform>/<name>.yml``) that won their path, a directory's over an
    earlier directory's of the same name; then no two may hold steps of one kind for one platform
    (which one would run is not something to leave to the order of files)."""
    order = {d: i for i, d in enumerate(dirs)}
    chosen = sorted(
        (order[path.parents[1]], rel, path)
        for rel, path in files.items()
        if len(PurePosixPath(rel).parts) == 2 and rel.endswith(".yml")
    )
    playbooks: dict[str, Playbook] = {}
    origin: dict[str, int] = {}
    for index, _rel, path in chosen:
        playbook = read_playbook(path)
        if origin.get(playbook.name) == index:
            raise PlaybookError(
                f"playbook name {playbook.name!r} is also used by "
                f"{playbooks[playbook.name].source}; names must be unique in a directory",
                file=path,
            )
        playbooks.pop(playbook.name, None)
        playbooks[playbook.name] = playbook
        origin[playbook.name] = index
    _check_one_per_kind(playbooks.values())
    return playbooks


def _check_one_per_kind(playbooks: Iterable[Playbook]) -> None:
    seen: dict[tuple[str, str], Playbook] = {}
    for playbook in playbooks:
        for kind in sorted(playbook.kinds):
            other = seen.setdefault((playbook.platform, kind), playbook)
            if other is not playbook:
                raise PlaybookError(
                    f"its {kind} steps for {playbook.platform} compete with those of "
                    f"{other.source} ({other.name!r}); to replace that playbook, give this one "
                    f"its path or its name",
                    file=playbook.source,
                )


def _check_references(playbook: Playbook, catalog: Catalog, renderer: Renderer) -> None:
    """What a step names outside its file: a parser, a catalog exit-code table, a ``when``."""
    for step in playbook.steps:
        if step.parser is not None and step.parser not in PARSERS and step.parser not in PROBES:
            raise PlaybookError(
                f"step {step.id!r}: unknown parser {step.parser!r} "
                f"(known: {', '.join(sorted([*PARSERS, *PROBES]))})",
                file=playbook.source,
            )
        if isinstance(step.exit_codes, str) and step.exit_codes not in catalog.exit_code_tables:
            raise PlaybookError(
                f"step {step.id!r}: exit_codes {step.exit_codes!r} is not a table in the "
                f"catalog (known: {', '.join(sorted(catalog.exit_code_tables))})",
                file=playbook.source,
            )
        if step.when is not None:
            renderer.check_expression(step.when, f"{playbook.source}: step {step.id!r}: when")


def _digest(files: Mapping[str, Path], catalog_files: Sequence[Path]) -> str:
    """What the run used: every catalog.yml in merge order, and each other path's winning file.
    With the built-in set alone this is the digest of its directory, file by file."""
    h = hashlib.sha256()
    for rel in sorted(files, key=PurePosixPath):
        for path in catalog_files if rel == CATALOG else [files[rel]]:
            h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]
