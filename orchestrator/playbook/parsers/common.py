"""What every output parser shares: its error, its signature and the residue finding."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from orchestrator.playbook.model import Catalog, Finding
from orchestrator.transports.base import CommandResult

# The product of a leftover that no catalog product owns (a shared folder, a driver, a key).
RESIDUE = "residue"


class ParseError(Exception):
    """Output that does not say what the step needed to know. The host ends ``failed``."""


Parser = Callable[[CommandResult, Catalog], list[Finding]]


def residue(name: str, evidence: Mapping[str, str], product: str = RESIDUE) -> Finding:
    """A leftover of ``product`` (a folder, service or registry key), found without a version."""
    return Finding(product=product, name=name, version=None, kind="residue", evidence=evidence)
