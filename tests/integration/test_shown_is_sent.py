"""On the fleet: what kremove shows and records is what the host ran (issue 15, M2), and a secret a
host echoes back reaches no finding, reason, ledger, export or report (issue 15, L3).

Each fleet host logs every command it receives (tests/fleet/log-command.sh); the ledger holds the
commands as shown, secrets masked. Put the secret's quoted value where the mask is and, after
sudo's wrapper is taken off, every command a host received must be one kremove showed.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from orchestrator.playbook.quoting import utf16le_hex
from tests.cli_runner import kremove
from tests.fleet.fleet import Fleet

MASK = "********"
PASSWORD_ENV = "M2_TEST_UNINSTALL_PASSWORD"
PASSWORD = "Kx7-s3cret 'M2' & $(touch /tmp/kremove-pwned-pw)"
MARK = "/tmp/kremove-pwned"

# The form the review named: the branch compares the secret's quoted form with the mask.
COMPARING = """\
{% if secrets.uninstall_password | sh == '********' %}
echo SHOWN
{% else %}
echo SENT
{% endif %}
printf '%s' {{ secrets.uninstall_password | sh }} > /tmp/kremove-m2-arrived
DEBIAN_FRONTEND=noninteractive dpkg --purge {{ packages | shjoin }}
"""
# The form that told the two renders apart: capture the secret's output and look at it.
CAPTURING = f"""\
{{% set probe %}}{{{{ secrets.uninstall_password | sh }}}}{{% endset %}}
{{% if probe == '********' %}}
DEBIAN_FRONTEND=noninteractive dpkg --purge {{{{ packages | shjoin }}}}
{{% else %}}
touch {MARK}-m2; DEBIAN_FRONTEND=noninteractive dpkg --purge {{{{ packages | shjoin }}}}
{{% endif %}}
"""
# A detection that echoes the password (and Network Agent's form of it) into a package record's
# version and architecture, or into an error line that becomes the host's reason.
ECHOING = """\
printf 'manager\\tdpkg\\n'
{% if host.vars.get('echo') == 'error' %}
printf 'error\\tbad password %s\\n' {{ secrets.uninstall_password | sh }}
{% else %}
printf 'dpkg\\tkesl\\t%s\\t%s\\tinstall ok installed\\n' \
{{ secrets.uninstall_password | sh }} {{ secrets.uninstall_password | utf16le_hex | sh }}
{% endif %}
"""


@pytest.fixture(scope="module")
def fleet(fleet_factory: Callable[..., Fleet]) -> Fleet:
    return fleet_factory({"one_product": 2})


@pytest.fixture
def home(fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    yield tmp_path
    fleet.reset()


def overriding(home: Path, template: str, name: str = "purge.sh.j2") -> Path:
    extra = home / "playbooks"
    (extra / "linux").mkdir(parents=True)
    (extra / "linux" / name).write_text(template)
    return extra


def inventory(fleet: Fleet, home: Path, echo: list[str] | None = None) -> Path:
    known = fleet.write_known_hosts(home / "known_hosts")
    path = fleet.write_inventory(home / "fleet.yml", known_hosts=known)
    if echo is not None:
        doc = yaml.safe_load(path.read_text())
        for entry, how in zip(doc["hosts"].values(), echo, strict=True):
            entry["vars"] = {"echo": how}
        path.write_text(yaml.safe_dump(doc))
    return path


def shown_commands(home: Path, fleet: Fleet, run_id: str) -> dict[str, list[str]]:
    done = kremove("runs", "show", run_id, "--json", home=home, env=fleet.env)
    assert done.returncode == 0, done.stderr
    out: dict[str, list[str]] = {}
    for step in json.loads(done.stdout)["steps"]:
        out.setdefault(step["host"], []).append(step["command"])
    return out


def unwrapped(received: str) -> str:
    """The command inside sudo's wrapper (sudo ... /bin/sh -c 'echo MARKER; COMMAND')."""
    if not received.startswith("sudo "):
        return received
    inner = shlex.split(received)[-1]
    return re.sub(r"\Aecho kremove-become-[0-9a-f]+; ", "", inner)


def assert_every_received_command_was_shown(fleet: Fleet, shown: dict[str, list[str]]) -> None:
    quoted = shlex.quote(PASSWORD)
    for h in fleet.hosts:
        expected = [c.replace(MASK, quoted) for c in shown.get(h.name, [])]
        received = [unwrapped(c) for c in fleet.commands_log(h.name)]
        assert received, h.name
        for command in received:
            assert command in expected, (h.name, command, expected)


