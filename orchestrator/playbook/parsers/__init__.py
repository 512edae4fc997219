"""Output parsers: command output in, findings out. Parsing happens here, on the controller.

``PARSERS`` is the one table of the parsers a playbook step may name, each with the module and
function that implement it. A platform's module is imported the first time one of its parsers is
looked up, so loading the playbooks (which only checks the names) imports none of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Final, cast

from orchestrator.playbook.parsers.common import ParseError, Parser

# The name a step's ``parser:`` gives -> "module:function", the module below this package.
_TABLE: Final[Mapping[str, str]] = {
    "linux_packages": "linux:linux_packages",
    "macos_products": "macos:macos_products",
    "windows_detect": "windows:windows_detect",
}


class _Registry(Mapping[str, Parser]):
    """The table above as a read-only mapping of name to parser."""

    def __getitem__(self, key: str) -> Parser:
        module, _, function = _TABLE[key].partition(":")
        return cast(Parser, getattr(importlib.import_module(f"{__name__}.{module}"), function))

    def __contains__(self, key: object) -> bool:  # Mapping's own would import the module
        return key in _TABLE

    def __iter__(self) -> Iterator[str]:
        return iter(_TABLE)

    def __len__(self) -> int:
        return len(_TABLE)


PARSERS: Final[Mapping[str, Parser]] = _Registry()

__all__ = ["PARSERS", "ParseError", "Parser"]
