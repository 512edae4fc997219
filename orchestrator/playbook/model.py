"""Playbooks, catalog entries and findings as plain typed objects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.findings import Finding as Finding  # re-exported: parsers and the engine

STEP_KINDS = ("detect", "remove", "verify")


# What an exit code means to the engine (see exit_codes in catalog.yml).
EXIT_MEANINGS = ("ok", "reboot", "absent", "retry", "failed")
FOR_EACH = (None, "product", "finding")


@dataclass(frozen=True)
class Step:
    """One templated command. ``readonly`` steps are the only ones a dry run executes.

    ``for_each: product`` repeats the step once per product found on the host, in the catalog's
    removal order (``finding``: once per installed finding, in the same order). ``when`` is an
    expression that must be true for the step to run. ``exit_codes`` names a catalog table (or
    maps codes itself) saying what each exit code means.
    """

    id: str
    kind: str
    readonly: bool
    template: str
    parser: str | None = None
    become: bool = False
    timeout: float = 120.0
    description: str = ""
    for_each: str | None = None
    when: str | None = None
    exit_codes: str | Mapping[int, str] | None = None
    retries: int = 2  # for exit codes meaning "retry"
    retry_delay: float = 30.0


@dataclass(frozen=True)
class Playbook:
    name: str
    platform: str
    description: str
    steps: tuple[Step, ...]
    source: str

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(s.kind for s in self.steps)


@dataclass(frozen=True)
class Product:
    """A catalog entry: what a product looks like on each platform, and the source of each fact.

    ``platforms`` holds each platform's entry as data for templates and parsers (packages,
    display_names, receipts, services, residue_paths, reinstall, ...).
    """

    id: str
    name: str
    vendor: str
    order: int = 50
    platforms: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    unconfirmed: tuple[str, ...] = ()

    def on(self, platform: str) -> Mapping[str, Any]:
        return self.platforms.get(platform, {})

    @property
    def linux_packages(self) -> tuple[str, ...]:
        return tuple(self.on("linux").get("packages", ()))

    @property
    def linux(self) -> Mapping[str, Any]:
        return self.on("linux")

    @property
    def windows(self) -> Mapping[str, Any]:
        return self.on("windows")

    @property
    def macos(self) -> Mapping[str, Any]:
        return self.on("macos")


@dataclass(frozen=True)
class Catalog:
    products: Mapping[str, Product]
    platforms: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    exit_code_tables: Mapping[str, Mapping[int, str]] = field(default_factory=dict)

    def product_for_package(self, package: str) -> Product | None:
        for product in self.products.values():
            if package in product.linux_packages:
                return product
        return None

    @property
    def linux_packages(self) -> tuple[str, ...]:
        return tuple(p for product in self.ordered() for p in product.linux_packages)

    @property
    def linux_residue_paths(self) -> tuple[str, ...]:
        return tuple(self.platforms.get("linux", {}).get("residue_paths", ()))

    def platform(self, name: str) -> Mapping[str, Any]:
        return self.platforms.get(name, {})

    def ordered(self, ids: Iterable[str] | None = None) -> list[Product]:
        """Products (all, or those in ``ids``) in removal order: ``order``, then id."""
        chosen = self.products.values() if ids is None else [self.products[i] for i in set(ids)]
        return sorted(chosen, key=lambda p: (p.order, p.id))

    def exit_meaning(self, table: str | Mapping[int, str] | None, code: int | None) -> str:
        """What ``code`` means under a step's exit-code table; unlisted codes are failures."""
        if code is None:
            return "failed"
        if table is None:
            return "ok" if code == 0 else "failed"
        mapping = self.exit_code_tables.get(table, {}) if isinstance(table, str) else table
        return mapping.get(code, "failed")
