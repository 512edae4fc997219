"""A run's settings to and from the ledger: what a run keeps about itself, and how --resume and
--plan take the settings of a stored run back.

A run records how to select the same hosts again (inventory paths, --limit, playbooks, where the
uninstall password comes from; never a secret value) and, through its WaveSettings, how it was
staged. `kremove run --resume RUN_ID` continues with those settings; `--plan PLAN_ID` takes the
plan's selection and executes the reviewed steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from orchestrator.engine.request import DEFAULT_FORKS, DEFAULT_HOST_TIMEOUT
from orchestrator.errors import InputError
from orchestrator.inventory.model import WSMAN, Host
from orchestrator.ledger import Ledger, RunDetail

# A run that stopped before every host was worked on; "running" is one that died without saying.
RESUMABLE = ("halted", "paused", "interrupted", "running")


@dataclass(frozen=True)
class RunSettings:
    """What the operator gave on the command line (or what a stored run gave back)."""

    inventory: tuple[Path, ...] = ()
    limit: str | None = None
    playbooks: tuple[Path, ...] = ()
    uninstall_password_env: str | None = None
    uninstall_password_file: Path | None = None
    batches: str | None = None
    max_fail: str | None = None
    window: str | None = None
    tz: str | None = None
    forks: int = DEFAULT_FORKS
    host_timeout: float = DEFAULT_HOST_TIMEOUT


def refuse_both(resume: str | None, plan_id: str | None) -> None:
    """--resume continues a run with its settings, --plan executes a plan: one or the other."""
    if resume and plan_id:
        raise InputError("--resume and --plan cannot be combined")


def source_run(book: Ledger, resume: str | None, plan_id: str | None) -> RunDetail:
    """The stored run that --resume continues or the plan that --plan executes, checked."""
    refuse_both(resume, plan_id)
    source = book.get_run(resume or plan_id or "")
    if resume and source.status not in RESUMABLE:
        raise InputError(
            f"run {source.id} is {source.status}; only a halted, paused or interrupted run "
            "can be resumed"
        )
    if plan_id and source.kind != "plan":
        raise InputError(f"run {source.id} is a {source.kind} run, not a plan")
    return source


def restore(given: RunSettings, source: RunDetail, *, resume: bool) -> RunSettings:
    """The settings to run with: what was given on the command line wins, the stored run fills
    the rest. A resumed run also takes back its staging, and its forks and host timeout as
    stored (those two always, so that every batch of a run is worked on alike)."""
    stored = source.meta
    password_file = given.uninstall_password_file
    if password_file is None and stored.get("uninstall_password_file"):
        password_file = Path(stored["uninstall_password_file"])
    settings = replace(
        given,
        inventory=given.inventory or tuple(Path(p) for p in stored.get("inventory", [])),
        limit=given.limit if given.limit is not None else stored.get("limit"),
        playbooks=given.playbooks or tuple(Path(p) for p in stored.get("playbooks", [])),
        uninstall_password_env=given.uninstall_password_env or stored.get("uninstall_password_env"),
        uninstall_password_file=password_file,
    )
    if resume:
        stored_tz = stored.get("tz")
        settings = replace(
            settings,
            batches=given.batches or stored.get("batches"),
            max_fail=given.max_fail or stored.get("max_fail"),
            window=given.window or stored.get("window"),
            tz=given.tz or (stored_tz if stored_tz != "local time" else None),
            forks=stored.get("forks", given.forks),
            host_timeout=stored.get("host_timeout", given.host_timeout),
        )
    if not settings.inventory:
        raise InputError(f"run {source.id} does not record its inventory; give it with -i")
    return settings


def rollback_settings(given: RunSettings, source: RunDetail) -> RunSettings:
    """A rollback selects from the inventory and playbooks its run recorded, unless given; its
    limit and staging are its own."""
    return replace(
        given,
        inventory=given.inventory or tuple(Path(p) for p in source.meta.get("inventory", [])),
        playbooks=given.playbooks or tuple(Path(p) for p in source.meta.get("playbooks", [])),
    )


def resume_order(hosts: Sequence[Host], source: RunDetail) -> list[Host]:
    """The hosts of a resumed run, in the order it selected them; every one must still be in the
    inventory, since the run's waves were counted over them."""
    selected = [h.host for h in source.hosts]
    missing = sorted(set(selected) - {h.name for h in hosts})
    if missing:
        raise InputError(
            f"run {source.id}: hosts {', '.join(missing[:5])} are no longer in the inventory"
        )
    order = {name: i for i, name in enumerate(selected)}
    return sorted((h for h in hosts if h.name in order), key=lambda h: order[h.name])


def unchecked_certificates(hosts: Sequence[Host]) -> list[str]:
    """WinRM hosts whose certificates are not checked (inventory cert_validation: false)."""
    return [h.name for h in hosts if h.transport in WSMAN and not h.winrm.cert_validation]


def plain_http(hosts: Sequence[Host]) -> list[Host]:
    """WinRM hosts over plain HTTP whose login does not prove the host (all but Kerberos): NTLM
    seals the messages, but nothing shows the answer comes from the host meant."""
    return [
        h
        for h in hosts
        if h.transport in WSMAN and h.winrm.scheme == "http" and h.winrm.auth != "kerberos"
    ]


def run_meta(hosts: Sequence[Host], settings: RunSettings) -> dict[str, Any]:
    """What a run keeps about itself: how to select the same hosts again for --resume and --plan
    (no secret values), each host's groups for reports, where certificates go unchecked and where
    WinRM goes over plain HTTP."""
    password_file = settings.uninstall_password_file
    return {
        "inventory": [str(p.resolve()) for p in settings.inventory],
        "limit": settings.limit,
        "playbooks": [str(p.resolve()) for p in settings.playbooks],
        "uninstall_password_env": settings.uninstall_password_env,
        "uninstall_password_file": None if password_file is None else str(password_file),
        "groups": {h.name: list(h.groups) for h in hosts},
        "tls_validation_off": unchecked_certificates(hosts),
        "plain_http": [h.name for h in plain_http(hosts)],
    }
