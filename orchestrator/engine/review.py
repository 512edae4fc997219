"""Plan review: what a saved plan fixed for each host, so that `run --plan` executes exactly it.

A plan records, per host, the installed findings and the rendered steps it showed. Executing it,
a host whose findings or steps differ now has drifted and is skipped (host.py checks that, with
the Reviewed entries made here), unless the operator passes --allow-drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orchestrator.engine.steps import Reviewed, finding_key
from orchestrator.inventory.model import Host
from orchestrator.ledger import RunDetail


def reviewed(plan: RunDetail) -> dict[str, Reviewed]:
    """Each planned host as it was reviewed: status, installed findings, commands as shown."""
    hosts = {}
    for h in plan.hosts:
        findings = tuple(finding_key(f) for f in h.findings if f.get("kind") == "installed")
        steps = tuple(s["command"] for s in (h.plan or []))
        hosts[h.host] = Reviewed(h.status or "pending", findings, steps)
    return hosts


def planned_hosts(hosts: Sequence[Host], review: Mapping[str, Reviewed]) -> list[Host]:
    """The selected hosts the plan covered; when it covered none of them, all of them, so that
    each is then skipped as not in the reviewed plan (and the operator sees why)."""
    return [h for h in hosts if h.name in review] or list(hosts)
