"""Reading one YAML file of a playbooks directory and checking the shape of what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import PlaybookError
from orchestrator.inventory.yamlnodes import LOADER


def read_yaml(path: Path) -> Any:
    """The document in ``path``; any failure is a PlaybookError naming the file (and line)."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=LOADER)
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


def mapping(value: Any, what: str, path: Path, allowed: set[str]) -> dict[str, Any]:
    """``value`` if it is a mapping of ``allowed`` keys: a typo is an error, not ignored."""
    if not isinstance(value, dict):
        raise PlaybookError(f"{what} must be a mapping", file=path)
    unknown = sorted(set(map(str, value)) - allowed)
    if unknown:
        raise PlaybookError(
            f"{what}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})", file=path
        )
    return value


def strings(value: Any, what: str, path: Path) -> tuple[str, ...]:
    """``value`` if it is a list of non-empty strings (absent: none)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PlaybookError(f"{what} must be a list of non-empty strings", file=path)
    return tuple(value)
