"""Scale on paper, measured where it can be without a fleet: ``python -m bench.paper [N ...]``.

For N hosts (default 10,000 and 100,000) it times and sizes what the controller does around the
network: reading an N-host inventory, rendering every detection command, recording a removal wave
in the ledger (each host as `kremove run` records a product host: detect, purge, residue,
cleanup, verify, each journaled before and after, with outputs of the fleet's sizes), the
ledger's size, `audit verify` over it, and the JSON report. It prints one JSON document; the
numbers feed the "Scale on paper" section of bench/README.md. Nothing leaves the process.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from orchestrator import report
from orchestrator.engine.prepare import prepare
from orchestrator.inventory.loader import load_inventories
from orchestrator.ledger import Ledger, audit
from orchestrator.playbook.loader import load_playbooks
from orchestrator.transports.connector import Connector

T = TypeVar("T")
# One product host of the benchmark's fleet, as its removal wave records it: step, output size.
STEPS = (("packages", 420), ("purge:kesl", 900), ("residue:kesl", 0), ("cleanup", 0))
FINDINGS = [
    {"product": "kesl", "name": "Kaspersky Endpoint Security for Linux", "version": "12.1.0-1297",
     "kind": "installed", "evidence": {"manager": "dpkg", "package": "kesl", "arch": "all"}},
    {"product": "residue", "name": "Kaspersky directory", "version": None, "kind": "residue",
     "evidence": {"path": "/opt/kaspersky"}},
]  # fmt: skip


class _Offline(Connector):
    """Every host counts as reachable: only rendering is measured."""

    def check(self, host: Any) -> None:
        return None


def timed(what: str, results: dict[str, Any], fn: Callable[[], T]) -> T:
    started = time.perf_counter()
    value = fn()
    results[f"{what}_s"] = round(time.perf_counter() - started, 2)
    print(f"  {what}: {results[f'{what}_s']} s", file=sys.stderr, flush=True)
    return value


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_inventory(path: Path, hosts: int) -> None:
    with path.open("w") as f:
        f.write("version: 1\ndefaults:\n  transport: ssh\n  platform: linux\n  user: kops\n")
        f.write("  become: true\nhosts:\n")
        for i in range(hosts):
            f.write(f"  h{i:06d}:\n    address: 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")


def measure(hosts: int, work: Path) -> dict[str, Any]:
    print(f"{hosts} hosts", file=sys.stderr)
    results: dict[str, Any] = {"hosts": hosts}
    inventory_file = work / "inventory.yml"
    write_inventory(inventory_file, hosts)
    results["inventory_mib"] = round(inventory_file.stat().st_size / 2**20, 1)
    inventory = timed("inventory_load", results, lambda: load_inventories([inventory_file]))
    playbooks = load_playbooks()
    selected = list(inventory.hosts.values())
    jobs = timed("render_detect", results, lambda: prepare(selected, playbooks, _Offline()))
    detect_text = jobs[0].steps[0].command.text
    ledger_path = work / "ledger.db"
    ledger = Ledger.open(ledger_path)
    names = [h.name for h in selected]

    def record() -> str:
        run_id = ledger.start_run(
            kind="run",
            operator="bench",
            command_line="kremove run",
            inventory_digest="0" * 12,
            playbook_version="bench",
            hosts=names,
        )
        for name in names:
            for step_id, out in STEPS:
                key = ledger.step_started(
                    run_id, name, step_id=step_id, kind="remove", readonly=False,
                    command=detect_text if step_id == "packages" else f"dpkg --purge {step_id}",
                )  # fmt: skip
                ledger.step_finished(key, exit_code=0, stdout="x" * out, stderr="", timed_out=False)
            ledger.host_finished(
                run_id, name, status="removed", reason=None, findings=FINDINGS, post_findings=[]
            )
        ledger.finish_run(run_id, "completed")
        return run_id

    run_id = timed("ledger_record_wave", results, record)
    results["ledger_ms_per_host"] = round(1000 * results["ledger_record_wave_s"] / hosts, 2)
    ledger.close()
    size = sum(p.stat().st_size for p in work.glob("ledger.db*"))
    results["ledger_mib"] = round(size / 2**20, 1)
    results["ledger_kib_per_host"] = round(size / 1024 / hosts, 1)
    verdict = timed("audit_verify", results, lambda: audit.verify(ledger_path, None))
    results["audit_ok"] = verdict.ok
    ledger = Ledger.open(ledger_path)
    doc = timed(
        "report_json", results, lambda: json.dumps(report.run_report(ledger.get_run(run_id)))
    )
    results["report_mib"] = round(len(doc) / 2**20, 1)
    ledger.close()
    results["peak_rss_mib"] = round(peak_rss_mib())
    return results


def main() -> None:
    if sys.argv[1:2] == ["--one"]:  # one size per process, so that its peak RSS is its own
        work = Path(tempfile.mkdtemp(prefix="kremove-paper-"))
        try:
            print(json.dumps(measure(int(sys.argv[2]), work)))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    out = []
    for hosts in sizes:
        done = subprocess.run(
            [sys.executable, "-m", "bench.paper", "--one", str(hosts)],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
        out.append(json.loads(done.stdout))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