def test_a_reviewed_plan_sends_exactly_what_it_showed_with_the_secret_in_place(
    fleet: Fleet, home: Path
) -> None:
    extra = overriding(home, COMPARING)
    inv = inventory(fleet, home)
    planned = kremove(
        "plan", "-i", str(inv), "--playbooks", str(extra),
        "--uninstall-password-env", PASSWORD_ENV, "--json", home=home, env=fleet.env,
    )  # fmt: skip
    assert planned.returncode == 0, planned.stdout + planned.stderr
    plan_id = json.loads(planned.stdout)["plan"]
    done = kremove("run", "--plan", plan_id, "--yes", "--json", home=home, env=fleet.env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {h["status"] for h in json.loads(done.stdout)["hosts"]} == {"removed"}
    plan_shown = shown_commands(home, fleet, plan_id)
    run_shown = shown_commands(home, fleet, json.loads(done.stdout)["run"])
    shown = {h: plan_shown.get(h, []) + run_shown.get(h, []) for h in plan_shown | run_shown}
    assert_every_received_command_was_shown(fleet, shown)
    with_plan = json.loads(
        kremove("runs", "show", plan_id, "--json", home=home, env=fleet.env).stdout
    )
    for h in fleet.hosts:
        [purge] = [c for c in run_shown[h.name] if "dpkg --purge" in c]
        assert purge.startswith("echo SENT") and MASK in purge and PASSWORD not in purge
        reviewed = [
            s["command"] for p in with_plan["hosts"] if p["host"] == h.name for s in p["plan"]
        ]
        assert purge in reviewed  # the plan showed this very command
        arrived = fleet.run_on_host(h.name, ["cat", "/tmp/kremove-m2-arrived"]).stdout
        assert arrived == PASSWORD  # the secret reached the host intact, where the mask was
        assert fleet.kaspersky_packages(h.name) == {}
    listing = [fleet.run_on_host(h.name, ["ls", "/tmp"]).stdout for h in fleet.hosts]
    assert not any("kremove-pwned" in ls for ls in listing)


def test_a_template_that_looks_at_a_secrets_output_is_refused_and_nothing_else_runs(
    fleet: Fleet, home: Path
) -> None:
    extra = overriding(home, CAPTURING)
    inv = inventory(fleet, home)
    planned = kremove(
        "plan", "-i", str(inv), "--playbooks", str(extra),
        "--uninstall-password-env", PASSWORD_ENV, "--json", home=home, env=fleet.env,
    )  # fmt: skip
    plan_doc = json.loads(planned.stdout)
    done = kremove("run", "--plan", plan_doc["plan"], "--yes", "--json", home=home, env=fleet.env)
    shown = shown_commands(home, fleet, plan_doc["plan"])
    for host, commands in shown_commands(home, fleet, json.loads(done.stdout)["run"]).items():
        shown.setdefault(host, []).extend(commands)
    assert_every_received_command_was_shown(fleet, shown)
    for h in fleet.hosts:
        assert fleet.kaspersky_packages(h.name) == h.expected_packages  # nothing was removed
        assert "kremove-pwned" not in fleet.run_on_host(h.name, ["ls", "/tmp"]).stdout
    for h in plan_doc["hosts"]:
        assert h["status"] == "failed" and "captured" in h["reason"], h
        assert "\n" not in h["reason"] and PASSWORD not in h["reason"]


def test_a_secret_a_host_echoes_is_in_no_ledger_export_or_report(fleet: Fleet, home: Path) -> None:
    extra = overriding(home, ECHOING, "detect.sh.j2")
    inv = inventory(fleet, home, echo=["finding", "error"])
    planned = kremove(
        "plan", "-i", str(inv), "--playbooks", str(extra),
        "--uninstall-password-env", PASSWORD_ENV, "--json", home=home, env=fleet.env,
    )  # fmt: skip
    run_id = json.loads(planned.stdout)["plan"]
    outputs = [planned.stdout, planned.stderr]
    for args in (
        ("runs", "show", run_id, "--json"),
        ("runs", "show", run_id),
        ("runs", "export", run_id),
        ("report", run_id, "--format", "json"),
        ("report", run_id, "--format", "csv"),
        ("report", run_id, "--format", "html"),
        ("report", "--fleet", "--format", "json"),
        *(("audit", "host", h.name, "--json") for h in fleet.hosts),
    ):
        done = kremove(*args, home=home, env=fleet.env)
        assert done.returncode == 0, (args, done.stderr)
        outputs += [done.stdout, done.stderr]
    files = [p.read_bytes() for p in home.glob("l.db*")]  # the ledger and its WAL
    assert files
    # Network Agent's form is in the redactor too (the CLI adds it with the password).
    for needle in (PASSWORD, utf16le_hex(PASSWORD), "Kx7-s3cret"):
        for text in outputs:
            assert needle not in text, (needle, text[:2000])
        for data in files:
            assert needle.encode() not in data
    doc = json.loads(planned.stdout)
    assert {h["status"] for h in doc["hosts"]} == {"failed"}
    assert all("held a secret" in h["reason"] for h in doc["hosts"]), doc["hosts"]
