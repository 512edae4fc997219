"""bench/run's driver: fleets, the runs in alternating order, the checks, the report."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import meter, prepare, report
from tests.fleet import Fleet, FleetError

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV = BENCH / ".venv" / "bin"
FORKS = 50
QUIET_CORES = 0.25  # busier than this before a run: other work is running on the machine
QUIET_WAIT = 120.0
# The mix of every fleet: kinds on which all three tools do the same work and nothing fails.
MIX = ("one_product", "several_products", "clean", "one_product", "several_products")


@dataclass
class Size:
    """One fleet size and everything prepared for it."""

    hosts: int
    tools: tuple[str, ...]  # which tools run at this size
    workdir: Path
    fleet: Any = None
    inventory: Path = Path()
    ansible_inventory: Path = Path()
    ansible_vars: Path = Path()
    ports: Path = Path()
    commands: prepare.Commands | None = None
    with_products: int = 0
    counter: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def kinds_for(hosts: int) -> list[str]:
    return [MIX[i % len(MIX)] for i in range(hosts)]


def tool_env(size: Size, run_dir: Path) -> dict[str, str]:
    """A clean HOME per run: no ~/.ssh/config, agent, ~/.ansible or control socket carries over."""
    home = run_dir / "home"
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANSIBLE_", "KREMOVE_", "SSH_AUTH_SOCK", "SSH_AGENT"))
        and k != "PYTHONDONTWRITEBYTECODE"  # every tool loads compiled .pyc, as installed
    }
    env.update(size.fleet.env)
    cp = size.workdir / "cp" / str(size.counter)  # ControlPath must stay short (sun_path)
    cp.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        PATH=f"{VENV}:{env.get('PATH', '/usr/bin:/bin')}",
        KREMOVE_LEDGER=str(run_dir / "ledger.db"),
        ANSIBLE_CONFIG=str(BENCH / "ansible" / "ansible.cfg"),
        ANSIBLE_HOME=str(home / ".ansible"),
        ANSIBLE_LOCAL_TEMP=str(home / ".ansible" / "tmp"),
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(cp),
    )
    return env


def argv_for(size: Size, tool: str, op: str, agreed: dict[str, str]) -> list[str]:
    if tool == "kremove":
        verb = ["detect"] if op == "detect" else ["run", "--yes"]
        inv = str(size.inventory)
        return [str(VENV / "kremove"), *verb, "-i", inv, "--forks", str(FORKS), "--json"]
    if tool == "ansible":
        book = BENCH / "ansible" / f"{'detect' if op == 'detect' else 'remove'}.yml"
        return [
            str(VENV / "ansible-playbook"),
            "-i",
            str(size.ansible_inventory),
            str(book),
            "-e",
            f"bench_vars={size.ansible_vars}",
        ]
    assert tool == "openssh" and op == "detect" and size.commands is not None
    fleet = size.fleet
    ssh = [
        "ssh",
        "-F",
        "/dev/null",
        "-o",
        "ControlMaster=no",
        "-o",
        f"KexAlgorithms={agreed['kex']}",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-i",
        str(fleet.client_key),
        "-o",
        f"UserKnownHostsFile={size.workdir / 'known_hosts'}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-l",
        fleet.hosts[0].user,
        "-p",
        "{}",
        fleet.hosts[0].address,
        size.commands.floor,
    ]
    return ssh


def floor_argv(size: Size, agreed: dict[str, str]) -> list[str]:
    """xargs -P 50 -I{} ssh ... -p {} 127.0.0.1 'sudo ... detection' < ports."""
    ssh = argv_for(size, "openssh", "detect", agreed)
    return ["xargs", "-a", str(size.ports), "-P", str(FORKS), "-I{}", *ssh]


def check(size: Size, tool: str, op: str, meter: dict[str, Any], out: Path, err: Path) -> str:
    """'' when the run did the whole job on every host, else what went wrong."""
    n = size.hosts
    text = out.read_text(errors="replace")
    if tool == "kremove":
        try:
            doc = json.loads(text)
        except ValueError:
            return f"no JSON on stdout (exit {meter['exit_code']}): {err.read_text()[-300:]}"
        counts = doc.get("counts", {})
        done = "found" if op == "detect" else "removed"
        want = {done: size.with_products, "clean": n - size.with_products}
        want = {k: v for k, v in want.items() if v}
        return "" if counts == want else f"counts {counts}, expected {want}"
    if tool == "ansible":
        recap = [ln for ln in text.splitlines() if " : ok=" in ln]
        bad = [ln.split()[0] for ln in recap if "unreachable=0" not in ln or "failed=0" not in ln]
        if meter["exit_code"] != 0 or len(recap) != n or bad:
            return f"exit {meter['exit_code']}, {len(recap)} hosts in the recap, failed: {bad[:5]}"
        return ""
    managers = text.count("manager\tdpkg\n")
    if meter["exit_code"] != 0 or managers != n:
        return f"exit {meter['exit_code']}, {managers} of {n} hosts answered"
    return ""


def wait_quiet(limit: float) -> tuple[float, float]:
    """Wait (up to ``limit`` s) until the machine is nearly idle; (busy cores then, seconds waited).

    Other work on the machine (another session's tests) would be timed with the tool; it is
    waited out where possible and recorded either way."""
    started = time.monotonic()
    while True:
        before = meter.cpu_ticks()
        time.sleep(0.5)
        busy = meter.busy_cores(before, meter.cpu_ticks())
        waited = time.monotonic() - started
        if busy <= QUIET_CORES or waited >= limit:
            return busy, waited


def measure(size: Size, tool: str, op: str, rep: int, agreed: dict[str, str]) -> dict[str, Any]:
    size.counter += 1
    idle_busy, waited = wait_quiet(QUIET_WAIT)
    run_dir = size.workdir / "runs" / f"{size.counter:03d}-{tool}-{op}"
    run_dir.mkdir(parents=True)
    env = tool_env(size, run_dir)
    argv = floor_argv(size, agreed) if tool == "openssh" else argv_for(size, tool, op, agreed)
    out, err, result = run_dir / "stdout", run_dir / "stderr", run_dir / "meter.json"
    subprocess.run(
        [str(VENV / "python"), "-m", "bench.meter", str(result), str(out), str(err), "--", *argv],
        env={**env, "PYTHONPATH": str(REPO)},
        cwd=run_dir,
        check=True,
    )
    meter = json.loads(result.read_text())
    problem = check(size, tool, op, meter, out, err)
    if op == "remove" and not problem:
        left = {h.name: p for h in size.fleet.hosts if (p := size.fleet.kaspersky_packages(h.name))}
        if left:
            problem = f"{len(left)} hosts still have packages, e.g. {next(iter(left.items()))}"
    record = {
        "size": size.hosts,
        "tool": tool,
        "op": op,
        "repeat": rep,
        "ok": not problem,
        "problem": problem,
        "dir": str(run_dir.relative_to(BENCH)),
        "busy_cores_before": idle_busy,
        "waited_for_quiet_s": waited,
        **{k: v for k, v in meter.items() if k != "argv"},
    }
    size.records.append(record)
    state = "ok" if not problem else f"PROBLEM: {problem}"
    if idle_busy > QUIET_CORES:
        state += f" (machine busy before: {idle_busy:.2f} cores)"
    log(
        f"  {size.hosts:>5} {op:<7} {tool:<8} #{rep}: {meter['wall_s']:7.2f} s wall, "
        f"{meter['cpu_s']:6.2f} s CPU, {meter['peak_rss_mib']:7.1f} MiB peak RSS  {state}"
    )
    return record


def start_fleet(size: Size) -> None:
    log(f"starting a fleet of {size.hosts} hosts")
    started = time.monotonic()
    fleet_dir = size.workdir / "fleet"
    size.fleet = Fleet.start(fleet_dir, kinds_for(size.hosts), timeout=300)
    log(f"  up in {time.monotonic() - started:.1f} s")
    known = size.fleet.write_known_hosts(size.workdir / "known_hosts")
    size.inventory = size.fleet.write_inventory(size.workdir / "inventory.yml", known_hosts=known)
    size.ansible_inventory = prepare.ansible_inventory(
        size.fleet, size.workdir / "inventory.ini", known
    )
    size.ansible_vars = size.workdir / "ansible-vars.yml"
    size.commands = prepare.render(size.inventory, size.ansible_vars)
    size.ports = size.workdir / "ports"
    size.ports.write_text("".join(f"{h.port}\n" for h in size.fleet.hosts))
    size.with_products = sum(1 for h in size.fleet.hosts if h.expected_packages)


def run_size(
    size: Size, repeat: int, remove_repeat: int, agreed: dict[str, str], warm: bool
) -> None:
    if warm:  # untimed: page cache, .pyc files, first sudo on each host
        log("  warm-up run of each tool (not counted)")
        for tool in size.tools:
            record = measure(size, tool, "detect", 0, agreed)
            record["warmup"] = True
    for rep in range(1, repeat + 1):
        order = size.tools if rep % 2 else tuple(reversed(size.tools))
        for tool in order:
            measure(size, tool, "detect", rep, agreed)
    removers = tuple(t for t in size.tools if t != "openssh")
    for rep in range(1, remove_repeat + 1):
        order = removers if rep % 2 else tuple(reversed(removers))
        for tool in order:
            started = time.monotonic()
            reset(size.fleet)
            missing = [
                h.name
                for h in size.fleet.hosts
                if h.expected_packages and not size.fleet.kaspersky_packages(h.name)
            ]
            if missing:
                raise SystemExit(f"bench: reset left {len(missing)} hosts without packages")
            log(f"  fleet reset in {time.monotonic() - started:.1f} s")
            measure(size, tool, "remove", rep, agreed)


def reset(fleet: Any, attempts: int = 3) -> None:
    """fleet.reset(), again if an sshd did not come back (seen on a machine under heavy load)."""
    for attempt in range(1, attempts + 1):
        try:
            fleet.reset()
            return
        except FleetError as exc:
            if attempt == attempts:
                raise
            log(f"  fleet reset failed ({exc}); trying again")


def parse_sizes(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()] if text else []


def main() -> None:
    global QUIET_WAIT
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description="kremove vs ansible-core vs plain OpenSSH fan-out on the simulated fleet.",
    )
    parser.add_argument("--sizes", default="50,300", help="side-by-side fleet sizes (50,300)")
    parser.add_argument("--solo", default="1000", help="kremove-only sizes ('' for none)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="timed detect runs per tool (2: one in each order, so that drift cancels)",
    )
    parser.add_argument(
        "--remove-repeat",
        type=int,
        default=1,
        help="timed removal waves per tool (1: a wave's time is mostly the hosts' own dpkg work)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 hosts, 1 repeat")
    parser.add_argument("--work", type=Path, default=BENCH / "work", help="scratch directory")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where RESULTS.md and results.json go (default bench/; --quick: the work dir)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=QUIET_WAIT,
        help="seconds to wait before each run for the machine to go idle (120)",
    )
    args = parser.parse_args()
    QUIET_WAIT = args.quiet_wait
    sides, solos = parse_sizes(args.sizes), parse_sizes(args.solo)
    repeat, remove_repeat = args.repeat, args.remove_repeat
    if args.quick:
        sides, solos, repeat, remove_repeat = [5], [], 1, 1
    stamp = time.strftime("%Y%m%dT%H%M%S")
    work = (args.work / stamp).resolve()
    work.mkdir(parents=True)
    out = args.out or (work if args.quick else BENCH)
    log(f"bench: work directory {work}")
    began = time.monotonic()
    plan = [Size(n, ("kremove", "ansible", "openssh"), work / f"size-{n}") for n in sides]
    plan += [Size(n, ("kremove",), work / f"solo-{n}") for n in solos]
    agreed: dict[str, str] = {}
    records: list[dict[str, Any]] = []
    fleet_seconds: dict[int, float] = {}
    broken: dict[int, str] = {}
    for index, size in enumerate(plan):
        size.workdir.mkdir(parents=True)
        started = time.monotonic()
        start_fleet(size)
        fleet_seconds[size.hosts] = time.monotonic() - started
        try:
            if not agreed:
                agreed = prepare.negotiated(
                    VENV / "python", size.inventory, size.fleet.hosts[0].name, size.workdir
                )
                log(f"  kremove negotiates {agreed}")
            # One untimed warm-up at the first size fills the page cache for all that follow.
            run_size(size, repeat, remove_repeat, agreed, warm=index == 0)
        except Exception as exc:  # keep what the other sizes measured; say what broke
            log(f"bench: size {size.hosts} broke off: {type(exc).__name__}: {exc}")
            broken[size.hosts] = f"{type(exc).__name__}: {exc}"
        finally:
            size.fleet.stop()
            shutil.rmtree(size.workdir / "fleet", ignore_errors=True)
        records += size.records
    elapsed = time.monotonic() - began
    results = report.build(
        records,
        agreed=agreed,
        sides=sides,
        solos=solos,
        repeat=repeat,
        remove_repeat=remove_repeat,
        forks=FORKS,
        elapsed=elapsed,
        fleet_seconds=fleet_seconds,
        mix=MIX,
        quick=args.quick,
        broken=broken,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "RESULTS.md").write_text(report.markdown(results))
    failed = [r for r in records if not r["ok"]]
    log(f"bench: done in {elapsed / 60:.1f} min; wrote {out / 'RESULTS.md'} and results.json")
    if failed or broken:
        log(f"bench: {len(failed)} runs did not do the whole job (see RESULTS.md)")
        sys.exit(1)


if __name__ == "__main__":
    main()
