"""Playbooks, catalog entries and findings as plain typed objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STEP_KINDS = ("detect", "remove", "verify")


@dataclass(frozen=True)
class Step:
    """One templated command. ``readonly`` steps are the only ones a dry run executes."""

    id: str
    kind: str
    readonly: bool
    template: str
    parser: str | None = None
    become: bool = False
    timeout: float = 120.0
    description: str = ""


@dataclass(frozen=True)
class Playbook:
    name: str
    platform: str
    description: str
    steps: tuple[Step, ...]
    source: str


@dataclass(frozen=True)
class Product:
    """A catalog entry: what a product looks like on each platform, and the source of each fact."""

    id: str
    name: str
    vendor: str
    linux_packages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    unconfirmed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    products: Mapping[str, Product]
    linux_residue_paths: tuple[str, ...] = ()

    def product_for_package(self, package: str) -> Product | None:
        for product in self.products.values():
            if package in product.linux_packages:
                return product
        return None

    @property
    def linux_packages(self) -> tuple[str, ...]:
        return tuple(p for product in self.products.values() for p in product.linux_packages)


@dataclass(frozen=True)
class Finding:
    """Something of a product found on a host. ``kind`` is ``installed`` or ``residue``."""

    product: str
    name: str
    version: str | None
    kind: str = "installed"
    evidence: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "evidence": dict(self.evidence),
        }

    def label(self) -> str:
        version = f" {self.version}" if self.version else ""
        what = self.evidence.get("package") or self.evidence.get("path") or self.product
        return f"{what}{version}" if self.kind == "installed" else f"{what} (residue)"
