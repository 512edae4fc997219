"""Run the simulated fleet by hand, for a demo or a benchmark (run from the repository root):

    python -m tests.fleet up --dir /tmp/fleet [--kinds clean=5,one_product=5,...] [--slow-delay S]
                             [--windows-kinds kes_and_agent=2,clean=1,...]
    python -m tests.fleet status --dir /tmp/fleet [--json]
    python -m tests.fleet reset --dir /tmp/fleet [--host NAME]
    python -m tests.fleet down --dir /tmp/fleet

``up`` leaves the hosts running after it returns, writes inventory.yml, known_hosts and
ssh_config into the directory, and prints the variables to export. Needs root. With
``--windows-kinds`` it also starts emulated Windows hosts behind WinRM (tests/fleet/winrm_host)
in the directory's ``windows/`` and writes ``windows.yml``, whose login password is read from a
file, so kremove needs nothing exported for them; status, reset and down cover them too.

An installed kremove carries this package as ``orchestrator._lab`` (a link to tests/fleet, built
into the wheel): ``kremove lab`` runs ``python -m orchestrator._lab``, which is this module.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from .fleet import STATE_FILE, Fleet, FleetError
from .kinds import KINDS
from .system import FleetUnavailable
from .winrm_host.fleet import STATE_FILE as WINDOWS_STATE_FILE
from .winrm_host.fleet import (
    UNINSTALL_PASSWORD_ENV,
    WinrmFleet,
    WinrmFleetError,
    write_secret_file,
)
from .winrm_host.kinds import KINDS as WINDOWS_KINDS

DEFAULT_KINDS = ",".join(f"{kind}=1" for kind in KINDS)
WINDOWS_DIR = "windows"  # the WinRM fleet's workdir, inside --dir
WINDOWS_INVENTORY = "windows.yml"  # beside inventory.yml

# tests.fleet, or orchestrator._lab where kremove lab runs it from an installed kremove.
PROG = f"python -m {__package__ or 'tests.fleet'}"


def _counts(text: str, known: Collection[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, count = item.partition("=")
        if kind not in known:
            raise argparse.ArgumentTypeError(f"unknown kind {kind!r}; known: {', '.join(known)}")
        try:
            counts[kind] = counts.get(kind, 0) + int(count or "1")
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a count: {item!r}") from None
    return counts


def parse_counts(text: str) -> dict[str, int]:
    return _counts(text, KINDS)


def parse_windows_counts(text: str) -> dict[str, int]:
    return _counts(text, WINDOWS_KINDS)


def _windows(workdir: Path) -> WinrmFleet | None:
    """The directory's WinRM fleet, if ``up`` started one that still runs."""
    if not (workdir / WINDOWS_DIR / WINDOWS_STATE_FILE).exists():
        return None
    return WinrmFleet.load(workdir / WINDOWS_DIR)


def up(args: argparse.Namespace) -> int:
    workdir: Path = args.dir.resolve()
    if (workdir / STATE_FILE).exists() or _windows(workdir):
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
    env = dict(fleet.env)
    if args.windows_kinds:
        try:
            env.update(_windows_up(workdir, args.windows_kinds).env)
        except BaseException:
            fleet.stop()
            raise
    print(f"# stop: {PROG} down --dir {workdir}")
    for name, value in sorted(env.items()):
        print(f"export {name}={shlex.quote(value)}")
    return 0


def _windows_up(workdir: Path, kinds: dict[str, int]) -> WinrmFleet:
    """The WinRM fleet in workdir/windows and windows.yml, whose login password (like the
    protected hosts' uninstall password) is in a file, so kremove needs nothing exported."""
    started = time.monotonic()
    windows = WinrmFleet.start(workdir / WINDOWS_DIR, kinds, keep_running=True)
    took = time.monotonic() - started
    inventory = windows.write_inventory(
        workdir / WINDOWS_INVENTORY, password_file=windows.workdir / "password"
    )
    print(f"# {len(windows.hosts)} Windows hosts (WinRM) up in {took:.1f}s")
    print(f"# windows inventory: {inventory}")
    if windows.by_kind("protected_kes"):
        uninstall = write_secret_file(
            windows.workdir / "uninstall_password", windows.env[UNINSTALL_PASSWORD_ENV]
        )
        print(f"# protected_kes hosts need: --uninstall-password-file {uninstall}")
    return windows


def status(args: argparse.Namespace) -> int:
    fleet = Fleet.load(args.dir)
    rows = fleet.status()
    windows = _windows(fleet.workdir)
    windows_rows = windows.status() if windows else []
    if args.json:
        doc = {"workdir": str(fleet.workdir), "hosts": rows, "windows": windows_rows}
        print(json.dumps(doc, indent=1))
    else:
        for row in rows:
            if row["products"]:  # a Windows host behind OpenSSH
                print(_status_line(row, "; ".join(f"{k} {v}" for k, v in row["products"].items())))
                continue
            print(_status_line(row, " ".join(f"{k}={v}" for k, v in row["packages"].items())))
        for row in windows_rows:  # Windows display names hold spaces
            print(_status_line(row, "; ".join(f"{k} {v}" for k, v in row["products"].items())))
    return 0 if all(row["running"] for row in rows + windows_rows) else 3


def _status_line(row: dict[str, Any], installed: str) -> str:
    state = "up" if row["running"] else "DOWN"
    return f"{row['name']:<28} {state:<5} {row['address']}:{row['port']:<6} {installed}"


def reset(args: argparse.Namespace) -> int:
    workdir: Path = args.dir.resolve()
    windows = _windows(workdir)
    windows_names = {h.name for h in windows.hosts} if windows else set()
    if args.host is None or args.host not in windows_names:
        Fleet.load(workdir).reset(args.host)
    if windows is not None and (args.host is None or args.host in windows_names):
        windows.reset(args.host)
    return 0


def down(args: argparse.Namespace) -> int:
    workdir: Path = args.dir.resolve()
    windows = _windows(workdir)
    if windows is not None:
        windows.stop()
    if windows is None or (workdir / STATE_FILE).exists():
        Fleet.load(workdir).stop()
    print(f"fleet in {workdir} stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start a fleet that keeps running")
    p_up.add_argument("--kinds", type=parse_counts, default=parse_counts(DEFAULT_KINDS))
    p_up.add_argument("--slow-delay", type=float, default=3.0)
    p_up.add_argument(
        "--windows-kinds",
        type=parse_windows_counts,
        default={},
        help="also start emulated Windows hosts (WinRM), e.g. kes_and_agent=2,clean=1",
    )
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
    except (FleetError, FleetUnavailable, WinrmFleetError, KeyError) as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
