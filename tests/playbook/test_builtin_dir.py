"""The built-in playbooks travel with the package: a wheel carries every file of playbooks/."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from orchestrator.playbook.loader import builtin_dir

ROOT = Path(__file__).resolve().parents[2]


def test_builtin_playbooks_are_the_checkouts() -> None:
    assert builtin_dir() == (ROOT / "playbooks").resolve()
    assert (builtin_dir() / "catalog.yml").is_file()


def test_package_data_names_every_playbook_file() -> None:
    """Without this, a pip-installed kremove had no catalog.yml and could not scan."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = data["package-data"]["orchestrator"]
    files = [p for p in (ROOT / "playbooks").rglob("*") if p.is_file()]
    assert files
    missing = [
        str(p.relative_to(ROOT))
        for p in files
        if not any(
            fnmatch.fnmatch("_playbooks/" + str(p.relative_to(ROOT / "playbooks")), pat)
            for pat in patterns
        )
    ]
    assert not missing, f"pyproject.toml package-data misses {missing}"
