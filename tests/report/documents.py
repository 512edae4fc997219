"""``kremove.report/1`` documents built by hand, one per scope, with hostile text in every field
that comes from an inventory or a host."""

from __future__ import annotations

from typing import Any

SCRIPT = "<script>alert(1)</script>"
BREAKOUT = '"><img src=x onerror=alert(2)>'
AMP = "R&D & ops"
UNICODE = "ПК-бухгалтерия-01 ✓ 東京"
HOSTILE = (SCRIPT, BREAKOUT, AMP, UNICODE)


def _finding(product: str, name: str, version: str, package: str | None = None) -> dict[str, Any]:
    label = f"{package or name} {version}"
    return {
        "product": product,
        "name": name,
        "version": version,
        "package": package,
        "product_code": None if package else "{B0CC4A2B-1D9E-4A5C-9D2F-0E5C3F1A2B3C}",
        "label": label,
    }


KES = _finding("kes_windows", "Kaspersky Endpoint Security for Windows", "12.3.0.493")
KESL = _finding("kesl", "Kaspersky Endpoint Security for Linux", "12.0.0.6672", "kesl")
AGENT = _finding(
    "klnagent", "Kaspersky Security Center Network Agent", "14.0.0.10902", "klnagent64"
)
EVIL = _finding("kesl", SCRIPT, BREAKOUT, f"pkg{SCRIPT}")


def _host(
    name: str,
    status: str,
    groups: list[str],
    *,
    reason: str | None = None,
    found: list[dict[str, Any]] | None = None,
    remaining: list[dict[str, Any]] | None = None,
    minute: int = 0,
    run: str = "20250301T120000Z-ab12",
) -> dict[str, Any]:
    return {
        "run": run,
        "host": name,
        "groups": groups,
        "status": status,
        "reason": reason,
        "found": found or [],
        "remaining": remaining or [],
        "started": f"2025-03-01T12:{minute:02d}:05.000000+00:00",
        "finished": f"2025-03-01T12:{minute:02d}:45.000000+00:00",
    }


def run_hosts() -> list[dict[str, Any]]:
    return [
        _host("web-01", "removed", ["linux", "web"], found=[KESL, AGENT], minute=0),
        _host("web-02", "removed", ["linux", "web"], found=[KESL], minute=2),
        _host("db-01", "clean", ["linux"], minute=2),
        _host(
            "win-01",
            "reboot_pending",
            ["windows"],
            reason="msiexec exit 3010: a reboot is required",
            found=[KES],
            minute=6,
        ),
        _host(
            "win-02",
            "failed",
            ["windows"],
            reason="verify still finds Kaspersky Endpoint Security for Windows 12.3.0.493",
            found=[KES],
            remaining=[KES],
            minute=6,
        ),
        _host(SCRIPT, "unreachable", [AMP], reason=BREAKOUT, found=[], minute=6),
        _host(
            UNICODE,
            "failed",
            [SCRIPT, UNICODE],
            reason=f"{SCRIPT} & {BREAKOUT}\nline two",
            found=[EVIL],
            remaining=[EVIL],
            minute=6,
        ),
        _host("mac-01", "timeout", [], reason="step remove timed out after 600 s", minute=6),
        _host("lab-09", "skipped", ["lab"], reason="halted: failure budget spent", minute=9),
    ]


