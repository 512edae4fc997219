"""The parser registry: one table, each name resolving to its platform's module on first use."""

from __future__ import annotations

import subprocess
import sys

from orchestrator.playbook.loader import load_playbooks
from orchestrator.playbook.parsers import (
    PARSERS,
    PROBES,
    encryption,
    linux,
    macos,
    privilege,
    windows,
)


def test_each_name_resolves_to_the_function_of_its_platform_module() -> None:
    assert dict(PARSERS) == {
        "linux_packages": linux.linux_packages,
        "macos_products": macos.macos_products,
        "windows_detect": windows.windows_detect,
        "windows_encryption": encryption.windows_encryption,
    }


def test_every_parser_a_builtin_playbook_names_is_registered() -> None:
    named = {
        step.parser
        for playbook in load_playbooks().playbooks.values()
        for step in playbook.steps
        if step.parser is not None
    }
    assert named == set(PARSERS) | set(PROBES)


def test_each_probe_name_resolves_to_its_function() -> None:
    assert dict(PROBES) == {
        "posix_privilege": privilege.posix_privilege,
        "windows_privilege": privilege.windows_privilege,
    }
    assert not set(PROBES) & set(PARSERS)  # a step's output is findings or a fact, never both


def test_loading_the_playbooks_imports_no_platform_parser() -> None:
    """Registering is the table's job, not an import's: nothing below needs a platform module."""
    code = (
        "import sys\n"
        "from orchestrator.playbook.loader import load_playbooks\n"
        "load_playbooks()\n"
        "print(sorted(m for m in sys.modules if m.startswith('orchestrator.playbook.parsers.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['orchestrator.playbook.parsers.common']"
