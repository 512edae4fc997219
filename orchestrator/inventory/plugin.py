"""Inventory plugin configs (``aws_ec2.yml``, ``constructed.yml``: YAML whose top-level
``plugin:`` names a plugin) read through an installed ``ansible-inventory``.

kremove cannot run Ansible's plugins and never imports ansible-core (GPL-3.0): it runs the
``ansible-inventory`` program (``KREMOVE_ANSIBLE_INVENTORY``, else the one on PATH) with
``--list`` under a deadline, and reads its JSON like any inventory JSON, variables already merged
by Ansible's precedence. The command line's vault passwords are handed over as files only it can
read, removed when it exits. ``constructed`` builds on the sources given before it, so those are
given to it as well, and only what it added is taken (a second run without it tells what that is).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, ScalarNode

from orchestrator import textsafe
from orchestrator.deadline import Deadline
from orchestrator.errors import InventoryError
from orchestrator.inventory import json_inventory, programs, vault
from orchestrator.inventory.raw import RawInventory, same
from orchestrator.inventory.yamlnodes import compose

PROGRAM_ENV = "KREMOVE_ANSIBLE_INVENTORY"
DEADLINE_SECONDS = 120.0  # a cloud plugin pages through an API
CONFIG_SUFFIXES = (".yml", ".yaml")  # Ansible's auto plugin reads no other
# Plugins that add to the inventory the sources before them made, rather than make their own.
READS_EARLIER = frozenset({"constructed", "ansible.builtin.constructed"})
_PLUGIN_KEY = re.compile(r"""(?:^|[{,\s])["']?plugin["']?\s*:""", re.MULTILINE)
# Set for ansible-inventory: a source it cannot parse is an error, never a warning and no hosts;
# its messages uncoloured.
STRICT_ENV = {
    "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
    "ANSIBLE_NOCOLOR": "1",
}


def plugin_name(text: str, path: Path) -> str | None:
    """The plugin a config names in its top-level ``plugin:`` key, or None for any other text."""
    if not _PLUGIN_KEY.search(text):
        return None
    try:
        root = compose(text, str(path))
    except InventoryError:
        return None  # not YAML: another reader says what is wrong
    if not isinstance(root, MappingNode):
        return None
    for key, value in root.value:
        if isinstance(key, ScalarNode) and key.value == "plugin":
            line = key.start_mark.line + 1
            if not isinstance(value, ScalarNode) or not str(value.value).strip():
                raise InventoryError("plugin: must name an inventory plugin", file=path, line=line)
            if path.suffix.lower() not in CONFIG_SUFFIXES:
                raise InventoryError(
                    f"is an inventory plugin config (plugin: {textsafe.line(value.value)[:80]}), "
                    "which Ansible reads only from a .yml or .yaml file; rename it",
                    file=path,
                    line=line,
                )
            return str(value.value).strip()
    return None


def load(path: Path, name: str, earlier: Sequence[Path] = ()) -> RawInventory:
    """What ``ansible-inventory --list`` makes of the config (with the ``earlier`` sources for a
    plugin that builds on them)."""
    sources = [*earlier, path] if name in READS_EARLIER else [path]
    tool = program(path, name, sources)
    programs.check_trusted(path, "inventory plugin config")  # it may template, run lookups
    allowed = programs.timeout(DEADLINE_SECONDS)
    deadline = Deadline.after(allowed)
    label = f"{path} via ansible-inventory"
    with _vault_ids() as vault_args:
        options = [*vault_args, "--list"]
        after = _listing([tool, *options], sources, path, deadline, allowed)
        if len(sources) == 1:
            return json_inventory.parse(after, label)
        before = _listing([tool, *options], sources[:-1], path, deadline, allowed)
    return json_inventory.parse(added(before, after), label, define_hosts=True)


def program(path: Path, name: str, sources: Sequence[Path]) -> str:
    """The ansible-inventory to run, or a one-line error saying what to install (or how to
    export ``sources`` where Ansible is installed)."""
    given = os.environ.get(PROGRAM_ENV, "").strip()
    found = shutil.which(given or "ansible-inventory")
    if found is not None:
        return found
    if given:
        raise InventoryError(
            f"{PROGRAM_ENV}={given} is not an executable program; point it at ansible-inventory",
            file=path,
        )
    parts = name.split(".")
    collection = (
        f", and ansible-galaxy collection install {parts[0]}.{parts[1]} for this plugin"
        if len(parts) == 3 and parts[:2] != ["ansible", "builtin"]
        else ""
    )
    inputs = " ".join(f"-i {shlex.quote(str(source))}" for source in sources)
    raise InventoryError(
        f"inventory plugin {name!r} is run by Ansible, and ansible-inventory is not installed "
        f"(not on PATH, {PROGRAM_ENV} unset); install it (pipx install ansible-core{collection}) "
        f"or, where Ansible is installed, export the inventory (ansible-inventory {inputs} "
        "--list > inventory.json) and give that file",
        file=path,
    )


def _listing(
    command: list[str], sources: Sequence[Path], path: Path, deadline: Deadline, allowed: float
) -> Any:
    """ansible-inventory's JSON for ``sources`` (``command`` is the program and its options)."""

    def fail(reason: str) -> InventoryError:
        return InventoryError(f"ansible-inventory {reason}", file=path)

    inputs = [arg for source in sources for arg in ("-i", str(source.absolute()))]
    done = programs.run(
        [*command, *inputs],
        cwd=None,  # the operator's directory: ansible-inventory finds the ansible.cfg they would
        deadline=deadline,
        allowed=allowed,
        fail=fail,
        env={**os.environ, **STRICT_ENV},
    )
    if done.exit_code != 0:
        said = programs.stderr_said(_complaint(done.stderr, path))
        raise fail(f"could not read it (exit {done.exit_code}){said}")
    doc = json_inventory.decode(done.stdout, lambda reason: fail(f"printed what {reason}"))
    if not isinstance(doc, dict):
        raise fail("printed JSON that is not an inventory object")
    return doc


def _complaint(stderr: bytes, path: Path) -> bytes:
    """What ansible-inventory said about the config: its messages unwrapped (it wraps them at 80
    columns), and only its auto plugin's complaint about the config and its ERROR! when it made
    one (the yaml and ini plugins' complaints about a plugin config are noise)."""
    entries: list[str] = []
    for line in stderr.decode("utf-8", errors="replace").splitlines():
        if not entries or line.startswith(("[WARNING]", "[ERROR]", "[DEPRECATION", "ERROR!")):
            entries.append(line.strip())
        else:  # a wrapped line; textwrap also breaks after a hyphen
            joint = "" if entries[-1].endswith("-") else " "
            entries[-1] += joint + line.strip()
    about = [e for e in entries if "with auto plugin" in e and str(path.absolute()) in e]
    errors = [e for e in entries if e.startswith(("ERROR!", "[ERROR]"))]
    return "\n".join(about + errors if about else entries).encode()


@contextmanager
def _vault_ids() -> Iterator[list[str]]:
    """``--vault-id LABEL@FILE`` for each vault password of the command line, each FILE mode 0600
    in a fresh 0700 directory that is removed when the block ends."""
    passwords = vault.keyring().passwords
    if not passwords:
        yield []
        return
    folder = tempfile.mkdtemp(prefix="kremove-vault-")
    try:
        args: list[str] = []
        for number, password in enumerate(passwords):
            file = os.path.join(folder, str(number))
            with os.fdopen(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
                f.write(password.secret.reveal())
            args += ["--vault-id", f"{password.label}@{file}"]
        yield args
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def added(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``after`` (a ``--list`` document) that ``before`` lacks: groups, members,
    children, and variables new or changed, per group and per host."""
    doc: dict[str, Any] = {}
    for name, group in after.items():
        if name == json_inventory.META or not isinstance(group, dict):
            continue
        old = before.get(name)
        old = old if isinstance(old, dict) else {}
        entry: dict[str, Any] = {
            key: [item for item in group.get(key) or [] if item not in (old.get(key) or [])]
            for key in ("hosts", "children")
        }
        entry["vars"] = _changed(group.get("vars"), old.get("vars"))
        if name not in before or any(entry.values()):
            doc[name] = entry
    hostvars = json_inventory.host_vars_of(after, "ansible-inventory") or {}
    old_hostvars = json_inventory.host_vars_of(before, "ansible-inventory") or {}
    changed = {
        host: _changed(values, old_hostvars.get(host))
        for host, values in hostvars.items()
        if _changed(values, old_hostvars.get(host))
    }
    doc[json_inventory.META] = {"hostvars": changed}
    return doc


def _changed(new: Any, old: Any) -> dict[str, Any]:
    new = new if isinstance(new, dict) else {}
    old = old if isinstance(old, dict) else {}
    return {key: value for key, value in new.items() if key not in old or not same(old[key], value)}
