"""The report document (schema ``kremove.report/1``) from the ledger: one run, or the whole
fleet's latest known state. It is the JSON format, and the source of the others (csv.py, html.py).
Field meanings: docs/reports.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from orchestrator.engine import status as st
from orchestrator.findings import Finding
from orchestrator.ledger.records import RunDetail

SCHEMA = "kremove.report/1"
# BOD 17-01 asked agencies for their endpoint counts and the methods used to count them [3rd
# FCW https://fcw.com/articles/2017/09/19/kaspersky-directive-dhs-mazmanian.aspx]: how, and what
# kremove cannot see (docs/reports.md).
COUNTING_METHOD = (
    "Each host is counted once, by its inventory name, in its latest outcome in the ledger (the "
    "fleet view) or in this run. A host is identified when kremove's read-only detection found "
    "a Kaspersky product on it: on Windows an Uninstall registry entry (both views) whose display "
    "name or ProductCode the catalog lists, or any entry naming Kaspersky as product or "
    "publisher; on Linux a package the catalog lists; on macOS a catalog receipt, launchd job or "
    "application path. Services, drivers and folders alone count as residue, not as a product. "
    "Hosts kremove could not reach or was refused on are counted as exceptions, never as clean."
)
BLIND_SPOTS = (
    "kremove cannot see Kaspersky code embedded in other vendors' products (OEM scanning engines "
    "and SDKs under another brand), which BOD 17-01 excludes but NDAA section 1634 covers; nor "
    "hosts outside the inventory, or mobile devices. Those need other inventories."
)
EXCEPTIONS = frozenset(st.FAILURES - {st.FAILED} | {st.SKIPPED})


def _installed(findings: Iterable[Mapping[str, Any]] | None) -> list[Mapping[str, Any]]:
    return [f for f in findings or () if f.get("kind", "installed") == "installed"]


def _remaining(status: str | None, findings: Any, post: Any) -> list[Mapping[str, Any]]:
    """What is still installed after this outcome, as far as the ledger knows."""
    if post is not None:
        return _installed(post)
    if status in (st.REMOVED, st.CLEAN):
        return []
    return _installed(findings)


def _host_entry(
    run: str, groups: Sequence[str], row: Mapping[str, Any], since: str | None = None
) -> dict[str, Any]:
    found = _installed(row.get("findings"))
    remaining = _remaining(row.get("status"), row.get("findings"), row.get("post_findings"))
    entry = {
        "run": run,
        "host": row["host"],
        "groups": list(groups),
        "status": row.get("status") or "pending",
        "reason": row.get("reason"),
        "found": [_finding(f) for f in found],
        "remaining": [_finding(f) for f in remaining],
        "started": row.get("started"),
        "finished": row.get("finished"),
    }
    if since is not None:
        entry["since"] = since
    return entry


def _finding(f: Mapping[str, Any]) -> dict[str, Any]:
    evidence = f.get("evidence") or {}
    return {
        "product": f.get("product"),
        "name": f.get("name"),
        "version": f.get("version"),
        "package": evidence.get("package"),
        "product_code": evidence.get("product_code"),
        "label": Finding.from_dict(f).label(),
    }


def run_report(run: RunDetail) -> dict[str, Any]:
    groups = run.meta.get("groups") or {}
    hosts = [
        _host_entry(
            run.id,
            groups.get(h.host, []),
            {
                "host": h.host,
                "status": h.status,
                "reason": h.reason,
                "findings": h.findings,
                "post_findings": h.post_findings,
                "started": h.started,
                "finished": h.finished,
            },
        )
        for h in run.hosts
    ]
    batches = [
        {"batch": e.detail.get("batch"), "started": e.at, "hosts": e.detail.get("hosts", [])}
        for e in run.events
        if e.kind == "batch_started"
    ]
    return {
        "schema": SCHEMA,
        "scope": "run",
        "run": {
            "id": run.id,
            "kind": run.kind,
            "status": run.status,
            "started": run.started,
            "finished": run.finished,
            "operator": run.operator,
            "command_line": run.command_line,
            "inventory_digest": run.inventory_digest,
            "playbook_version": run.playbook_version,
        },
        **_summaries(hosts),
        "batches": batches,
        "events": [e.to_dict() for e in run.events if e.kind != "batch_started"],
        "directive": _directive(hosts, run.kind, [(run.id, run.started, run.finished)]),
        "hosts": hosts,
    }


def fleet_report(outcomes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The latest known state of every host across all runs, and since when it has held."""
    latest: dict[str, Mapping[str, Any]] = {}
    since: dict[str, str | None] = {}
    first_seen: dict[str, str | None] = {}
    runs: dict[str, tuple[str, str, str | None]] = {}
    for row in outcomes:
        if row["status"] == st.SKIPPED:
            continue  # says nothing about the host
        host = row["host"]
        if _installed(row["findings"]) and host not in first_seen:
            first_seen[host] = row["finished"]
        previous = latest.get(host)
        if previous is None or previous["status"] != row["status"]:
            since[host] = row["finished"]
        latest[host] = row
        runs[row["run"]] = (row["run"], row["run_started"], row["finished"])
    back = came_back(outcomes)
    hosts = [
        {
            **_host_entry(row["run"], [], row, since.get(host)),
            "first_identified": first_seen.get(host),
            **({"came_back": back[host]} if host in back else {}),
        }
        for host, row in sorted(latest.items())
    ]
    return {
        "schema": SCHEMA,
        "scope": "fleet",
        "runs": [{"id": r[0], "started": r[1]} for r in sorted(runs.values(), key=lambda r: r[1])],
        **_summaries(hosts),
        "directive": _directive(hosts, "fleet", sorted(runs.values(), key=lambda r: r[1])),
        "came_back": [{"host": h, **back[h]} for h in sorted(back)],
        "hosts": hosts,
    }


