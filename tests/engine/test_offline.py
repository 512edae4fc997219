"""The offline plan in-process: every catalog product's steps per platform, nothing contacted."""

from __future__ import annotations

from orchestrator.engine.offline import FOUND_VERSION, assumed_findings, offline_plan
from orchestrator.inventory.model import Host
from orchestrator.playbook.loader import load_playbooks


def host(name: str, platform: str) -> Host:
    return Host(name=name, address="192.0.2.1", transport="ssh", port=22, platform=platform)


def test_hosts_are_grouped_by_platform_with_the_removal_steps_in_catalog_order() -> None:
    content = load_playbooks()
    plans = offline_plan([host("w", "windows"), host("a", "linux"), host("b", "linux")], content)
    assert [(p.platform, p.hosts) for p in plans] == [("linux", ("a", "b")), ("windows", ("w",))]
    linux = plans[0]
    assert linux.steps and any(not s.readonly for s in linux.steps)
    assert FOUND_VERSION not in "".join(s.step for s in linux.steps)
    doc = linux.to_dict()
    assert doc["hosts"] == ["a", "b"] and set(doc["steps"][0]) == {"step", "readonly", "command"}


def test_assumed_findings_name_the_first_package_or_a_placeholder_code() -> None:
    catalog = load_playbooks().catalog
    product = next(p for p in catalog.ordered() if p.on("linux").get("packages"))
    (finding,) = assumed_findings(product, "linux")
    assert finding.evidence["package"] == product.on("linux")["packages"][0]
    assert finding.version == FOUND_VERSION and finding.kind == "installed"
    windows = next(p for p in catalog.ordered() if p.on("windows"))
    (finding,) = assumed_findings(windows, "windows")
    assert "product_code" in finding.evidence
