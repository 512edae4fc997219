"""The catalog and playbooks as loaded from disk: order, overrides, refusals, planning, retries."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.engine.host import HostDriver, HostRun, plan_steps
from orchestrator.engine.prepare import prepare
from orchestrator.errors import PlaybookError
from orchestrator.inventory.model import Host
from orchestrator.ledger import Ledger
from orchestrator.playbook.loader import load_playbooks
from orchestrator.playbook.model import Finding
from orchestrator.secrets import Redactor
from orchestrator.transports.base import CommandResult, Deadline, Transport
from orchestrator.transports.connector import Connector


def write(d: Path, name: str, doc: Any) -> None:
    path = d / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))


def test_every_product_names_its_sources_and_the_order_is_the_documented_one() -> None:
    catalog = load_playbooks().catalog
    assert all(p.sources for p in catalog.products.values())
    order = [p.id for p in catalog.ordered()]
    for before, after in [
        ("kesl-gui", "kesl"),
        ("kesl", "klnagent"),
        ("kes-windows", "klnagent"),
        ("klnagent", "ksc-console"),
        ("ksc-console", "ksc-server"),
    ]:
        assert order.index(before) < order.index(after), (before, after)
    assert order[-1] == "ksc-server"
    assert catalog.exit_meaning("msiexec", 3010) == "reboot"
    assert catalog.exit_meaning("msiexec", 1605) == "absent"
    assert catalog.exit_meaning("msiexec", 1618) == "retry"
    assert catalog.exit_meaning("msiexec", 1603) == "failed"
    assert catalog.exit_meaning("msiexec", 42) == "failed"  # unlisted: a failure
    assert catalog.exit_meaning(None, 0) == "ok" and catalog.exit_meaning(None, None) == "failed"


def test_an_override_changes_one_fact_and_keeps_the_rest(tmp_path: Path) -> None:
    write(tmp_path, "catalog.yml", {"products": {"kesl": {"linux": {"services": ["kesl-x"]}}}})
    kesl = load_playbooks([tmp_path]).catalog.products["kesl"]
    assert kesl.linux["services"] == ("kesl-x",)
    assert kesl.linux_packages == ("kesl", "kesl-astra")  # kept from the built-in entry
    assert kesl.sources  # kept too


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"products": {"kesl": {"linux": {"pakages": ["x"]}}}}, "unknown key 'pakages'"),
        ({"products": {"kesl": {"order": "first"}}}, "order must be an integer"),
        ({"products": {"kesl": {"windows": {"password": "guess"}}}}, "password must be one of"),
        (
            {"products": {"kesl": {"windows": {"password": "plain"}}}},
            "password: plain needs password_property",
        ),
        (
            {"products": {"ksws": {"windows": {"password_property": "unlock_password"}}}},
            "not a public msiexec property",
        ),
        ({"exit_codes": {"msiexec": {3010: "maybe"}}}, "must be an integer code mapped"),
        ({"products": {"kesl": {"linux": {"residue_paths": ["/var/../opt"]}}}}, "may delete"),
        ({"products": {"new": {"linux": {"packages": ["x"]}}}}, "products.new.name is required"),
    ],
)
def test_bad_catalog_overrides_are_named(tmp_path: Path, doc: Any, message: str) -> None:
    write(tmp_path, "catalog.yml", doc)
    with pytest.raises(PlaybookError, match=message):
        load_playbooks([tmp_path])


# Issue 15 M5: Windows catalog strings end up in batch scripts run as Administrator; cmd.exe reads
# " % & | < > ^ and line breaks as syntax, so the loader refuses them (ids: [a-z0-9-]).
def _kes(key: str, value: Any) -> dict[str, Any]:
    return {"products": {"kes-windows": {"windows": {key: value}}}}


def _win(key: str, value: Any) -> dict[str, Any]:
    return {"platforms": {"windows": {key: value}}}


KES_FIELD = "products.kes-windows.windows"
HOSTILE_WINDOWS = [
    (_kes("residue_paths", ['C:\\Windows" calc.exe & rem Kaspersky']),
     f"{KES_FIELD}.residue_paths"),
    (_kes("residue_paths", ["C:\\Kaspersky\\%PATH%"]), f"{KES_FIELD}.residue_paths"),
    (_kes("residue_paths", ["C:\\Kaspersky\\a^&calc"]), f"{KES_FIELD}.residue_paths"),
    (_kes("residue_paths", ["C:\\Kaspersky\nexit"]), f"{KES_FIELD}.residue_paths"),
    (_kes("residue_paths", ["C:\\Kaspersky\x1a"]), f"{KES_FIELD}.residue_paths"),
    (_kes("display_names", ["Kaspersky Endpoint | calc"]), f"{KES_FIELD}.display_names"),
    (_kes("display_names", ["Kaspersky <in"]), f"{KES_FIELD}.display_names"),
    (_kes("services", ["AVP>out"]), f"{KES_FIELD}.services"),
    (_kes("services", ["AVP\r"]), f"{KES_FIELD}.services"),
    (_kes("uninstall", "msiexec %x%&calc"), f"{KES_FIELD}.uninstall"),
    (_kes("password_property", "X=1&calc"), f"{KES_FIELD}.password_property"),
    (_kes("password_property", "KLPASSWD KLLOGIN"), f"{KES_FIELD}.password_property"),
    (_kes("product_codes", ["{27534751-4A40-48BD-B393-BC3BF28C876E} & calc"]),
     f"{KES_FIELD}.product_codes"),
    (_kes("product_codes", ["27534751-4A40-48BD-B393-BC3BF28C876E"]), f"{KES_FIELD}.product_codes"),
    (_win("residue_paths", ['C:\\Windows" calc.exe & rem Kaspersky']),
     "platforms.windows.residue_paths"),
    (_win("residue_registry", ["HKLM\\SOFTWARE\\a%PATH%&calc.exe & rem\\KasperskyLab"]),
     "platforms.windows.residue_registry"),
    (_win("residue_registry", ["SOFTWARE\\KasperskyLab"]), "platforms.windows.residue_registry"),
    (_win("residue_registry", ["HKLM\\SOFTWARE\\\\KasperskyLab"]),
     "platforms.windows.residue_registry"),
    (_win("driver_services", ["klif&calc"]), "platforms.windows.driver_services"),
]  # fmt: skip


@pytest.mark.parametrize(("doc", "field"), HOSTILE_WINDOWS)
def test_windows_catalog_strings_cmd_would_parse_are_refused(
    tmp_path: Path, doc: Any, field: str
) -> None:
    write(tmp_path, "catalog.yml", doc)
    with pytest.raises(PlaybookError) as refused:
        load_playbooks([tmp_path])
    message = str(refused.value)
    assert message.startswith(f"{tmp_path / 'catalog.yml'}: {field}: ")
    assert "\n" not in message and "\r" not in message


@pytest.mark.parametrize(
    "pid", ["Bad Id", "kes&calc", "KES", "a%PATH%&calc.exe & rem", "kes_windows", "-rf", "ké"]
)
def test_product_ids_are_lowercase_letters_digits_and_hyphens(tmp_path: Path, pid: str) -> None:
    entry = {"name": "x", "windows": {"residue_paths": ["C:\\Program Files\\Kaspersky Lab"]}}
    write(tmp_path, "catalog.yml", {"products": {pid: entry}})
    with pytest.raises(PlaybookError) as refused:
        load_playbooks([tmp_path])
    message = str(refused.value)
    assert message.startswith(f"{tmp_path / 'catalog.yml'}: products.{pid!r}: ")
    assert "[a-z0-9-]" in message


def test_windows_strings_real_products_need_are_accepted(tmp_path: Path) -> None:
    """What real names and paths hold: spaces, parentheses, apostrophes, ! and non-Latin text."""
    names = ["Agent d'administration de Kaspersky Security Center*", "Антивирус Касперского*"]
    doc = {
        "platforms": {"windows": {"residue_registry": ["HKEY_LOCAL_MACHINE\\SOFTWARE\\KL (x)"]}},
        "products": {
            "kes-windows": {
                "windows": {
                    "display_names": names,
                    "residue_paths": ["C:\\Program Files (x86)\\Kaspersky Lab\\KES 12!"],
                    "product_codes": ["{9a017278-f7f4-4df9-a482-0b97b70dd7ed}"],
                    "services": ["AVP21.*"],
                }
            }
        },
    }
    write(tmp_path, "catalog.yml", doc)
    kes = load_playbooks([tmp_path]).catalog.products["kes-windows"]
    assert kes.windows["display_names"] == tuple(names)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"for_each": "host"}, "for_each must be"),
        ({"exit_codes": "nonesuch"}, "not a table in the catalog"),
        ({"when": "packages and ("}, "is not an expression"),
        ({"exit_codes": {0: "fine"}}, "exit_codes must name"),
        ({"retries": 99}, "retries must be 0 to 10"),
    ],
)
def test_bad_playbook_steps_are_named(tmp_path: Path, step: dict[str, Any], message: str) -> None:
    base = {"id": "s", "kind": "remove", "readonly": False, "template": "linux/purge.sh.j2"}
    doc = {"name": "linux-remove", "platform": "linux", "steps": [{**base, **step}]}
    write(tmp_path, "linux/remove.yml", doc)
    with pytest.raises(PlaybookError, match=message):
        load_playbooks([tmp_path])


def installed(product: str, package: str, version: str) -> Finding:
    evidence = {"manager": "dpkg", "package": package, "arch": "amd64"}
    return Finding(product, product, version, "installed", evidence)


def test_the_linux_plan_follows_catalog_order_and_quotes_every_value() -> None:
    playbooks = load_playbooks()
    catalog = playbooks.catalog
    found = [
        installed("klnagent", "klnagent64", "14.0.0-4646"),
        installed("kesl", "kesl", "12.1.0-1297"),
        installed("kesl-gui", "kesl-gui", "12.1.0-1297"),
    ]
    products = catalog.ordered(f.product for f in found)
    remove = playbooks.playbook_for("linux", "remove")
    assert remove is not None
    context = {"host": {"name": "h", "vars": {}}, "catalog": catalog, "secrets": {}}
    plan = plan_steps(remove.steps, products, found, context, playbooks)
    assert [p.ledger_id for p in plan] == [
        "purge:kesl-gui",
        "purge:kesl",
        "purge:klnagent",
        "residue:kesl",
        "residue:klnagent",
        "cleanup",
    ]
    assert "dpkg --purge kesl-gui" in plan[0].command.text
    assert "systemctl stop kesl " in plan[1].command.text


class ScriptedTransport(Transport):
    """A unit-test transport: answers each command from a script of exit codes."""

    name = "scripted"

    def __init__(self, host: Host, codes: dict[str, list[int]], sent: list[str]) -> None:
        super().__init__(host)
        self.codes = codes
        self.sent = sent

    def connect(self, deadline: Deadline) -> None:
        pass

    def run(
        self, command: str, deadline: Deadline, stdin: bytes | None = None, *, become: bool = False
    ) -> CommandResult:
        self.sent.append(command)
        for marker, codes in self.codes.items():
            if marker in command:
                return CommandResult(codes.pop(0) if len(codes) > 1 else codes[0], "", "", 0.0)
        return CommandResult(0, "", "", 0.0)

    def close(self) -> None:
        pass


class ScriptedConnector(Connector):
    def __init__(self, transport: ScriptedTransport) -> None:
        super().__init__()
        self.transport = transport

    def check(self, host: Host) -> None:
        pass

    def for_host(self, host: Host) -> Transport:
        return self.transport


def test_retry_codes_are_retried_and_reboot_codes_end_reboot_pending(tmp_path: Path) -> None:
    """msiexec semantics through the state machine, with a scripted transport."""
    write(
        tmp_path,
        "linux/detect.yml",
        {
            "name": "linux-detect",
            "platform": "linux",
            "steps": [
                {"id": "d", "kind": "detect", "readonly": True, "template": "linux/t.j2",
                 "parser": "linux_packages"},
            ],
        },
    )  # fmt: skip
    write(
        tmp_path,
        "linux/remove.yml",
        {
            "name": "linux-remove",
            "platform": "linux",
            "steps": [
                {"id": "msi", "kind": "remove", "readonly": False, "template": "linux/r.j2",
                 "for_each": "product", "exit_codes": "msiexec", "retries": 2,
                 "retry_delay": 0.1},
            ],
        },
    )  # fmt: skip
    write(tmp_path, "linux/verify.yml", {
        "name": "linux-verify", "platform": "linux",
        "steps": [{"id": "v", "kind": "verify", "readonly": True, "template": "linux/v.j2",
                   "parser": "linux_packages"}],
    })  # fmt: skip
    write(tmp_path, "linux/t.j2", "detect")
    write(tmp_path, "linux/r.j2", "remove {{ product.id | sh }}")
    write(tmp_path, "linux/v.j2", "verify")
    playbooks = load_playbooks([tmp_path])
    host = Host(name="h", address="h", transport="ssh", platform="linux")

    class Detecting(ScriptedTransport):
        def run(
            self,
            command: str,
            deadline: Deadline,
            stdin: bytes | None = None,
            *,
            become: bool = False,
        ) -> CommandResult:
            result = super().run(command, deadline, stdin, become=become)
            if command == "detect":
                out = "manager\tdpkg\ndpkg\tkesl\t12\tamd64\tinstall ok installed\n"
                return CommandResult(0, out, "", 0.0)
            if command == "verify":
                return CommandResult(0, "manager\tdpkg\n", "", 0.0)
            return result

    sent: list[str] = []
    transport = Detecting(host, {"remove": [1618, 1618, 3010]}, sent)
    job = prepare([host], playbooks, ScriptedConnector(transport))[0]
    with Ledger.open(tmp_path / "l.db") as ledger:
        run_id = ledger.start_run(
            kind="run",
            operator="t",
            command_line="t",
            inventory_digest="0",
            playbook_version="0",
            hosts=["h"],
        )
        shared = HostRun(
            run_id, ledger, playbooks, Redactor(), ScriptedConnector(transport), 60, mode="run"
        )
        started = time.monotonic()
        outcome = HostDriver(job, shared).drive()
    assert sent == ["detect", "remove kesl", "remove kesl", "remove kesl", "verify"]
    assert outcome.status == "reboot_pending" and time.monotonic() - started < 5
