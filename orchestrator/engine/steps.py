"""What a host is sent: its steps rendered before anything connects, the removal plan rendered
from what detection found, and what a reviewed plan or a rollback fixes in advance.

Everything here is pure: it renders and compares, and never talks to a host or the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.engine.uninstall_passwords import for_product
from orchestrator.errors import PlaybookError
from orchestrator.playbook.loader import PlaybookSet
from orchestrator.playbook.model import Finding, Product, Step
from orchestrator.playbook.render import RenderedCommand
from orchestrator.transports.base import CommandResult

STDERR_EXCERPT = 400


@dataclass(frozen=True)
class PreparedStep:
    step: Step
    command: RenderedCommand
    label: str = ""  # what the step is for: the product or finding it was rendered for

    @property
    def ledger_id(self) -> str:
        return f"{self.step.id}:{self.label}" if self.label else self.step.id


@dataclass(frozen=True)
class HostJob:
    """A host with every detection command it will receive, rendered before anything connects."""

    host: Any  # inventory Host
    platform: str
    steps: tuple[PreparedStep, ...]
    skip_reason: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)  # the template context


@dataclass(frozen=True)
class Restore:
    """A rollback for one host: the reinstall steps, and the findings they must bring back."""

    steps: tuple[PreparedStep, ...]
    expected: tuple[tuple[str, str, str], ...]  # finding_key of each reinstalled finding


@dataclass(frozen=True)
class Reviewed:
    """A host as a reviewed plan left it: its findings and the exact steps shown."""

    status: str
    findings: tuple[tuple[str, str, str], ...]
    steps: tuple[str, ...]  # rendered commands as shown (secrets masked)


def finding_key(f: Mapping[str, Any]) -> tuple[str, str, str]:
    """What identifies an installed finding for drift: product, version, package or code."""
    evidence = f.get("evidence") or {}
    what = _identity(evidence)
    return (str(f.get("product")), str(f.get("version")), str(what))


def plan_steps(
    steps: Sequence[Step],
    products: Sequence[Product],
    installed: Sequence[Finding],
    context: Mapping[str, Any],
    playbooks: PlaybookSet,
) -> list[PreparedStep]:
    """Render a removal playbook for the products found (already in removal order)."""
    renderer = playbooks.renderer
    found = [f.to_dict() for f in installed]
    prepared: list[PreparedStep] = []
    for step in steps:
        for label, extra in _iterations(step, products, installed):
            scope = {**context, "findings": found, **extra}
            if "product" in extra:  # each product's step gets its own uninstall password
                scope["secrets"] = for_product(context.get("secrets") or {}, extra["product"].id)
            where = f"step {step.id!r}" + (f" for {label}" if label else "")
            if step.when is not None and not renderer.evaluate(step.when, scope, where):
                continue
            try:
                command = renderer.render(step.template, scope)
            except PlaybookError as exc:
                raise PlaybookError(f"{where}: {exc}") from None
            prepared.append(PreparedStep(step, command, label))
    return prepared


def _iterations(
    step: Step, products: Sequence[Product], installed: Sequence[Finding]
) -> list[tuple[str, dict[str, Any]]]:
    if step.for_each is None:
        return [("", {"products": list(products)})]
    out: list[tuple[str, dict[str, Any]]] = []
    for product in products:
        mine = [f for f in installed if f.product == product.id]
        scope: dict[str, Any] = {
            "product": product,
            "found": [f.to_dict() for f in mine],
            "packages": [f.evidence["package"] for f in mine if "package" in f.evidence],
            "manager": next((f.evidence["manager"] for f in mine if "manager" in f.evidence), ""),
        }
        if step.for_each == "product":
            out.append((product.id, scope))
            continue
        for finding in mine:
            label = _identity(finding.evidence)
            name = f"{product.id}/{label}" if label else product.id
            out.append((name, {**scope, "finding": finding.to_dict()}))
    return out


def planned(prepared: PreparedStep) -> dict[str, Any]:
    step = prepared.step
    return {
        "step": prepared.ledger_id,
        "kind": step.kind,
        "readonly": step.readonly,
        "become": step.become,
        "command": prepared.command.shown,
    }


def _identity(evidence: Mapping[str, Any]) -> str:
    """What tells two findings of one product apart: package, ProductCode, receipt, key."""
    for key in ("package", "product_code", "receipt", "key", "display_name", "path"):
        if evidence.get(key):
            return str(evidence[key])
    return ""


def package_residue(finding: Finding) -> bool:
    """A package the manager still lists (configuration left after a removal)."""
    return finding.kind == "residue" and bool(finding.evidence.get("package"))


def drift(reviewed: Reviewed, installed: Sequence[Finding]) -> str | None:
    """Why what detection found now is not what the reviewed plan had; None when it is."""
    now = tuple(sorted(finding_key(f.to_dict()) for f in installed))
    if now == tuple(sorted(reviewed.findings)):
        return None

    def show(keys: Sequence[tuple[str, str, str]]) -> str:
        return ", ".join(f"{k[2] or k[0]} {k[1]}" for k in keys) or "nothing"

    return (
        f"drifted: found {show(now)}, the reviewed plan had {show(reviewed.findings)}; "
        "plan again or pass --allow-drift"
    )


def failure(prepared: PreparedStep, result: CommandResult) -> str:
    """A failed step's reason: its exit code and the last lines it printed (stderr first)."""
    text = (result.stderr or result.stdout).strip()
    excerpt = " | ".join(ln.strip() for ln in text.splitlines()[-4:] if ln.strip())
    if len(excerpt) > STDERR_EXCERPT:
        excerpt = "…" + excerpt[-STDERR_EXCERPT:]
    code = "no exit status" if result.exit_code is None else f"exited {result.exit_code}"
    return f"step {prepared.ledger_id!r} {code}" + (f": {excerpt}" if excerpt else "")
