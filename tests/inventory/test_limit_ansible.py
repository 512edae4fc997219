"""--limit selects what the real ansible-core selects, host for host and in its order: every pattern
below is given to ``ansible -i INV PATTERN --list-hosts`` (ansible-core 2.18, a test-only program)
and to kremove. Where Ansible warns that a term matches nothing, or selects no host, kremove stops
with one line naming the term instead; the forms kremove refuses on purpose are checked apart, with
what Ansible does with them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from orchestrator.errors import InventoryError
from orchestrator.inventory import load_inventories, select
from orchestrator.inventory.model import Inventory

from .ansible_tools import ansible

# A site as operators write it: ungrouped hosts (one IPv6), ranges (numeric, letters, an IPv6 hex
# range), nested children, a host in several groups, a group listing hosts out of their order.
SITE_INI = """\
    # Ungrouped: a jump host and an IPv6 box
    jump.example.org ansible_host=192.0.2.1
    2001:db8::1

    [web]
    web[01:04].example.org
    web-canary.example.org

    [web_eu]
    web-eu-[a:c].example.org

    [db]
    db-[1:3].example.org
    2001:db8::[a:c]

    [api]
    api1.example.org
    api2.example.org

    [windows]
    dc01.example.org ansible_connection=winrm
    fs01.example.org ansible_connection=winrm

    [canaries]
    web-canary.example.org
    db-2.example.org
    dc01.example.org
    web02.example.org

    [web:children]
    web_eu

    [linux:children]
    web
    db
    api
"""

SITE_YAML = """\
    all:
      hosts:
        solo.example.org:
        "2001:db8::10":
      children:
        linux:
          children:
            web:
              hosts:
                web[1:3].example.org:
                canary.example.org:
              children:
                web_eu:
                  hosts:
                    eu[a:b].example.org:
            db:
              hosts:
                db2.example.org:
                db1.example.org:
                "2001:db8::[1:2]":
        windows:
          hosts:
            dc01.example.org:
            fs01.example.org:
        canaries:
          hosts:
            canary.example.org:
            db1.example.org:
            dc01.example.org:
"""

INI_PATTERNS = [
    # all, names, groups
    "all",
    "*",
    "web",
    "web_eu",
    "linux",
    "ungrouped",
    "canaries",
    "jump.example.org",
    "2001:db8::1",
    "2001:db8::b",
    "fs01.example.org,2001:db8::b",
    "dc01.example.org,web01.example.org",
    # globs: case-sensitive, on group and host names
    "web*",
    "*.example.org",
    "db-?.example.org",
    "w?b",
    "*canar*",
    "ungr*",
    "al*",
    "2001:db8::*,",
    "web0[13].example.org",
    # regexes, matched from the start
    "~web0[13]",
    "~(db|dc)",
    "~.*canary",
    "~api",
    "~web$",
    "~2001:db8::[ab],",
    "~2001:db8::[ab]",  # without a comma: three terms
    # subscripts, on groups, globs and all, in Ansible's order (end included)
    "web[0]",
    "web[-1]",
    "web[-0]",
    "web[0:2]",
    "web[1:]",
    "web[2:2]",
    "web[0:0]",
    "web[01:03]",
    "web[3:99]",
    "linux[0]",
    "linux[-1]",
    "canaries[0]",
    "canaries[1:2]",
    "canaries[-1]",
    "web*[1]",
    "*.example.org[3]",
    "all[0]",
    "all[-1]",
    "db[1:]",
    "web[0]:db[-1]",
    "web[0],db[0],api[0]",
    # colon, comma and whitespace separators; &, ! in any place
    "web:db",
    "web,db",
    "web db",
    "canaries:web",
    "web:!web_eu",
    "!web_eu:web",
    "linux:&canaries",
    "linux,!canaries",
    "!canaries",
    "&canaries",
    "&canaries,!dc01.example.org",
    "web:&canaries:!web02.example.org",
    "!web02.example.org:&canaries:web",
    "web:!web[0]",
    "linux:&web[1:3]",
    # what Ansible ignores with a warning, or where it selects nothing: kremove stops
    "nosuch",
    "Web",
    "WEB*",
    "~WEB",
    "web,nosuch",
    "web:!nosuch",
    "linux:&nosuch",
    "web[x]",
    "web[9]",
    "web[-9]",
    "web[7:9]",
    "2001:db8::*",
    "web01.example.org:2222",
    "web:db,api",
    "web,&db",
]

YAML_PATTERNS = [
    "all",
    "ungrouped",
    "web",
    "linux",
    "canaries",
    "web[0]",
    "web[-1]",
    "web[1:3]",
    "linux[4:]",
    "canaries[1]",
    "all[0:2]",
    "all[-1]",
    "2001:db8::2",
    "2001:db8::10,db",
    "~eu",
    "*.example.org:!linux",
    "web:&canaries",
    "db:!db[0]",
    "nosuch",
    "web_eu[2]",
]


# ansible-core's own InventoryManager in a separate process (it is GPL-3.0: never imported here):
# what ``ansible -i INV PATTERN --list-hosts`` computes, for many patterns in one process.
# test_the_oracle_is_the_ansible_command checks it against the command itself.
ORACLE = """
import json, sys
from ansible.inventory import manager
from ansible.parsing.dataloader import DataLoader
warnings = []
manager.display.warning = lambda message, *args, **kwargs: warnings.append(message)
inventory = manager.InventoryManager(DataLoader(), sources=[sys.argv[1]])
for line in sys.stdin:
    pattern = json.loads(line)
    warnings.clear()
    inventory.clear_caches()
    try:
        hosts, error = [str(host) for host in inventory.list_hosts(pattern)], None
    except Exception as exc:  # AnsibleError, or a crash (IndexError for "web,!")
        hosts, error = [], repr(exc)
    ignored = [w.split("ignoring: ", 1)[1] for w in warnings if "Could not match" in w]
    terms = manager.split_host_pattern(pattern)
    print(json.dumps({"hosts": hosts, "ignored": ignored, "error": error, "terms": terms}))
    sys.stdout.flush()
