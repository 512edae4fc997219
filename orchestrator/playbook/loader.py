"""Loads the catalog and playbooks from the built-in directory and any --playbooks directories."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orchestrator
from orchestrator.errors import PlaybookError
from orchestrator.playbook.catalog import build_catalog, merge, read_catalog
from orchestrator.playbook.model import Catalog, Playbook
from orchestrator.playbook.parsers import PARSERS
from orchestrator.playbook.playbook_file import read_playbook
from orchestrator.playbook.render import Renderer


def builtin_dir() -> Path:
    """The built-in playbooks: ``orchestrator/_playbooks``, a link to the checkout's ``playbooks/``
    that a wheel carries as files, so an installed kremove has them too."""
    return (Path(orchestrator.__file__).resolve().parent / "_playbooks").resolve()


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
    """Later directories override earlier ones: templates and playbooks by name, catalog entries
    key by key (so an override can change one fact of a product and keep the rest)."""
    dirs = (builtin_dir(), *extra_dirs)
    for d in dirs:
        if not d.is_dir():
            raise PlaybookError(f"playbooks directory {d} does not exist")
    merged: dict[str, Any] = {}
    catalog_files: list[Path] = []
    playbooks: dict[str, Playbook] = {}
    for d in dirs:
        catalog_file = d / "catalog.yml"
        if catalog_file.exists():
            merged = merge(merged, read_catalog(catalog_file))
            catalog_files.append(catalog_file)
        for path in sorted(d.glob("*/*.yml")):
            playbook = read_playbook(path)
            playbooks[playbook.name] = playbook
    if not catalog_files:
        raise PlaybookError(f"no catalog.yml found in {', '.join(map(str, dirs))}")
    catalog = build_catalog(merged, catalog_files[-1])
    renderer = Renderer(list(reversed(dirs)))
    for playbook in playbooks.values():
        _check_references(playbook, catalog, renderer)
    return PlaybookSet(
        dirs=dirs,
        catalog=catalog,
        playbooks=playbooks,
        version=f"{orchestrator.__version__}+{_digest(dirs)}",
        renderer=renderer,
    )


def _check_references(playbook: Playbook, catalog: Catalog, renderer: Renderer) -> None:
    """What a step names outside its file: a parser, a catalog exit-code table, a ``when``."""
    for step in playbook.steps:
        if step.parser is not None and step.parser not in PARSERS:
            raise PlaybookError(
                f"step {step.id!r}: unknown parser {step.parser!r} "
                f"(known: {', '.join(sorted(PARSERS))})",
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


def _digest(dirs: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for d in dirs:
        for path in sorted(p for p in d.rglob("*") if p.is_file()):
            h.update(str(path.relative_to(d)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]
