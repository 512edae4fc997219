"""Reading an emulated Windows host's files: its state and its log, as a test looks at them.

The WinRM test fleet keeps them in ``workdir/hosts/NAME/``, a Windows host behind the SSH
fleet's sshd in its host directory; both write them the same way (windows.Machine saves
``state.json`` after every command, the server appends events to ``commands.jsonl``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any


class MachineFiles:
    """Queries on emulated Windows hosts; ``_machine_dir(name)`` says where a host's files are."""

    def _machine_dir(self, name: str) -> Path:
        raise NotImplementedError

    def state(self, name: str) -> dict[str, Any]:
        """The host's state as saved after its last command (registry, services, files...)."""
        data: dict[str, Any] = json.loads(
            (self._machine_dir(name) / "state.json").read_text(encoding="utf-8")
        )
        return data

    def products(self, name: str) -> dict[str, str]:
        """Installed Uninstall entries: display name -> registry key (both views)."""
        found = {}
        for path, values in self.state(name)["registry"].items():
            if "\\Uninstall\\" in path and "DisplayName" in values:
                found[values["DisplayName"][1]] = path
        return found

    def kaspersky_products(self, name: str) -> dict[str, str]:
        """Installed Kaspersky Uninstall entries: display name -> version (what status shows)."""
        found = {}
        for path, values in self.state(name)["registry"].items():
            display, publisher, version = (
                str(values.get(v, ["", ""])[1])
                for v in ("DisplayName", "Publisher", "DisplayVersion")
            )
            if "\\Uninstall\\" in path and display and "Kaspersky" in f"{display} {publisher}":
                found[display] = version
        return found

    def log(self, name: str) -> list[dict[str, Any]]:
        path = self._machine_dir(name) / "commands.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]

    def commands_log(self, name: str) -> list[str]:
        """Command lines the host received, oldest first."""
        return [e["command_line"] for e in self.log(name) if e["event"] == "command"]

    def scripts(self, name: str) -> list[str]:
        """Batch scripts written to the host (the text of each temporary .cmd file)."""
        return [e["text"] for e in self.log(name) if e["event"] == "script"]

    def printed(self, name: str) -> str:
        """Everything the host's commands printed (stdout and stderr), for leak checks."""
        return "".join(e["stdout"] + e["stderr"] for e in self.log(name) if e["event"] == "output")

    def leftovers(self, name: str) -> list[str]:
        """kremove's files on the host: its temporary scripts and msiexec logs (kremove-*)."""
        return sorted(
            p
            for p in self.state(name)["files"]
            if re.search(r"\\kremove-[^\\]*\.(cmd|log)$", p, re.IGNORECASE)
        )
