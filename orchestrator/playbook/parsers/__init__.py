"""Output parsers: command output in, findings out. Parsing happens here, on the controller.

``PARSERS`` is the one table of the parsers a playbook step may name, each with the module and
function that implement it; ``PROBES`` the same for the probes, whose output says something about
the login (its privilege) rather than what is installed. A module is imported the first time one
of its functions is looked up, so loading the playbooks (which only checks names) imports none.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Final, TypeVar, cast

from orchestrator.playbook.parsers.common import ParseError, Parser

if TYPE_CHECKING:
    from orchestrator.playbook.parsers.privilege import ProbeParser

T = TypeVar("T")

# The name a step's ``parser:`` gives -> "module:function", the module below this package.
_TABLE: Final[Mapping[str, str]] = {
    "linux_packages": "linux:linux_packages",
    "macos_products": "macos:macos_products",
    "windows_detect": "windows:windows_detect",
    "windows_encryption": "encryption:windows_encryption",
}
# Probes: output in, a fact about the login out (parsers/privilege.py), not findings.
_PROBES: Final[Mapping[str, str]] = {
    "posix_privilege": "privilege:posix_privilege",
    "windows_privilege": "privilege:windows_privilege",
}


class _Registry(Mapping[str, T]):
    """A table above as a read-only mapping of name to function."""

    def __init__(self, table: Mapping[str, str]) -> None:
        self._table = table

    def __getitem__(self, key: str) -> T:
        module, _, function = self._table[key].partition(":")
        return cast(T, getattr(importlib.import_module(f"{__name__}.{module}"), function))

    def __contains__(self, key: object) -> bool:  # Mapping's own would import the module
        return key in self._table

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


PARSERS: Final[Mapping[str, Parser]] = _Registry(_TABLE)
PROBES: Final[Mapping[str, ProbeParser]] = _Registry(_PROBES)

__all__ = ["PARSERS", "PROBES", "ParseError", "Parser"]
