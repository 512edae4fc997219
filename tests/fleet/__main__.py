"""Run the simulated fleet by hand, for a demo or a benchmark (run from the repository root):

    python -m tests.fleet up --dir /tmp/fleet [--kinds clean=5,one_product=5,...] [--slow-delay S]
    python -m tests.fleet status --dir /tmp/fleet [--json]
    python -m tests.fleet reset --dir /tmp/fleet [--host NAME]
    python -m tests.fleet down --dir /tmp/fleet

``up`` leaves the hosts running after it returns, writes inventory.yml, known_hosts and
ssh_config into the directory, and prints the variables to export. Needs root.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from tests.fleet.fleet import Fleet, FleetError
from tests.fleet.kinds import KINDS
from tests.fleet.system import FleetUnavailable

DEFAULT_KINDS = ",".join(f"{kind}=1" for kind in KINDS)


def parse_counts(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, count = item.partition("=")
        if kind not in KINDS:
            raise argparse.ArgumentTypeError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
        try:
            counts[kind] = counts.get(kind, 0) + int(count or "1")
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a count: {item!r}") from None
    return counts


def up(args: argparse.Namespace) -> int:
    workdir: Path = args.dir.resolve()
    if (workdir / "state.json").exists():
        print(f"a fleet already runs in {workdir}; run 'down' first", file=sys.stderr)
        return 1
    started = time.monotonic()
    fleet = Fleet.start(workdir, args.kinds, slow_delay=args.slow_delay, keep_running=True)
    took = time.monotonic() - started
    known_hosts = fleet.write_known_hosts(workdir / "known_hosts")
    inventory = fleet.write_inventory(workdir / "inventory.yml", known_hosts=known_hosts)
    ssh_config = fleet.write_ssh_config(workdir / "ssh_config", known_hosts=known_hosts)
    print(f"# {len(fleet.hosts)} hosts up in {took:.1f}s")
    print(f"# inventory: {inventory}")
    print(f"# ssh: ssh -F {ssh_config} {fleet.hosts[0].name}")
    print(f"# stop: python -m tests.fleet down --dir {workdir}")
    for name, value in sorted(fleet.env.items()):
        print(f"export {name}={shlex.quote(value)}")
    return 0


def status(args: argparse.Namespace) -> int:
    fleet = Fleet.load(args.dir)
    rows = fleet.status()
    if args.json:
        print(json.dumps({"workdir": str(fleet.workdir), "hosts": rows}, indent=1))
    else:
        for row, host in zip(rows, fleet.hosts, strict=True):
            packages = " ".join(f"{k}={v}" for k, v in row["packages"].items())
            state = "up" if row["running"] else "DOWN"
            print(f"{host.name:<28} {state:<5} {host.address}:{host.port:<6} {packages}")
    return 0 if all(row["running"] for row in rows) else 3


def reset(args: argparse.Namespace) -> int:
    Fleet.load(args.dir).reset(args.host)
    return 0


def down(args: argparse.Namespace) -> int:
    Fleet.load(args.dir).stop()
    print(f"fleet in {args.dir.resolve()} stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fleet", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start a fleet that keeps running")
    p_up.add_argument("--kinds", type=parse_counts, default=parse_counts(DEFAULT_KINDS))
    p_up.add_argument("--slow-delay", type=float, default=3.0)
    p_status = sub.add_parser("status", help="list the hosts and whether they run")
    p_status.add_argument("--json", action="store_true")
    p_reset = sub.add_parser("reset", help="restore hosts to their kind's initial state")
    p_reset.add_argument("--host", default=None)
    sub.add_parser("down", help="stop the fleet")
    for command in (p_up, p_status, p_reset, sub.choices["down"]):
        command.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    handler = {"up": up, "status": status, "reset": reset, "down": down}[args.command]
    try:
        return handler(args)
    except (FleetError, FleetUnavailable, KeyError) as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
