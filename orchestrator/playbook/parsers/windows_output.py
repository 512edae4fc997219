"""What playbooks/windows/detect.cmd.j2 prints, read into sections, registry keys and states.

The batch script only prints. Its output is a series of sections, each opened by
``==kremove:section NAME ARGS==`` and, for a section that ran one command, closed by
``==kremove:rc N==`` (that command's exit code). ``==kremove:end==`` proves the script ran to its
end. reg.exe and sc.exe print their own, unlocalized, layouts; only their error sentences are
translated, so no decision here depends on an English message except as a last resort.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from orchestrator.playbook.parsers.common import ParseError

# The keys detect.cmd.j2 queries, as reg.exe prints them. The 32-bit view is read through its
# WOW6432Node path so that the printed key says which view an entry lives in.
UNINSTALL_ROOTS = {
    "64": r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall",
    "32": r"HKEY_LOCAL_MACHINE\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall",
}
SERVICES_ROOT = r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services"
_HIVES = {
    "HKLM": "HKEY_LOCAL_MACHINE",
    "HKCU": "HKEY_CURRENT_USER",
    "HKCR": "HKEY_CLASSES_ROOT",
    "HKU": "HKEY_USERS",
    "HKCC": "HKEY_CURRENT_CONFIG",
}

# reg.exe: four spaces, the value name, four spaces, the type, four spaces, the data.
_REG_VALUE = re.compile(r"^ {4}(.+?) {4}(REG_[A-Z0-9_]+)(?: {4}(.*))?$")
_MARKER = re.compile(r"^==kremove:(\S+)(?: (.*?))?==$")
# reg.exe's "key not found" sentence, in English only; every other language is handled without it.
_NOT_FOUND = "unable to find the specified registry key"


@dataclass
class Section:
    """One section of the output: its name and arguments, its lines, its command's exit code."""

    name: str
    args: list[str]
    lines: list[str] = field(default_factory=list)
    rc: int | None = None

    def describe(self) -> str:
        return " ".join([self.name, *self.args])

    def error_text(self) -> str:
        text = " ".join(ln.strip() for ln in self.lines if ln.strip())
        return text[:300] or "no output"


@dataclass
class RegKey:
    """A key as ``reg query`` lists it, with its values by case-folded name."""

    path: str
    values: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (type, data)

    def text(self, name: str) -> str | None:
        value = self.values.get(name.casefold())
        return None if value is None else value[1]


def read_sections(lines: Sequence[str]) -> tuple[list[str], list[Section]]:
    """The words of the architecture line, and the sections in the order they came."""
    arch: list[str] = []
    sections: list[Section] = []
    current: Section | None = None
    for line in lines:
        marker = _MARKER.match(line)
        if marker is None:
            if current is not None:
                current.lines.append(line)
            continue
        tag, rest = marker.group(1), (marker.group(2) or "").split()
        if tag == "arch":
            arch = rest
        elif tag == "section" and rest:
            current = Section(rest[0], rest[1:])
            sections.append(current)
        elif tag == "rc" and current is not None and rest:
            try:
                current.rc = int(rest[0])
            except ValueError:
                raise ParseError(f"bad exit code line {line!r} in the detection output") from None
            current = None
        elif tag == "end":
            current = None
    return arch, sections


def succeeded(section: Section, *, may_be_missing: bool) -> bool:
    """True when the section's command succeeded; False when its key may be, and is, absent."""
    if section.rc is None:
        raise ParseError(f"section {section.describe()!r} has no exit code line")
    if section.rc == 0:
        return True
    if may_be_missing:
        return False
    raise ParseError(f"{section.describe()}: the query exited {section.rc}: {section.error_text()}")


def key_not_found(section: Section) -> bool:
    return _NOT_FOUND in section.error_text().casefold()


def reg_keys(lines: Iterable[str]) -> list[RegKey]:
    """``reg query`` output: a key's full path on its own line, then its values, indented."""
    keys: list[RegKey] = []
    current: RegKey | None = None
    for line in lines:
        if line.startswith("HKEY_"):
            current = RegKey(line.strip())
            keys.append(current)
            continue
        value = _REG_VALUE.match(line)
        if value is not None and current is not None:
            name, kind, data = value.groups()
            current.values[name.casefold()] = (kind, _clean(data or ""))
        # Anything else: blank separators, or the next lines of a value holding a line break.
    return keys


def _clean(text: str) -> str:
    """Host text made safe to carry: control characters (never in a real name) replaced."""
    return "".join("\ufffd" if unicodedata.category(ch) == "Cc" else ch for ch in text).strip()


def sc_states(lines: Iterable[str]) -> dict[str, tuple[str, str]]:
    """``sc query``: ``SERVICE_NAME: x`` then ``STATE : 4  RUNNING`` among indented fields."""
    states: dict[str, tuple[str, str]] = {}
    name: str | None = None
    for line in lines:
        if line.startswith("SERVICE_NAME:"):
            name = line.partition(":")[2].strip()
            states[name.casefold()] = (name, "unknown")
        elif name is not None and line.strip().startswith("STATE"):
            words = line.partition(":")[2].split()
            if len(words) >= 2:
                states[name.casefold()] = (name, words[1])
    return states


def parent(path: str) -> str:
    return path.rpartition("\\")[0]


def leaf(path: str) -> str:
    return path.rpartition("\\")[2]


def full_key(key: str) -> str:
    """``HKLM\\X`` as reg.exe prints it: ``HKEY_LOCAL_MACHINE\\X``."""
    hive, sep, rest = key.partition("\\")
    return _HIVES.get(hive.upper(), hive) + sep + rest
