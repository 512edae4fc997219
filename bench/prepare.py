"""What each tool is given for one fleet: inventories, the rendered commands, the Ansible vars.

Every command the three tools send is rendered by kremove's own renderer from the built-in
playbooks, so the work on the hosts is the same: kremove sends it, Ansible's shell module runs
it, the OpenSSH floor sends it wrapped in sudo exactly as kremove wraps it.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestrator.engine.host import plan_steps
from orchestrator.engine.prepare import template_context
from orchestrator.inventory.loader import load_inventories
from orchestrator.playbook.loader import load_playbooks
from orchestrator.playbook.model import Finding
from orchestrator.transports.base import become_command

PLACEHOLDER = "BENCHPACKAGES"
# dpkg states in which kremove's parser reports a package as installed (parsers._DPKG_PRESENT).
PRESENT = "installed|half-installed|unpacked|half-configured|triggers-awaited|triggers-pending"
FLOOR_MARKER = "kremove-become-0123456789abcdef"  # kremove draws a random one per command


class Unsafe(str):
    """A value Ansible must not template (it is a shell command with ${...} and %{...})."""


yaml.SafeDumper.add_representer(
    Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value), style='"')
)


@dataclass(frozen=True)
class Commands:
    detect: str  # the detection script, as kremove's shell runs it after sudo
    floor: str  # the privilege probe, then the same wrapped as kremove wraps it: sudo -n ...


def installed_regex(packages: tuple[str, ...]) -> str:
    """A line of the detection output saying one of ``packages`` is installed; group 1: its name."""
    names = "|".join(re.escape(p) for p in packages)
    return rf"^dpkg\t({names})\t[^\t]+\t[^\t]*\t(?:[^\t\n]* )?(?:{PRESENT})$"


def render(inventory: Path, vars_path: Path) -> Commands:
    """Render the detection command and write the Ansible vars for detect.yml and remove.yml."""
    hosts = load_inventories([inventory]).hosts
    host = next(iter(hosts.values()))
    playbooks = load_playbooks()
    context = template_context(host, playbooks)
    detect_book = playbooks.playbook_for("linux", "detect")
    remove_book = playbooks.playbook_for("linux", "remove")
    assert detect_book is not None and remove_book is not None
    steps = {step.id: step for step in detect_book.steps}
    if list(steps) != ["privilege", "packages"]:
        raise SystemExit(f"bench: unexpected linux detect steps {list(steps)}; update bench/")
    probe = playbooks.renderer.render(steps["privilege"].template, context).text
    detect = playbooks.renderer.render(steps["packages"].template, context).text
    catalog = playbooks.catalog
    products: list[dict[str, Any]] = []
    cleanup = ""
    for product in catalog.ordered():
        if not product.linux_packages:
            continue
        found = Finding(
            product=product.id,
            name=product.name,
            version="0",
            evidence={"manager": "dpkg", "package": PLACEHOLDER, "arch": "all"},
        )
        steps = plan_steps(remove_book.steps, [product], [found], context, playbooks)
        by_step = {p.step.id: p.command.text for p in steps}
        if set(by_step) - {"purge", "residue", "cleanup"}:
            raise SystemExit(f"bench: unexpected linux removal steps {sorted(by_step)}")
        head, _, tail = by_step["purge"].partition(PLACEHOLDER)
        if not _:
            raise SystemExit("bench: the purge template no longer lists the packages")
        products.append(
            {
                "id": product.id,
                "installed": installed_regex(product.linux_packages),
                "purge_head": Unsafe(head),
                "purge_tail": Unsafe(tail),
                "has_residue": "residue" in by_step,
                "residue": Unsafe(by_step.get("residue", "true")),
            }
        )
        cleanup = by_step["cleanup"]
    doc = {
        "detect_command": Unsafe(detect),
        "cleanup_command": Unsafe(cleanup),
        "any_installed": installed_regex(catalog.linux_packages),
        "products": products,
    }
    vars_path.write_text(
        "# written by bench/prepare.py from kremove's rendered playbooks\n"
        + yaml.safe_dump(doc, sort_keys=False, width=1000)
    )
    # kremove's detection is two commands on one connection: the privilege probe as the login,
    # then the scan through sudo. The floor does both on one connection too (the probe in a
    # subshell: it ends with exit).
    floor = f"( {probe}\n)\n" + become_command(detect, host.become.user, marker=FLOOR_MARKER)
    if "{}" in floor:
        raise SystemExit("bench: the floor command holds {}, which xargs -I{} would replace")
    return Commands(detect=detect, floor=floor)


def ansible_inventory(fleet: Any, path: Path, known_hosts: Path) -> Path:
    """The fleet as an Ansible INI inventory, with the same key and known_hosts as kremove's."""
    lines = ["[fleet]"]
    for host in fleet.hosts:
        lines.append(f"{host.name} ansible_host={host.address} ansible_port={host.port}")
    common = f"-F /dev/null -o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes"
    lines += [
        "",
        "[fleet:vars]",
        f"ansible_user={fleet.hosts[0].user}",
        f"ansible_ssh_private_key_file={fleet.client_key}",
        f"ansible_ssh_common_args='{common}'",
        "",
    ]
    path.write_text("\n".join(lines))
    return path


def negotiated(kremove_python: Path, inventory: Path, host: str, workdir: Path) -> dict[str, str]:
    """What kremove's paramiko agrees with the fleet's sshd, from paramiko's DEBUG log."""
    log = workdir / "paramiko-debug.log"
    code = (
        "import logging, sys\n"
        f"logging.basicConfig(filename={str(log)!r}, level=logging.DEBUG)\n"
        "from orchestrator.cli import main\n"
        f"sys.argv = ['kremove', 'detect', '-i', {str(inventory)!r}, '--limit', {host!r},"
        f" '--json', '--ledger', {str(workdir / 'probe-ledger.db')!r}]\n"
        "main()\n"
    )
    subprocess.run(
        [str(kremove_python), "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    agreed: dict[str, str] = {}
    for line in log.read_text().splitlines():
        m = re.search(r"paramiko\.transport:(Kex|Cipher|MAC|HostKey|Compression): (\S+)$", line)
        if m:
            agreed.setdefault(m.group(1).lower(), m.group(2))
    if "kex" not in agreed:
        print(f"bench: cannot tell kremove's key exchange from {log}", file=sys.stderr)
        raise SystemExit(1)
    return agreed


logging.getLogger("paramiko").addHandler(logging.NullHandler())
