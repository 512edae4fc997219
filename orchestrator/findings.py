"""A finding: something of a Kaspersky product found on a host, and its one label.

The bottom of the house: parsers make findings, the ledger keeps them as dicts (``to_dict``),
and every view (``runs show``, plan, audit, reports) reads them back with ``from_dict`` and
shows them by ``label()``, so a finding reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# What names a finding in one line: a Linux package, a leftover path; else its catalog product
# (a Windows ProductCode or a macOS receipt is evidence, not a name a reader recognises).
LABEL_EVIDENCE = ("package", "path")


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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """A finding as the ledger keeps it; fields an older kremove did not write are empty."""
        evidence = data.get("evidence") or {}
        return cls(
            product=str(data.get("product") or "?"),
            name=str(data.get("name") or ""),
            version=None if data.get("version") is None else str(data.get("version")),
            kind=str(data.get("kind") or "installed"),
            evidence={str(k): str(v) for k, v in evidence.items()},
        )

    def key(self) -> tuple[str, str, str]:
        """What makes two findings the same thing: product, kind and what names it."""
        return (self.product, self.kind, self._what())

    def label(self) -> str:
        version = f" {self.version}" if self.version else ""
        what = self._what()
        return f"{what}{version}" if self.kind == "installed" else f"{what} (residue)"

    def _what(self) -> str:
        for name in LABEL_EVIDENCE:
            if self.evidence.get(name):
                return self.evidence[name]
        return self.product
