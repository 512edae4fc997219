"""Writes docs/reliability.md from the figures a reliability run recorded (see tests/figures.py).

python -m tests.reliability_report FIGURES.jsonl docs/reliability.md
"""

from __future__ import annotations

import json
import platform
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path


def render(rows: list[dict[str, object]]) -> str:
    crash = [r for r in rows if r["kind"] == "crash"]
    faults = [r for r in rows if r["kind"] == "fault"]
    fuzz = [r for r in rows if r["kind"] == "fuzz"]
    trials = sum(int(str(r["trials"])) for r in crash)
    lost = sum(int(str(r["hosts_lost"])) for r in crash)
    repeated = sum(int(str(r["steps_repeated"])) for r in crash)
    lines = [
        "# Reliability figures",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC} on {platform.node()} "
        f"({platform.machine()}, Python {platform.python_version()}) by `./dev reliability`,",
        "which runs the crash, fault and fuzz tests and counts what they did. Nothing here is",
        "typed by hand.",
        "",
        "## Crash and resume",
        "",
        "| trials (SIGKILL at a random journaled step, then `--resume`) | killed mid-run | hosts |"
        " hosts lost | steps repeated |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in crash:
        lines.append(
            f"| {r['trials']} | {r['killed_mid_run']} | {r['hosts']} | {r['hosts_lost']} |"
            f" {r['steps_repeated']} |"
        )
    lines += [
        "",
        f"**Hosts lost: {lost}. Steps repeated: {repeated}.** (A host is lost when it ends a",
        "resumed run without exactly one final status; a step is repeated when a changing step",
        "the ledger recorded as finished is sent again.)",
        "",
        "## Faults injected",
        "",
        "| fault | times | outcome |",
        "|---|---:|---|",
    ]
    counted = Counter(str(r["fault"]) for r in faults)
    outcome = {
        str(r["fault"]): str(r["status"])
        if "status" in r
        else f"bounded: peak RSS {int(str(r['peak_kib'])) // 1024} MiB, no crash"
        for r in faults
    }
    for fault, n in sorted(counted.items()):
        lines.append(f"| {fault} | {n} | {outcome[fault]} |")
    lines += ["", "## Fuzzing", "", "| target | cases tried |", "|---|---:|"]
    for r in sorted(fuzz, key=lambda r: str(r["target"])):
        lines.append(f"| {r['target']} | {r['cases']} |")
    total = sum(int(str(r["cases"])) for r in fuzz)
    lines += ["", f"{trials} crash trials, {sum(counted.values())} faults, {total} fuzz cases.", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    source, target = Path(argv[0]), Path(argv[1])
    rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    target.write_text(render(rows))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