"""


@dataclass(frozen=True)
class Listed:
    """What Ansible selects for a pattern, the terms it ignored (warning "Could not match supplied
    host pattern"), its error, and how it split the pattern into terms."""

    hosts: list[str]
    ignored: list[str]
    error: str | None = None
    terms: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        """What kremove refuses: a term that matches nothing, an error, or no host at all."""
        return bool(self.ignored) or self.error is not None or not self.hosts


class Oracle:
    """One ansible-core process answering pattern after pattern for one inventory."""

    def __init__(self, inventory: Path) -> None:
        home = inventory.parent / ".ansible"
        env = {**os.environ, "ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp")}
        env["ANSIBLE_CONFIG"] = str(inventory.parent / "no-ansible.cfg")
        self.process = subprocess.Popen(
            [sys.executable, "-c", ORACLE, str(inventory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=inventory.parent,
        )

    def __call__(self, pattern: str) -> Listed:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(pattern) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer, f"the ansible-core process ended at {pattern!r}"
        return Listed(**json.loads(answer))

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def ansible_lists(inventory: Path, pattern: str) -> Listed:
    """What the ``ansible`` command itself prints for ``--list-hosts``."""
    done = ansible("ansible", "-i", str(inventory), pattern, "--list-hosts", cwd=inventory.parent)
    lines = done.stdout.splitlines()
    count = next(i for i, line in enumerate(lines) if re.fullmatch(r"\s*hosts \(\d+\):", line))
    warnings = " ".join(done.stderr.split())
    ignored = re.findall(r"Could not match supplied host pattern, ignoring: (\S+)", warnings)
    return Listed([line.strip() for line in lines[count + 1 :] if line.strip()], ignored)


def site(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@dataclass
class Site:
    path: Path
    inventory: Inventory
    ansible: Oracle


@contextmanager
def opened(tmp: Path, name: str, text: str) -> Iterator[Site]:
    """The site written to ``tmp/name``, loaded by kremove and by one ansible-core process."""
    path = site(tmp, name, text)
    oracle = Oracle(path)
    try:
        yield Site(path, load_inventories([path]), oracle)
    finally:
        oracle.close()


@pytest.fixture(scope="module")
def ini(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with opened(tmp_path_factory.mktemp("ini"), "hosts", SITE_INI) as found:
        yield found


@pytest.fixture(scope="module")
def yaml_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with opened(tmp_path_factory.mktemp("yaml"), "site.yml", SITE_YAML) as found:
        yield found


def kremove_lists(inventory: Inventory, pattern: str) -> list[str] | str:
    """The hosts kremove selects, or its one-line error."""
    try:
        return [host.name for host in select(inventory, pattern, Path("/nonexistent"))]
    except InventoryError as exc:
        assert "\n" not in str(exc)
        return str(exc)


def agrees(inventory: Inventory, pattern: str, listed: Listed) -> None:
    got = kremove_lists(inventory, pattern)
    if not listed.refused:
        assert got == listed.hosts, f"ansible -i INV {pattern!r} --list-hosts"
        return
    assert isinstance(got, str), f"Ansible ignores {listed.ignored} or selects nothing: {got}"
    if listed.ignored:  # kremove stops at the first term Ansible ignores
        assert f"--limit term {listed.ignored[0]!r} matches no host or group" in got
    else:
        assert pattern in got or "past the end" in got


@pytest.mark.parametrize("pattern", INI_PATTERNS)
def test_ini_site_selects_what_ansible_selects(ini: Site, pattern: str) -> None:
    agrees(ini.inventory, pattern, ini.ansible(pattern))


@pytest.mark.parametrize("pattern", YAML_PATTERNS)
def test_yaml_site_selects_what_ansible_selects(yaml_site: Site, pattern: str) -> None:
    agrees(yaml_site.inventory, pattern, yaml_site.ansible(pattern))


def test_the_table_has_both_outcomes(ini: Site) -> None:
    """The comparison means something: most patterns select hosts, a subscript picks from a
    group listed out of definition order, and a dozen are refused."""
    table = {pattern: ini.ansible(pattern) for pattern in INI_PATTERNS}
    assert sum(not listed.refused for listed in table.values()) >= 60
    assert 10 <= sum(listed.refused for listed in table.values()) <= 20
    assert table["canaries[0]"].hosts == ["web-canary.example.org"]
    assert table["canaries:web"].hosts[:4] == [
        "web-canary.example.org",
        "db-2.example.org",
        "dc01.example.org",
        "web02.example.org",
    ]


CROSS_CHECK = ["canaries[1:2]", "linux,!canaries", "2001:db8::b", "web[-1]", "nosuch", "web[7:9]"]


def test_the_oracle_is_the_ansible_command(ini: Site) -> None:
    """The in-process answers are what ``ansible -i INV PATTERN --list-hosts`` prints."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        printed = list(pool.map(lambda p: ansible_lists(ini.path, p), CROSS_CHECK))
    for pattern, listed in zip(CROSS_CHECK, printed, strict=True):
        answered = ini.ansible(pattern)
        assert (answered.hosts, answered.ignored) == (listed.hosts, listed.ignored), pattern


WEB = [f"web0{n}.example.org" for n in range(1, 5)]
EU = [f"web-eu-{letter}.example.org" for letter in "abc"]


@pytest.mark.parametrize(
    ("pattern", "refusal", "ansible_selects"),
    [
        # Ansible documents [:3] as [0:3]; ansible-core reads it as a glob matching "web:", "web3"
        (
            "web[:2]",
            "glob; subscripts are [N], [-N], [N:M] (M included) and [N:]; write web[0:2]",
            [],
        ),
        ("web[-2:]", "'web[-2:]' is no subscript to ansible-core", []),
        ("db[1:3:1]", "'db[1:3:1]' is no subscript to ansible-core", []),
        # the removed [x-y] form still selects positions, with a warning; a glob means characters
        ("web[1-2]", "write web[1:2] for positions", WEB[1:3]),
        # a slice that ends before it starts: documented as empty; [2:0] takes web[2] in fact
        ("web[3:1]", "'web[3:1]': the slice ends before it starts", []),
        ("web[2:0]", "'web[2:0]': the slice ends before it starts", WEB[2:3]),
        # Ansible drops a stray bracket without a word, and takes ~ alone for every host
        ("web[", "'web[' has unbalanced brackets", [*WEB, "web-canary.example.org", *EU]),
        ("web]:db", "'web]:db' has unbalanced brackets", "hosts"),
        ("~", "'~' is an empty regex", "hosts"),
        ("~(", "'~(' is not a valid regex", []),
        ("web,!", "'!' needs a name or pattern after !", "error"),
    ],
)
def test_kremove_refuses_what_ansible_reads_otherwise(
    ini: Site, pattern: str, refusal: str, ansible_selects: list[str] | str
) -> None:
    got = kremove_lists(ini.inventory, pattern)
    assert isinstance(got, str) and refusal in got
    listed = ini.ansible(pattern)
    if ansible_selects == "hosts":
        assert listed.hosts and not listed.ignored  # Ansible selects hosts where kremove stops
    elif ansible_selects == "error":
        assert listed.error
    else:
        assert listed.hosts == ansible_selects
