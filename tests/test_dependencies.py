"""Dependency floors (issue 15, L9): past every known advisory, pinned for installs, met here.

The advisories below are the ones that reach what kremove does with the package: templates in a
sandbox (Jinja2), SSH transport (paramiko, cryptography), WinRM replies over HTTP (requests,
urllib3). A new advisory is added here first; the test then says which file to change.
"""

from __future__ import annotations

import importlib.metadata as md
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

# package -> (first fixed version, the advisories it closes)
ADVISORIES = {
    "jinja2": ("3.1.6", "CVE-2024-56201, CVE-2024-56326, CVE-2025-27516 (sandbox escapes)"),
    "paramiko": ("3.4.0", "CVE-2023-48795 (Terrapin)"),
    "requests": ("2.33.0", "CVE-2024-47081, CVE-2026-25645"),
    "urllib3": ("2.7.0", "CVE-2025-66418, CVE-2025-66471, CVE-2026-21441, CVE-2026-44432"),
    "cryptography": ("46.0.7", "CVE-2026-39892"),
}


def _runtime_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = (Requirement(r) for r in project["dependencies"])
    return {canonicalize_name(r.name): r for r in reqs}


def _floor(req: Requirement) -> Version | None:
    floors = [Version(s.version) for s in req.specifier if s.operator in (">=", "==")]
    return max(floors) if floors else None


def _constraints() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not NAME==VERSION"
            pins[canonicalize_name(name)] = Version(version)
    return pins


@pytest.mark.parametrize("package", sorted(ADVISORIES))
def test_pyproject_floor_is_past_every_known_advisory(package: str) -> None:
    fixed, advisories = ADVISORIES[package]
    req = _runtime_requirements().get(package)
    assert req is not None, f"pyproject.toml: add {package}>={fixed} ({advisories})"
    floor = _floor(req)
    assert floor is not None and floor >= Version(fixed), (
        f"pyproject.toml: {req} admits versions with {advisories}; raise it to >={fixed}"
    )


def test_installed_versions_meet_the_floors() -> None:
    for name, req in _runtime_requirements().items():
        installed = md.version(name)
        assert req.specifier.contains(installed, prereleases=True), (
            f"{name} {installed} is installed but pyproject.toml asks {req.specifier}"
        )


def test_constraints_pin_every_runtime_dependency_within_its_floor() -> None:
    pins = _constraints()
    closure = _installed_closure()
    missing = sorted(closure - pins.keys())
    assert not missing, f"constraints.txt pins no version of {missing}"
    for name, req in _runtime_requirements().items():
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]} outside pyproject's {req.specifier}"
        )
    for name, pin in pins.items():
        if name in closure:
            assert Version(md.version(name)) == pin, (
                f"{name} {md.version(name)} is installed, constraints.txt pins {pin}: "
                "reinstall with ./dev test or update the pin"
            )


def _installed_closure() -> set[str]:
    """kremove's runtime dependencies and theirs, as installed (no extras, this platform)."""
    seen: set[str] = set()
    todo = list(_runtime_requirements().values())
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        for text in md.distribution(name).requires or ():
            sub = Requirement(text)
            if not (sub.marker and not sub.marker.evaluate({"extra": ""})):
                todo.append(sub)
    return seen
