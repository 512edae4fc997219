"""Which uninstall password each product of a host gets, and each reference fetched once.

Pure: real catalog and playbooks, the removal plan rendered as the engine renders it; no host.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.engine import uninstall_passwords as pw
from orchestrator.engine.prepare import template_context
from orchestrator.engine.steps import plan_steps
from orchestrator.errors import InputError, InventoryError
from orchestrator.inventory.model import Host, SecretRef, UninstallPassword
from orchestrator.playbook.loader import PlaybookSet, load_playbooks
from orchestrator.playbook.model import Finding
from orchestrator.playbook.quoting import utf16le_hex
from orchestrator.secrets import MASK, SecretStore

KES = "{27534751-4A40-48BD-B393-BC3BF28C876E}"
AGENT = "{0F05E4E5-5A89-482C-9A62-47CC58643788}"
KSWS = "{7A4192A1-84C4-4E90-A31B-B4704E4F5A5B}"


@pytest.fixture(scope="module")
def playbooks() -> PlaybookSet:
    return load_playbooks()


def ref(env: str, owner: str = "group 'branch'", origin: str = "inv.yml:3") -> UninstallPassword:
    return UninstallPassword(SecretRef(env=env), owner, origin)


def windows(name: str, **refs: UninstallPassword) -> Host:
    own = {product.replace("_", "-"): entry for product, entry in refs.items()}
    if "every" in own:
        own["*"] = own.pop("every")
    return Host(name=name, address="x", transport="winrm", uninstall_passwords=own)


CLI = pw.run_wide("CLI_PW", None)


def test_a_products_own_reference_then_the_hosts_default_then_the_command_line() -> None:
    host = windows("w1", every=ref("DEFAULT_PW"), klnagent=ref("AGENT_PW"))
    assert pw.entry_for(host, "klnagent", CLI) == ref("AGENT_PW")
    assert pw.entry_for(host, "kes-windows", CLI) == ref("DEFAULT_PW")
    bare = windows("w2", kes_windows=ref("KES_PW"))
    assert pw.entry_for(bare, "kes-windows", CLI) == ref("KES_PW")
    assert pw.entry_for(bare, "klnagent", CLI) == CLI
    assert pw.entry_for(bare, "klnagent", None) is None


def test_choices_cover_the_protected_products_of_the_hosts_platform(playbooks: PlaybookSet) -> None:
    catalog = playbooks.catalog
    assert pw.protected(catalog, "windows") == [
        "kes-windows",
        "kav-workstations",
        "ksws",
        "kav-servers-ee",
        "klnagent",
    ]  # Endpoint Agent takes none: no source names its property (issue 19)
    assert pw.protected(catalog, "linux") == []
    host = windows("w1", klnagent=ref("AGENT_PW"))
    shown = [
        c.describe()
        for c in pw.choices(host, "windows", catalog, None, {"kes-windows", "klnagent"})
    ]
    assert shown == [
        "kes-windows: no uninstall password given; if it is protected, its removal fails "
        "(msiexec 1603)",
        "klnagent: uninstall password from env:AGENT_PW (group 'branch', inv.yml:3)",
    ]
    [cli] = pw.choices(host, "windows", catalog, CLI, {"kes-windows"})
    assert cli.to_dict() == {
        "product": "kes-windows",
        "reference": "env:CLI_PW",
        "given_by": "--uninstall-password-env",
        "at": "",
    }
    assert pw.missing([host, windows("w2", every=ref("P"))], pw.platform_of, catalog, None) == {
        ("kes-windows", "kav-workstations", "ksws", "kav-servers-ee"): ["w1"]
    }


def test_a_reference_for_a_product_the_catalog_does_not_know_is_one_line(
    playbooks: PlaybookSet,
) -> None:
    host = windows("w1", kes_windos=ref("PW", origin="fleet.yml:12"))
    with pytest.raises(InventoryError) as refused:
        pw.check_products([host], playbooks.catalog)
    assert str(refused.value) == (
        "fleet.yml:12: group 'branch': uninstall password for 'kes-windos', which is not a "
        "catalog product id; products that take one: kav-servers-ee, kav-workstations, "
        "kes-windows, klnagent, ksws"
    )


def test_each_reference_is_fetched_once_and_known_to_the_redactor(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KES_PW", "kes-secret-1")
    monkeypatch.setenv("CLI_PW", "cli-secret-2")
    agent_file = tmp_path / "agent"
    agent_file.write_text("agent-secret-3\n")
    agent_file.chmod(0o600)
    agent = UninstallPassword(SecretRef(file=str(agent_file)), "host 'w2'", "inv.yml:9")
    read: list[str] = []
    real_get = SecretStore.get

    def counting(self: SecretStore, ref: SecretRef, what: str, *, kind: str = "") -> object:
        read.append(what)
        return real_get(self, ref, what, kind=kind)

    hosts = [
        windows("w1", kes_windows=ref("KES_PW")),
        windows("w2", kes_windows=ref("KES_PW"), klnagent=agent),
    ]
    store = SecretStore()
    monkeypatch.setattr(SecretStore, "get", counting)
    found = pw.fetch(hosts, store, CLI)
    assert sorted(read) == [
        "uninstall password",
        "uninstall password for kes-windows (group 'branch', inv.yml:3)",
        "uninstall password for klnagent (host 'w2', inv.yml:9)",
    ]
    assert len(found) == 3
    scrub = store.redactor.scrub
    for value in ("kes-secret-1", "cli-secret-2", "agent-secret-3"):
        assert scrub(f"<{value}>") == f"<{MASK}>"
        assert scrub(utf16le_hex(value)) == MASK  # as Network Agent receives it


def test_a_prompt_is_asked_once_per_place_it_was_written() -> None:
    asked: list[str] = []

    def prompt(label: str) -> str:
        asked.append(label)
        return f"typed-{len(asked)}"

    def prompted(owner: str) -> UninstallPassword:
        return UninstallPassword(SecretRef(prompt=True), owner, "inv.yml:5")

    hosts = [
        windows("a1", every=prompted("group 'a'")),
        windows("a2", every=prompted("group 'a'")),
        windows("b1", every=prompted("group 'b'"), klnagent=prompted("group 'b'")),
    ]
    found = pw.fetch(hosts, SecretStore(prompt=prompt), None)
    assert asked == [
        "uninstall password (group 'a', inv.yml:5): ",
        "uninstall password (group 'b', inv.yml:5): ",
        "uninstall password for klnagent (group 'b', inv.yml:5): ",
    ]
    contexts = {h.name: pw.for_host(h, found) for h in hosts}
    assert contexts["a1"]["uninstall_password"] is contexts["a2"]["uninstall_password"]
    assert contexts["b1"]["uninstall_password"].reveal() == "typed-2"
    assert contexts["b1"]["uninstall_passwords"]["klnagent"].reveal() == "typed-3"


def test_a_missing_reference_is_an_input_error_naming_product_and_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_SUCH_PW", raising=False)
    with pytest.raises(InputError) as refused:
        pw.fetch([windows("w1", klnagent=ref("NO_SUCH_PW"))], SecretStore(), None)
    assert str(refused.value) == (
        "uninstall password for klnagent (group 'branch', inv.yml:3): environment variable "
        "NO_SUCH_PW is not set; export it first"
    )
    with pytest.raises(InputError, match="give the uninstall password once"):
        pw.run_wide("A", Path("b"))


def msi(product: str, code: str) -> Finding:
    evidence = {"product_code": code, "windows_installer": "1", "display_name": product}
    return Finding(product=product, name=product, version="1.0", evidence=evidence)


def removal_texts(playbooks: PlaybookSet, host: Host, found: dict[str, object]) -> dict[str, str]:
    """Each removal step the host would be sent, as sent: its ledger id → its text."""
    context = template_context(host, playbooks, found)  # type: ignore[arg-type]
    installed = [msi("kes-windows", KES), msi("ksws", KSWS), msi("klnagent", AGENT)]
    catalog = playbooks.catalog
    products = catalog.ordered(f.product for f in installed)
    remove = playbooks.playbook_for("windows", "remove")
    assert remove is not None
    steps = plan_steps(remove.steps, products, installed, context, playbooks)
    return {p.ledger_id: p.command.text for p in steps}


def test_each_products_step_gets_its_own_password_and_no_other(
    playbooks: PlaybookSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {"KES_PW": "kes-Pw-1", "AGENT_PW": "agent-Pw-2", "CLI_PW": "cli-Pw-3"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    host = windows("w1", kes_windows=ref("KES_PW"), klnagent=ref("AGENT_PW"))
    found = pw.fetch([host], SecretStore(), CLI)
    texts = removal_texts(playbooks, host, found)
    kes, ksws, agent = (
        texts[f"msiexec-uninstall:{product}/{code}"]
        for product, code in (("kes-windows", KES), ("ksws", KSWS), ("klnagent", AGENT))
    )
    assert "KLPASSWD=%KREMOVE_KLPASSWD%" in kes and "kremove-data KLPASSWD kes-Pw-1" in kes
    assert f"KLUNINSTPASSWD={utf16le_hex('agent-Pw-2')}" in agent
    # KSWS has no reference of its own: the run-wide one, as its catalog property.
    assert "UNLOCK_PASSWORD=%KREMOVE_PASSWORD%" in ksws and "cli-Pw-3" in ksws
    for text, own in ((kes, "kes-Pw-1"), (agent, "agent-Pw-2"), (ksws, "cli-Pw-3")):
        others = [v for v in values.values() if v != own]
        others += [utf16le_hex(v) for v in others]
        assert not [v for v in others if v in text]


def test_without_inventory_references_every_step_sees_the_run_wide_password(
    playbooks: PlaybookSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLI_PW", "cli-Pw-3")
    host = windows("w1")
    found = pw.fetch([host], SecretStore(), CLI)
    assert (
        template_context(host, playbooks, found)["secrets"]["uninstall_password"]
        is found["uninstall_password"]
    )
    texts = removal_texts(playbooks, host, found)
    assert all("cli-Pw-3" in t or utf16le_hex("cli-Pw-3") in t for t in texts.values())
    nothing = template_context(host, playbooks, None)["secrets"]
    assert nothing == {"uninstall_password": None, "uninstall_passwords": {}}
