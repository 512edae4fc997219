"""launchctl for simulated macOS fleet hosts: a SHIM, not Apple's tool (see tests/fleet/README.md).

There is no launchd here: the jobs "loaded" on the host are rows of a JSON file,
/var/db/kremove-fleet/launchd.json (label, domain "system" or "gui/UID", pid, last exit status,
plist path), which the host's kind writes and these commands change:

  launchctl list                     PID<TAB>Status<TAB>Label, then one row per job of the caller's
                                     domain (system for root, gui/UID otherwise); pid "-" if none
  launchctl list LABEL               the job as a plist-like dictionary, or exit 113
  launchctl bootout DOMAIN/LABEL     unload (DOMAIN: system, gui/UID, user/UID)
  launchctl bootout DOMAIN PATH      unload the job whose plist is PATH
  launchctl bootstrap DOMAIN PATH    load the plist at PATH (its Label and Program)
  launchctl unload [-w] PATH         legacy: unload the caller's job whose plist is PATH
  launchctl load [-w] PATH           legacy: load PATH into the caller's domain
  launchctl remove LABEL             legacy: unload LABEL from the caller's domain

Errors use launchd's wording: "Boot-out failed: 113: Could not find specified service".
"""

from __future__ import annotations

import json
import os
import plistlib
import random
import sys
from pathlib import Path
from typing import Any

STATE = Path("/var/db/kremove-fleet/launchd.json")
NOT_FOUND = 113


def _load() -> list[dict[str, Any]]:
    if not STATE.exists():
        return []
    jobs: list[dict[str, Any]] = json.loads(STATE.read_text())["jobs"]
    return jobs


def _save(jobs: list[dict[str, Any]]) -> None:
    STATE.parent.mkdir(parents=True, exist_ok=True)
    tmp = STATE.with_suffix(".tmp")
    tmp.write_text(json.dumps({"jobs": jobs}, indent=1) + "\n")
    tmp.replace(STATE)


def _own_domain() -> str:
    uid = os.geteuid()
    return "system" if uid == 0 else f"gui/{uid}"


def _domain(spec: str) -> str:
    return "gui/" + spec.split("/", 1)[1] if spec.startswith("user/") else spec


def _may_change(domain: str) -> bool:
    return os.geteuid() == 0 or domain == _own_domain()


def _plist(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as handle:
            doc: dict[str, Any] = plistlib.load(handle)
    except (OSError, plistlib.InvalidFileException):
        return None
    return doc


def _fail(what: str, code: int = NOT_FOUND, text: str = "Could not find specified service") -> int:
    sys.stderr.write(f"{what}: {code}: {text}\n")
    return code


def _unload(domain: str, match: dict[str, str], what: str) -> int:
    if not _may_change(domain):
        return _fail(what, 1, "Operation not permitted")
    jobs = _load()
    left = [
        job
        for job in jobs
        if not (job["domain"] == domain and all(job.get(k) == v for k, v in match.items()))
    ]
    if len(left) == len(jobs):
        return _fail(what)
    _save(left)
    return 0


def _bootstrap(domain: str, path: str, what: str) -> int:
    doc = _plist(path)
    if doc is None or "Label" not in doc:
        return _fail(what, 5, "Input/output error")
    if not _may_change(domain):
        return _fail(what, 1, "Operation not permitted")
    jobs = _load()
    if any(j["domain"] == domain and j["label"] == doc["Label"] for j in jobs):
        return _fail(what, 37, "Operation already in progress")
    args = doc.get("ProgramArguments") or [doc.get("Program", "")]
    jobs.append(
        {
            "label": doc["Label"],
            "domain": domain,
            "pid": random.randrange(300, 9000) if doc.get("KeepAlive") else None,
            "status": 0,
            "plist": path,
            "program": args[0] if args else "",
        }
    )
    _save(jobs)
    return 0


def _list(args: list[str]) -> int:
    domain = _own_domain()
    jobs = [job for job in _load() if job["domain"] == domain]
    if not args:
        print("PID\tStatus\tLabel")
        for job in jobs:
            pid = "-" if job.get("pid") is None else str(job["pid"])
            print(f"{pid}\t{job.get('status', 0)}\t{job['label']}")
        return 0
    for job in jobs:
        if job["label"] == args[0]:
            print("{")
            print('\t"LimitLoadToSessionType" = "System";')
            print(f'\t"Label" = "{job["label"]}";')
            print('\t"OnDemand" = false;')
            print(f'\t"LastExitStatus" = {job.get("status", 0)};')
            if job.get("pid") is not None:
                print(f'\t"PID" = {job["pid"]};')
            print(f'\t"Program" = "{job.get("program", "")}";')
            print("};")
            return 0
    sys.stderr.write(f'Could not find service "{args[0]}" in domain for port\n')
    return NOT_FOUND


def main(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write("Usage: launchctl <subcommand> ... | help [subcommand]\n")
        return 64
    command, args = argv[0], [a for a in argv[1:] if a not in ("-w", "-F")]
    if command == "list" and len(args) <= 1:
        return _list(args)
    if command == "bootout" and len(args) == 1 and "/" in args[0]:
        domain, _, label = _domain(args[0]).rpartition("/")
        return _unload(domain, {"label": label}, "Boot-out failed")
    if command == "bootout" and len(args) == 2:
        return _unload(_domain(args[0]), {"plist": args[1]}, "Boot-out failed")
    if command == "bootstrap" and len(args) == 2:
        return _bootstrap(_domain(args[0]), args[1], "Bootstrap failed")
    if command == "unload" and len(args) == 1:
        # The legacy subcommands report a failure on stderr and still exit 0, as launchctl does.
        _unload(_own_domain(), {"plist": args[0]}, f"{args[0]}: Unload failed")
        return 0
    if command == "load" and len(args) == 1:
        _bootstrap(_own_domain(), args[0], f"{args[0]}: Load failed")
        return 0
    if command == "remove" and len(args) == 1:
        return _unload(_own_domain(), {"label": args[0]}, "Remove failed")
    sys.stderr.write(f"Unrecognized subcommand: {command}\n")
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
