"""kremove plan: the dry run saved in the ledger, or --offline the steps per platform."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from orchestrator.cli.options import (
    AcceptKeysOpt,
    AllowEncryptedOpt,
    ForksOpt,
    HostTimeoutOpt,
    InventoryOpt,
    JsonOpt,
    LedgerOpt,
    LimitOpt,
    PasswordEnvOpt,
    PasswordFileOpt,
    PlaybooksOpt,
    connection_options,
    log_options,
    vault_options,
)

if TYPE_CHECKING:
    from orchestrator.engine.offline import PlatformPlan
    from orchestrator.engine.settings import RunSettings
    from orchestrator.engine.uninstall_passwords import Choice
    from orchestrator.eventlog import LogTargets
    from orchestrator.inventory.model import Host, Inventory
    from orchestrator.inventory.overrides import ConnectionDefaults
    from orchestrator.ledger import HostRecord, RunDetail
    from orchestrator.playbook.loader import PlaybookSet

app = typer.Typer(rich_markup_mode=None)

_OfflineOpt = typer.Option(
    False,
    "--offline",
    help="Do not connect: show the steps every catalog product would get on each platform "
    "(for a change board).",
)


@app.command(
    "plan",
    epilog="Example: kremove plan -i fleet.yml --limit canary   then   kremove run --plan PLAN_ID",
)
@connection_options
@log_options
@vault_options
def plan_command(
    inventory: list[Path] = InventoryOpt,
    limit: str | None = LimitOpt,
    offline: bool = _OfflineOpt,
    allow_encrypted_data_loss: bool = AllowEncryptedOpt,
    forks: int = ForksOpt,
    host_timeout: float = HostTimeoutOpt,
    uninstall_password_env: str | None = PasswordEnvOpt,
    uninstall_password_file: Path | None = PasswordFileOpt,
    playbooks: list[Path] = PlaybooksOpt,
    accept_new_hostkeys: bool = AcceptKeysOpt,
    ledger: Path | None = LedgerOpt,
    as_json: bool = JsonOpt,
    connection: ConnectionDefaults | None = None,
    logs: LogTargets | None = None,
) -> None:
    """The dry run: connect, run only read-only steps, and show per host what was found, the exact
    commands the removal would send in order (secrets masked) and the status to expect.

    The plan is saved in the ledger; `kremove run --plan PLAN_ID` executes exactly these steps.
    """
    from orchestrator.cli.session import load
    from orchestrator.engine.offline import offline_plan
    from orchestrator.engine.settings import RunSettings
    from orchestrator.playbook.loader import load_playbooks

    inv, hosts = load(inventory, limit, connection)
    content = load_playbooks(playbooks)
    if offline:
        _print_offline(offline_plan(hosts, content), as_json)
        return
    settings = RunSettings(
        inventory=tuple(inventory),
        limit=limit,
        playbooks=tuple(playbooks),
        uninstall_password_env=uninstall_password_env,
        uninstall_password_file=uninstall_password_file,
        forks=forks,
        host_timeout=host_timeout,
    )
    _execute(
        inv,
        hosts,
        content,
        settings,
        (accept_new_hostkeys, allow_encrypted_data_loss),
        ledger,
        as_json,
        logs,
    )


def _execute(
    inv: Inventory,
    hosts: list[Host],
    content: PlaybookSet,
    settings: RunSettings,
    allowances: tuple[bool, bool],  # --accept-new-hostkeys, --allow-encrypted-data-loss
    ledger: Path | None,
    as_json: bool,
    logs: LogTargets | None,
) -> None:
    from orchestrator.cli import session
    from orchestrator.engine import preflight, runner

    accept_new_hostkeys, allow_encrypted = allowances
    ledger_path = session.ledger_path(ledger)
    secrets, connector = session.connect_setup(inv, hosts, ledger_path, accept_new_hostkeys)
    template_secrets = session.uninstall_password(
        secrets,
        settings.uninstall_password_env,
        settings.uninstall_password_file,
        hosts,
        content.catalog,
    )
    meta = session.run_meta(hosts, settings)
    wiring = session.Wiring(
        inv, content, secrets, connector, ledger_path, template_secrets, logs=logs
    )
    with session.recording(wiring, hosts, settings, "plan", lambda: meta) as common:
        common["allow_encrypted"] = allow_encrypted
        result = runner.plan(hosts, **common)
        record = common["ledger"].get_run(result.run_id)
        path = common["ledger"].path
    passwords = _passwords(hosts, content, settings, record.hosts)
    privileges = _privileges(record)
    _print_plan(result.run_id, result.counts, record.hosts, path, as_json, passwords, privileges)
    servers = preflight.ksc_servers((h.host, h.findings or ()) for h in record.hosts)
    warning = preflight.ksc_warning(servers)
    if warning:
        from orchestrator.cli.console import err, safe

        err.print(f"[yellow]kremove: {safe(warning)}[/]")
    raise typer.Exit(session.exit_code(result))


def _passwords(
    hosts: Sequence[Host],
    content: PlaybookSet,
    settings: RunSettings,
    records: Sequence[HostRecord],
) -> dict[str, list[Choice]]:
    """Per host, the uninstall password reference each protected product found will use."""
    from orchestrator.engine import uninstall_passwords as pw

    default = pw.run_wide(settings.uninstall_password_env, settings.uninstall_password_file)
    by_name = {h.name: h for h in hosts}
    chosen = {}
    for record in records:
        host = by_name.get(record.host)
        if host is not None:
            found = {str(f.get("product")) for f in record.findings if f.get("kind") == "installed"}
            platform = pw.platform_of(host)
            chosen[host.name] = pw.choices(host, platform, content.catalog, default, found)
    return chosen


def _privileges(record: RunDetail) -> dict[str, dict[str, Any]]:
    """Per host, the privilege verdict its probe led to (engine/privilege.py), as recorded."""
    from orchestrator.engine.privilege import EVENT

    return {e.host: e.detail for e in record.events if e.kind == EVENT and e.host is not None}


def _print_plan(
    plan_id: str,
    counts: dict[str, int],
    hosts: Sequence[HostRecord],
    ledger_path: Path,
    as_json: bool,
    passwords: Mapping[str, Sequence[Choice]],
    privileges: Mapping[str, Mapping[str, Any]],
) -> None:
    from orchestrator.cli.console import out, print_json, safe
    from orchestrator.cli.context import current

    summary = plan_summary(hosts)
    if current().quiet and not as_json:
        out.print(safe(summary["text"]))
        out.print(f"plan {plan_id}: kremove run --plan {plan_id}")
        return
    if as_json:
        print_json(
            {
                "plan": plan_id,
                "counts": counts,
                "summary": summary,
                "hosts": [
                    {
                        "host": h.host,
                        "status": h.status,
                        "reason": h.reason,
                        "findings": h.findings,
                        "privilege": privileges.get(h.host),
                        "uninstall_passwords": [c.to_dict() for c in passwords.get(h.host, ())],
                        "steps": h.plan or [],
                    }
                    for h in hosts
                ],
            }
        )
        return
    for h in hosts:
        _print_host(h, privileges.get(h.host), passwords.get(h.host, ()))
    out.print(safe(summary["text"]))
    out.print(
        f"plan [bold]{plan_id}[/] saved in {ledger_path}; execute exactly these steps with: "
        f"kremove run --plan {plan_id}"
    )


def _print_host(
    h: HostRecord, verdict: Mapping[str, Any] | None, passwords: Sequence[Choice]
) -> None:
    """One host of the plan: its status, what was found, its privilege and passwords, the steps."""
    from orchestrator.cli.console import finding_label, out, safe, styled

    out.print(f"[bold]{safe(h.host)}[/]  {styled(h.status or 'pending')}  {safe(h.reason or '')}")
    for f in h.findings:
        if f.get("kind") == "installed":
            out.print(f"  found  {safe(finding_label(f))}")
    if verdict is not None:
        colour = "default" if verdict.get("ok") else "red"
        out.print(f"  [{colour}]privilege  {safe(verdict.get('shown'))}[/]")
    for choice in passwords:
        colour = "yellow" if choice.entry is None else "default"
        out.print(f"  [{colour}]password  {safe(choice.describe())}[/]")
    for n, step in enumerate(h.plan or [], 1):
        flags = "read-only" if step["readonly"] else "CHANGES"
        become = ", sudo" if step.get("become") else ""
        out.print(f"  {n}. {safe(step['step'])}  ({flags}{become})")
        _print_command(step["command"])


def _print_command(command: object) -> None:
    from orchestrator.cli.console import out, safe

    for line in str(command).splitlines():
        out.print(f"       {safe(line)}")


def plan_summary(hosts: Sequence[HostRecord]) -> dict[str, Any]:
    """One sentence for the change board (what would be removed from how many hosts, and the
    hosts not planned by status), with the same facts as data."""
    from orchestrator.cli.console import finding_label
    from orchestrator.engine import status as st

    removals: dict[str, set[str]] = {}
    statuses: dict[str, int] = {}
    for h in hosts:
        if h.status != st.PLANNED:
            statuses[h.status or "pending"] = statuses.get(h.status or "pending", 0) + 1
            continue
        for f in h.findings:
            if f.get("kind") == "installed":
                removals.setdefault(finding_label(f), set()).add(h.host)
    parts = [
        f"{what} from {len(names)} host{'s' if len(names) != 1 else ''}"
        for what, names in sorted(removals.items())
    ]
    text = ("would remove " + ", ".join(parts)) if parts else "nothing to remove"
    if statuses:
        text += "; " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    return {
        "text": text,
        "removals": {what: sorted(names) for what, names in removals.items()},
        "statuses": statuses,
    }


def _print_offline(plans: Sequence[PlatformPlan], as_json: bool) -> None:
    from orchestrator.cli.console import out, print_json, safe

    if as_json:
        print_json({"offline": True, "platforms": {p.platform: p.to_dict() for p in plans}})
        return
    for p in plans:
        names = ", ".join(p.hosts[:5]) + (" ..." if len(p.hosts) > 5 else "")
        out.print(
            f"[bold]{p.platform}[/]: {len(p.hosts)} hosts ({safe(names)}); "
            "if every catalog product were found, in this order:"
        )
        for n, step in enumerate(p.steps, 1):
            out.print(f"  {n}. {safe(step.step)}")
            _print_command(step.command)
    out.print("offline plan: nothing was contacted; run kremove plan to see what each host has")
