"""Rollback plans: from a run's recorded pre- and post-state, what to reinstall on each host.

A finding counts as removed by the run when it was installed before (the pre-state) and is not
after (the post-state). A host with no post-state (it timed out, or was interrupted) is listed
with its whole pre-state and a note, since the ledger cannot tell how far its removal got.
The reinstall commands come from the catalog's ``reinstall`` templates, rendered with the exact
package, version or ProductCode, and the operator's ``--source``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.engine.steps import PreparedStep, Restore, finding_key
from orchestrator.errors import PlaybookError
from orchestrator.ledger.records import HostRecord
from orchestrator.playbook.loader import PlaybookSet
from orchestrator.playbook.model import Step

REINSTALL = Step(
    id="reinstall", kind="remove", readonly=False, template="<catalog reinstall>", become=True
)


@dataclass(frozen=True)
class HostRollback:
    host: str
    status: str | None  # the host's status in the run being rolled back
    removed: tuple[Mapping[str, Any], ...]  # findings to bring back
    steps: tuple[PreparedStep, ...]
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "status": self.status,
            "removed": [dict(f) for f in self.removed],
            "steps": [{"step": p.ledger_id, "command": p.command.shown} for p in self.steps],
            "note": self.note,
        }

    def restore(self) -> Restore:
        return Restore(self.steps, tuple(finding_key(f) for f in self.removed))


def plan_rollback(
    hosts: Sequence[HostRecord],
    platforms: Mapping[str, str],
    playbooks: PlaybookSet,
    source: str | None,
) -> list[HostRollback]:
    catalog = playbooks.catalog
    out = []
    for h in hosts:
        before = [f for f in h.findings if f.get("kind", "installed") == "installed"]
        note = None
        if h.post_findings is None:
            removed = before if h.status not in ("clean", "found", "planned", None) else []
            if removed:
                note = "no post-state recorded: the whole pre-state is listed; check the host"
        else:
            after = {finding_key(f) for f in h.post_findings if f.get("kind") == "installed"}
            removed = [f for f in before if finding_key(f) not in after]
        platform = platforms.get(h.host, "linux")
        steps = []
        for f in removed:
            product = catalog.products.get(str(f.get("product")))
            template = product.on(platform).get("reinstall") if product else None
            if not template:
                note = f"no reinstall template for {f.get('product')} on {platform}"
                continue
            evidence = f.get("evidence") or {}
            context = {
                "package": evidence.get("package") or "",
                "product_code": evidence.get("product_code") or "",
                "receipt": evidence.get("receipt") or "",
                "manager": evidence.get("manager") or "",
                "version": f.get("version") or "",
                "name": f.get("name") or "",
                "source": source or "",
            }
            try:
                command = playbooks.renderer.render_string(str(template), context, "reinstall")
            except PlaybookError as exc:
                raise PlaybookError(
                    f"products.{f.get('product')}.{platform}.reinstall: {exc}"
                ) from None
            label = evidence.get("package") or evidence.get("product_code") or str(f.get("product"))
            steps.append(PreparedStep(REINSTALL, command, str(label)))
        out.append(HostRollback(h.host, h.status, tuple(removed), tuple(steps), note))
    return out
