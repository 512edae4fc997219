"""Loads the catalog and playbooks from the built-in directory and any --playbooks directories."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import orchestrator
from orchestrator.errors import PlaybookError
from orchestrator.playbook.model import STEP_KINDS, Catalog, Playbook, Product, Step
from orchestrator.playbook.parsers import PARSERS
from orchestrator.playbook.render import Renderer


def builtin_dir() -> Path:
    """``playbooks/`` beside the package (kremove is installed from its checkout)."""
    return Path(orchestrator.__file__).resolve().parent.parent / "playbooks"


@dataclass(frozen=True)
class PlaybookSet:
    """Everything content-side a run needs. ``version`` identifies the exact content used."""

    dirs: tuple[Path, ...]
    catalog: Catalog
    playbooks: Mapping[str, Playbook]
    version: str
    renderer: Renderer

    def detect_playbook(self, platform: str) -> Playbook | None:
        for playbook in self.playbooks.values():
            if playbook.platform == platform and any(s.kind == "detect" for s in playbook.steps):
                return playbook
        return None


def load_playbooks(extra_dirs: Sequence[Path] = ()) -> PlaybookSet:
    """Later directories override earlier ones: templates and playbooks by name, products by id."""
    dirs = (builtin_dir(), *extra_dirs)
    for d in dirs:
        if not d.is_dir():
            raise PlaybookError(f"playbooks directory {d} does not exist")
    products: dict[str, Product] = {}
    residue: tuple[str, ...] = ()
    playbooks: dict[str, Playbook] = {}
    for d in dirs:
        catalog_file = d / "catalog.yml"
        if catalog_file.exists():
            doc = _read_yaml(catalog_file)
            new_products, new_residue = _parse_catalog(doc, catalog_file)
            products.update(new_products)
            residue = new_residue if new_residue is not None else residue
        for path in sorted(d.glob("*/*.yml")):
            playbook = _parse_playbook(_read_yaml(path), path)
            playbooks[playbook.name] = playbook
    if not products:
        raise PlaybookError(f"no catalog.yml with products found in {', '.join(map(str, dirs))}")
    renderer = Renderer(list(reversed(dirs)))
    for playbook in playbooks.values():
        for step in playbook.steps:
            if step.parser is not None and step.parser not in PARSERS:
                raise PlaybookError(
                    f"step {step.id!r}: unknown parser {step.parser!r} "
                    f"(known: {', '.join(sorted(PARSERS))})",
                    file=playbook.source,
                )
    return PlaybookSet(
        dirs=dirs,
        catalog=Catalog(products=products, linux_residue_paths=residue),
        playbooks=playbooks,
        version=f"{orchestrator.__version__}+{_digest(dirs)}",
        renderer=renderer,
    )


def _digest(dirs: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for d in dirs:
        for path in sorted(p for p in d.rglob("*") if p.is_file()):
            h.update(str(path.relative_to(d)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlaybookError(f"cannot read: {exc.strerror}", file=path) from None
    except UnicodeDecodeError:
        raise PlaybookError("not UTF-8 text", file=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise PlaybookError(
            f"YAML syntax error: {problem}", file=path, line=None if mark is None else mark.line + 1
        ) from None


def _mapping(value: Any, what: str, path: Path, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PlaybookError(f"{what} must be a mapping", file=path)
    unknown = sorted(set(map(str, value)) - allowed)
    if unknown:
        raise PlaybookError(
            f"{what}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})", file=path
        )
    return value


def _strings(value: Any, what: str, path: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PlaybookError(f"{what} must be a list of non-empty strings", file=path)
    return tuple(value)


def _parse_catalog(doc: Any, path: Path) -> tuple[dict[str, Product], tuple[str, ...] | None]:
    doc = _mapping(doc, "catalog", path, {"version", "platforms", "products"})
    residue = None
    platforms = _mapping(
        doc.get("platforms") or {}, "platforms", path, {"linux", "windows", "macos"}
    )
    if "linux" in platforms:
        linux = _mapping(platforms["linux"], "platforms.linux", path, {"residue_paths"})
        residue = _strings(linux.get("residue_paths"), "platforms.linux.residue_paths", path)
    products: dict[str, Product] = {}
    entries = doc.get("products") or {}
    if not isinstance(entries, dict):
        raise PlaybookError("products must be a mapping of product id to entry", file=path)
    for pid, entry in entries.items():
        what = f"products.{pid}"
        entry = _mapping(
            entry,
            what,
            path,
            {"name", "vendor", "linux", "windows", "macos", "sources", "unconfirmed"},
        )
        if not isinstance(entry.get("name"), str):
            raise PlaybookError(f"{what}.name is required", file=path)
        linux = _mapping(entry.get("linux") or {}, f"{what}.linux", path, {"packages"})
        products[str(pid)] = Product(
            id=str(pid),
            name=entry["name"],
            vendor=str(entry.get("vendor", "Kaspersky")),
            linux_packages=_strings(linux.get("packages"), f"{what}.linux.packages", path),
            sources=_strings(entry.get("sources"), f"{what}.sources", path),
            unconfirmed=_strings(entry.get("unconfirmed"), f"{what}.unconfirmed", path),
        )
    return products, residue


_STEP_KEYS = {"id", "kind", "readonly", "template", "parser", "become", "timeout", "description"}


def _parse_playbook(doc: Any, path: Path) -> Playbook:
    doc = _mapping(doc, "playbook", path, {"name", "platform", "description", "steps"})
    for key in ("name", "platform"):
        if not isinstance(doc.get(key), str):
            raise PlaybookError(f"{key!r} is required", file=path)
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise PlaybookError("'steps' must be a non-empty list", file=path)
    steps = []
    for i, raw in enumerate(raw_steps, 1):
        raw = _mapping(raw, f"step {i}", path, _STEP_KEYS)
        if not isinstance(raw.get("id"), str) or not isinstance(raw.get("template"), str):
            raise PlaybookError(f"step {i}: 'id' and 'template' are required", file=path)
        if raw.get("kind") not in STEP_KINDS:
            raise PlaybookError(
                f"step {raw['id']!r}: kind must be one of {', '.join(STEP_KINDS)}", file=path
            )
        if not isinstance(raw.get("readonly"), bool):
            raise PlaybookError(
                f"step {raw['id']!r}: 'readonly' must be stated, true or false", file=path
            )
        if raw["kind"] in ("detect", "verify") and not raw["readonly"]:
            raise PlaybookError(
                f"step {raw['id']!r}: {raw['kind']} steps must be readonly", file=path
            )
        timeout = raw.get("timeout", 120)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise PlaybookError(
                f"step {raw['id']!r}: timeout must be a positive number of seconds", file=path
            )
        steps.append(
            Step(
                id=raw["id"],
                kind=raw["kind"],
                readonly=raw["readonly"],
                template=raw["template"],
                parser=raw.get("parser"),
                become=bool(raw.get("become", False)),
                timeout=float(timeout),
                description=str(raw.get("description", "")),
            )
        )
    return Playbook(
        name=doc["name"],
        platform=doc["platform"],
        description=str(doc.get("description", "")),
        steps=tuple(steps),
        source=str(path),
    )