def run_document() -> dict[str, Any]:
    """A removal run in three batches that halted on its failure budget."""
    hosts = run_hosts()
    counts: dict[str, int] = {}
    for h in hosts:
        counts[h["status"]] = counts.get(h["status"], 0) + 1
    return {
        "schema": "kremove.report/1",
        "scope": "run",
        "run": {
            "id": "20250301T120000Z-ab12",
            "kind": "run",
            "status": "halted",
            "started": "2025-03-01T12:00:00.000000+00:00",
            "finished": "2025-03-01T12:10:30.000000+00:00",
            "operator": f"alice {AMP}",
            "command_line": f"kremove run -i 'fleet.yml' --batches 2,50%,100% --limit '{SCRIPT}'",
            "inventory_digest": "sha256:" + "9f2c6b1e0d8a7c5b" * 4,
            "playbook_version": "2025.02-1",
        },
        "counts": dict(sorted(counts.items())),
        "products": [
            {"product": "kes_windows", "name": KES["name"], "version": KES["version"], "hosts": 2},
            {"product": "kesl", "name": KESL["name"], "version": KESL["version"], "hosts": 2},
            {"product": "kesl", "name": SCRIPT, "version": BREAKOUT, "hosts": 1},
            {"product": "klnagent", "name": AGENT["name"], "version": AGENT["version"], "hosts": 1},
        ],
        "groups": {
            AMP: {"hosts": 1, "done": 0, "failed": 1},
            SCRIPT: {"hosts": 1, "done": 0, "failed": 1},
            "(no group)": {"hosts": 1, "done": 0, "failed": 1},
            "lab": {"hosts": 1, "done": 0, "failed": 0},
            "linux": {"hosts": 3, "done": 3, "failed": 0},
            "web": {"hosts": 2, "done": 2, "failed": 0},
            "windows": {"hosts": 2, "done": 0, "failed": 1},
            UNICODE: {"hosts": 1, "done": 0, "failed": 1},
        },
        "failures": [
            {"host": h["host"], "status": h["status"], "reason": h["reason"]}
            for h in hosts
            if h["status"] not in ("removed", "clean", "skipped")
        ],
        "batches": [
            {"batch": 1, "started": "2025-03-01T12:00:01.000000+00:00", "hosts": ["web-01"]},
            {
                "batch": 2,
                "started": "2025-03-01T12:02:00.000000+00:00",
                "hosts": ["web-02", "db-01"],
            },
            {
                "batch": 3,
                "started": "2025-03-01T12:06:00.000000+00:00",
                "hosts": ["win-01", "win-02", SCRIPT, UNICODE, "mac-01"],
            },
        ],
        "events": [
            {
                "host": None,
                "kind": "halted",
                "detail": {"budget": 2, "spent_by": ["win-02", SCRIPT, UNICODE]},
                "at": "2025-03-01T12:09:50.000000+00:00",
            },
            {
                "host": SCRIPT,
                "kind": "hostkey_pinned",
                "detail": {"fingerprint": f"SHA256:{BREAKOUT}"},
                "at": "2025-03-01T12:06:02.000000+00:00",
            },
        ],
        "directive": {
            "identified": 6,
            "planned": 5,
            "removed": 3,
            "remaining": 2,
            "failed": 2,
            "exceptions": 3,
            "runs": [
                {"id": "20250301T120000Z-ab12", "started": "2025-03-01T12:00:00.000000+00:00"}
            ],
        },
        "hosts": hosts,
    }


FLEET_RUNS = [
    ("20250210T090000Z-d001", "2025-02-10T09:00:00.000000+00:00"),
    ("20250220T140000Z-p002", "2025-02-20T14:00:00.000000+00:00"),
    ("20250301T120000Z-ab12", "2025-03-01T12:00:00.000000+00:00"),
]


def fleet_document() -> dict[str, Any]:
    """The fleet's latest state after a detect run, a plan run and a removal run."""
    latest = FLEET_RUNS[-1][0]
    hosts = [
        {**h, "run": latest, "groups": [], "since": h["finished"]} for h in run_hosts()[:-1]
    ] + [
        {
            **_host("lab-09", "planned", [], found=[KESL], run=FLEET_RUNS[1][0]),
            "since": "2025-02-20T14:03:00.000000+00:00",
        }
    ]
    for h in hosts:
        h["first_identified"] = "2025-02-10T09:04:00.000000+00:00" if h["found"] else None
    counts: dict[str, int] = {}
    for h in hosts:
        counts[h["status"]] = counts.get(h["status"], 0) + 1
    return {
        "schema": "kremove.report/1",
        "scope": "fleet",
        "runs": [{"id": i, "started": s} for i, s in FLEET_RUNS],
        "counts": dict(sorted(counts.items())),
        "products": [
            {"product": "kes_windows", "name": KES["name"], "version": KES["version"], "hosts": 2},
            {"product": "kesl", "name": KESL["name"], "version": KESL["version"], "hosts": 3},
            {"product": "kesl", "name": SCRIPT, "version": BREAKOUT, "hosts": 1},
        ],
        "groups": {"(no group)": {"hosts": len(hosts), "done": 3, "failed": 4}},
        "failures": [
            {"host": h["host"], "status": h["status"], "reason": h["reason"]}
            for h in hosts
            if h["status"] not in ("removed", "clean", "planned")
        ],
        "directive": {
            "identified": 6,
            "planned": 1,
            "removed": 3,
            "remaining": 3,
            "failed": 2,
            "exceptions": 2,
            "runs": [{"id": i, "started": s} for i, s in FLEET_RUNS],
        },
        "hosts": hosts,
    }
