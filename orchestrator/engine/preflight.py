"""Checks before a wave changes anything, shared by ``plan`` and ``run`` so a plan never promises
a removal the run refuses (docs/runbook.md has each route and its sources).

- Encryption (issue 19, item 12): a host with KES encryption components (full-disk or
  file-level encryption, playbooks/windows/encryption.cmd.j2) is refused before any change,
  as a host without the privilege is, unless the operator passes --allow-encrypted-data-loss:
  removing KES or its encryption components leaves previously encrypted data in a state the
  vendor does not guarantee [vendor https://support.kaspersky.com/KESWin/11/en-us/128081.htm].
- Administration Server (item 13): where a selected host has a KSC Administration Server, KSC
  can put products back during the wave (deployment tasks, auto-install through the Network
  Agent) [vendor https://support.kaspersky.com/KESWin/12.1/fr-FR/50362.htm, delivery modes]; plan
  and run warn once, at the start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from orchestrator.playbook.model import Finding

OPTION = "--allow-encrypted-data-loss"
ENCRYPTION = "encryption"  # the finding kind parsers/encryption.py gives a component
KSC_SERVER = "ksc-server"  # the catalog's Administration Server product
RUNBOOK = "docs/runbook.md"


def encryption_refusal(findings: Sequence[Finding], allowed: bool) -> str | None:
    """The reason a host with KES encryption components ends ``skipped``, or None."""
    seen = sorted({f.name for f in findings if f.kind == ENCRYPTION})
    if not seen or allowed:
        return None
    return (
        f"refused before any change: KES encryption components found ({', '.join(seen)}); "
        "removing them can strand data encrypted on this host — decrypt it first (the KSC "
        f"encryption policy) or pass {OPTION} ({RUNBOOK}#encrypted-hosts)"
    )


def ksc_servers(hosts: Iterable[tuple[str, Iterable[Mapping[str, Any]]]]) -> list[str]:
    """The hosts (name, finding dicts) with a KSC Administration Server installed."""
    return sorted(
        name
        for name, findings in hosts
        if any(f.get("product") == KSC_SERVER and f.get("kind") == "installed" for f in findings)
    )


def latest(outcomes: Iterable[Mapping[str, Any]], names: Iterable[str]) -> list[tuple[str, Any]]:
    """Each named host's findings in its latest outcome in the ledger (``host_outcomes``)."""
    wanted = set(names)
    last: dict[str, Any] = {}
    for row in outcomes:
        if row["host"] in wanted and row.get("findings") is not None:
            last[row["host"]] = row["findings"]
    return sorted(last.items())


def ksc_warning(servers: Sequence[str]) -> str | None:
    """The one-line warning plan and run print when an Administration Server is in scope."""
    if not servers:
        return None
    return (
        f"warning: a Kaspersky Security Center Administration Server is in scope "
        f"({', '.join(servers)}): it can put products back during the wave — disable its "
        "deployment (remote installation) tasks and the automatic installation of applications "
        f"before removing, see {RUNBOOK}#kaspersky-security-center-first"
    )