def came_back(outcomes: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Hosts where a product was found again after a run ended ``removed`` (KSC deployment tasks
    or auto-install can put products back during a wave; docs/runbook.md): per host, the run
    that removed, the later run that found products, and what it found."""
    removed_by: dict[str, str] = {}
    back: dict[str, dict[str, Any]] = {}
    for row in outcomes:
        host = row["host"]
        if row["status"] == st.REMOVED:
            removed_by[host] = row["run"]
        elif host in removed_by and _installed(row["findings"]):
            back[host] = {
                "removed_by": removed_by[host],
                "found_by": row["run"],
                "products": [Finding.from_dict(f).label() for f in _installed(row["findings"])],
            }
    return back


def _summaries(hosts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for h in hosts:
        counts[h["status"]] = counts.get(h["status"], 0) + 1
    products: dict[tuple[str, str, str | None], set[str]] = {}
    for h in hosts:
        for f in h["found"]:
            products.setdefault((f["product"], f["name"], f["version"]), set()).add(h["host"])
    groups: dict[str, dict[str, int]] = {}
    for h in hosts:
        for g in h["groups"] or ["(no group)"]:
            row = groups.setdefault(g, {"hosts": 0, "done": 0, "failed": 0})
            row["hosts"] += 1
            row["done"] += h["status"] in (st.REMOVED, st.CLEAN)
            row["failed"] += h["status"] in st.FAILURES
    return {
        "counts": dict(sorted(counts.items())),
        "products": [
            {"product": p, "name": n, "version": v, "hosts": len(names)}
            for (p, n, v), names in sorted(
                products.items(), key=lambda kv: (kv[0][0], str(kv[0][2]))
            )
        ],
        "groups": dict(sorted(groups.items())),
        "failures": [
            {"host": h["host"], "status": h["status"], "reason": h["reason"]}
            for h in hosts
            if h["status"] in st.FAILURES or h["status"] == st.REBOOT_PENDING
        ],
    }


def _directive(
    hosts: Sequence[Mapping[str, Any]], kind: str, runs: Sequence[tuple[str, str, str | None]]
) -> dict[str, Any]:
    """BOD 17-01's terms: identified (30 days), planned (60), removed/remaining (90)."""
    identified = [h for h in hosts if h["found"]]
    return {
        "identified": len(identified),
        "planned": sum(1 for h in hosts if h["status"] == st.PLANNED)
        if kind in ("plan", "fleet")
        else len([h for h in identified if h["status"] not in EXCEPTIONS]),
        "removed": sum(1 for h in hosts if h["status"] in (st.REMOVED, st.REBOOT_PENDING)),
        "remaining": sum(1 for h in hosts if h["remaining"]),
        "failed": sum(1 for h in hosts if h["status"] == st.FAILED),
        "exceptions": sum(1 for h in hosts if h["status"] in EXCEPTIONS),
        "runs": [{"id": r[0], "started": r[1]} for r in runs],
        "counting_method": COUNTING_METHOD,
        "not_seen": BLIND_SPOTS,
    }
