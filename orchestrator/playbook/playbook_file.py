"""One playbook file (``<platform>/<name>.yml``) read and checked into a Playbook."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn

from orchestrator.errors import PlaybookError
from orchestrator.playbook.model import EXIT_MEANINGS, FOR_EACH, STEP_KINDS, Playbook, Step
from orchestrator.playbook.yamldoc import mapping, read_yaml

# A step says exactly what a Step holds: an unknown key is a typo, not a silently ignored fact.
_STEP_KEYS = {f.name for f in fields(Step)}


def read_playbook(path: Path) -> Playbook:
    """The playbook in ``path``; which parser and exit-code table a step names is checked later,
    against the registry and the merged catalog."""
    doc = mapping(read_yaml(path), "playbook", path, {"name", "platform", "description", "steps"})
    for key in ("name", "platform"):
        if not isinstance(doc.get(key), str):
            raise PlaybookError(f"{key!r} is required", file=path)
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise PlaybookError("'steps' must be a non-empty list", file=path)
    return Playbook(
        name=doc["name"],
        platform=doc["platform"],
        description=str(doc.get("description", "")),
        steps=tuple(_step(raw, i, path) for i, raw in enumerate(raw_steps, 1)),
        source=str(path),
    )


def _step(item: Any, index: int, path: Path) -> Step:
    raw = mapping(item, f"step {index}", path, _STEP_KEYS)
    if not isinstance(raw.get("id"), str) or not isinstance(raw.get("template"), str):
        raise PlaybookError(f"step {index}: 'id' and 'template' are required", file=path)
    _check_kind(raw, path)
    timeout = raw.get("timeout", 120)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        _fail(raw, "timeout must be a positive number of seconds", path)
    if raw.get("for_each") not in FOR_EACH:
        _fail(raw, "for_each must be 'product', 'finding' or absent", path)
    exit_codes = raw.get("exit_codes")
    valid_table = isinstance(exit_codes, dict) and all(
        isinstance(c, int) and m in EXIT_MEANINGS for c, m in exit_codes.items()
    )
    if not (exit_codes is None or isinstance(exit_codes, str) or valid_table):
        _fail(
            raw,
            "exit_codes must name a catalog table or map integer "
            f"codes to {', '.join(EXIT_MEANINGS)}",
            path,
        )
    if raw.get("when") is not None and not isinstance(raw["when"], str):
        _fail(raw, "when must be an expression", path)
    retries = raw.get("retries", 2)
    delay = raw.get("retry_delay", 30)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
        _fail(raw, "retries must be 0 to 10", path)
    if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
        _fail(raw, "retry_delay must be seconds", path)
    return Step(
        id=raw["id"],
        kind=raw["kind"],
        readonly=raw["readonly"],
        template=raw["template"],
        parser=raw.get("parser"),
        become=bool(raw.get("become", False)),
        timeout=float(timeout),
        description=str(raw.get("description", "")),
        for_each=raw.get("for_each"),
        when=raw.get("when"),
        exit_codes=exit_codes,
        retries=retries,
        retry_delay=float(delay),
    )


def _check_kind(raw: dict[str, Any], path: Path) -> None:
    """A known kind, ``readonly`` stated, and detection and verification that change nothing."""
    if raw.get("kind") not in STEP_KINDS:
        _fail(raw, f"kind must be one of {', '.join(STEP_KINDS)}", path)
    if not isinstance(raw.get("readonly"), bool):
        _fail(raw, "'readonly' must be stated, true or false", path)
    if raw["kind"] in ("detect", "verify") and not raw["readonly"]:
        _fail(raw, f"{raw['kind']} steps must be readonly", path)


def _fail(raw: dict[str, Any], problem: str, path: Path) -> NoReturn:
    raise PlaybookError(f"step {raw['id']!r}: {problem}", file=path)
