"""The offline plan (`kremove plan --offline`): the steps every catalog product would get on
each platform, rendered without connecting anywhere (for a change board)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.engine.prepare import host_platform, template_context
from orchestrator.engine.steps import plan_steps
from orchestrator.inventory.model import Host
from orchestrator.playbook.loader import PlaybookSet
from orchestrator.playbook.model import Finding, Product

# What the hosts would report, shown where a real plan has the value it found.
FOUND_VERSION = "<found version>"
FOUND_PRODUCT_CODE = "{PRODUCT-CODE-FOUND-ON-THE-HOST}"


@dataclass(frozen=True)
class OfflineStep:
    step: str  # the step's ledger id
    readonly: bool
    command: str  # as shown (secrets masked)

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "readonly": self.readonly, "command": self.command}


@dataclass(frozen=True)
class PlatformPlan:
    """One platform's hosts and, if every catalog product were found there, its steps in order."""

    platform: str
    hosts: tuple[str, ...]
    steps: tuple[OfflineStep, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"hosts": list(self.hosts), "steps": [s.to_dict() for s in self.steps]}


def offline_plan(hosts: list[Host], content: PlaybookSet) -> list[PlatformPlan]:
    """Per platform (sorted), the removal steps for every catalog product that runs there."""
    by_platform: dict[str, list[Host]] = {}
    for h in hosts:
        by_platform.setdefault(host_platform(h), []).append(h)
    plans = []
    for platform, members in sorted(by_platform.items()):
        playbook = content.playbook_for(platform, "remove")
        products = [p for p in content.catalog.ordered() if p.on(platform)]
        findings = [f for p in products for f in assumed_findings(p, platform)]
        steps: tuple[OfflineStep, ...] = ()
        if playbook is not None and findings:
            context = template_context(members[0], content)
            prepared = plan_steps(playbook.steps, products, findings, context, content)
            steps = tuple(
                OfflineStep(p.ledger_id, p.step.readonly, p.command.shown) for p in prepared
            )
        plans.append(PlatformPlan(platform, tuple(h.name for h in members), steps))
    return plans


def assumed_findings(product: Product, platform: str) -> list[Finding]:
    """The finding a host would report for an installed product: its first package (Linux) or
    product code (Windows), with placeholders where the host's own values would go."""
    entry = product.on(platform)
    if platform == "linux":
        return [
            Finding(
                product.id,
                product.name,
                FOUND_VERSION,
                "installed",
                {"manager": "dpkg", "package": p},
            )
            for p in entry.get("packages", ())[:1]
        ]
    if platform == "windows":
        codes = entry.get("product_codes", ()) or (FOUND_PRODUCT_CODE,)
        evidence = {"product_code": codes[0]}
        return [Finding(product.id, product.name, FOUND_VERSION, "installed", evidence)]
    return [Finding(product.id, product.name, FOUND_VERSION, "installed", {})]
