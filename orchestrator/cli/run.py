"""kremove run: remove in waves, or continue a stored run (--resume), or execute a plan (--plan).

What --resume and --plan take from the ledger is decided in engine/settings.py and
engine/review.py; this module parses, hands over and renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from orchestrator.cli.options import (
    AcceptKeysOpt,
    AllowEncryptedOpt,
    BatchesOpt,
    ForksOpt,
    HostTimeoutOpt,
    JsonOpt,
    LedgerOpt,
    LimitOpt,
    MaxFailOpt,
    OptionalInventoryOpt,
    PasswordEnvOpt,
    PasswordFileOpt,
    PlaybooksOpt,
    TzOpt,
    WindowOpt,
    connection_options,
    log_options,
    vault_options,
)
from orchestrator.errors import InputError

if TYPE_CHECKING:
    from orchestrator.engine.settings import RunSettings
    from orchestrator.engine.steps import Reviewed
    from orchestrator.eventlog import LogTargets
    from orchestrator.inventory.model import Host, Inventory
    from orchestrator.inventory.overrides import ConnectionDefaults
    from orchestrator.ledger import RunDetail

app = typer.Typer(rich_markup_mode=None)

# The options only `run` takes (the shared ones are in options.py).
_YesOpt = typer.Option(
    False, "--yes", "-y", help="Do not ask for confirmation (required without a terminal)."
)
_PauseAfterOpt = typer.Option(
    None, "--pause-after", min=1, help="Stop as 'paused' after this many batches."
)
_ConfirmOpt = typer.Option(
    False, "--confirm", help="Ask before each batch after the first (needs a terminal)."
)
_ResumeOpt = typer.Option(
    None,
    "--resume",
    metavar="RUN_ID",
    help="Continue a halted, paused, window-closed or interrupted run with its settings.",
)
_PlanOpt = typer.Option(
    None,
    "--plan",
    metavar="PLAN_ID",
    help="Execute a reviewed plan: each host gets exactly the planned steps, or is skipped "
    "as drifted when its findings or steps changed.",
)
_AllowDriftOpt = typer.Option(
    False, "--allow-drift", help="With --plan: remove on drifted hosts anyway."
)


@app.command(
    epilog="Example: kremove run -i fleet.yml --batches 1,10%,100% --max-fail 2 --yes; "
    "kremove run --resume RUN_ID --yes"
)
@connection_options
@log_options
@vault_options
def run(
    inventory: list[Path] | None = OptionalInventoryOpt,
    limit: str | None = LimitOpt,
    yes: bool = _YesOpt,
    batches: str | None = BatchesOpt,
    max_fail: str | None = MaxFailOpt,
    pause_after: int | None = _PauseAfterOpt,
    confirm: bool = _ConfirmOpt,
    window: str | None = WindowOpt,
    tz: str | None = TzOpt,
    resume: str | None = _ResumeOpt,
    plan_id: str | None = _PlanOpt,
    allow_drift: bool = _AllowDriftOpt,
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
    """Remove Kaspersky products: detect on each host, remove what was found in catalog order,
    verify it is gone. Every step is recorded in the ledger with the host's pre- and post-state.

    A host where nothing is installed ends 'clean' after detection alone. Exit 0 when every host
    ends clean or removed; 1 otherwise; 3 halted on the failure budget; 4 outside the window.
    """
    from orchestrator.engine.settings import RunSettings

    given = RunSettings(
        inventory=tuple(inventory or ()),
        limit=limit,
        playbooks=tuple(playbooks),
        uninstall_password_env=uninstall_password_env,
        uninstall_password_file=uninstall_password_file,
        batches=batches,
        max_fail=max_fail,
        window=window,
        tz=tz,
        forks=forks,
        host_timeout=host_timeout,
    )
    flags = _Flags(
        resume,
        plan_id,
        yes,
        pause_after,
        confirm,
        allow_drift,
        accept_new_hostkeys,
        ledger,
        as_json,
        connection,
        logs,
        allow_encrypted_data_loss,
    )
    _execute(given, _source(ledger, resume, plan_id), flags)


@dataclass(frozen=True)
class _Flags:
    """What `run` takes besides the settings a stored run keeps."""

    resume: str | None
    plan_id: str | None
    yes: bool
    pause_after: int | None
    confirm: bool
    allow_drift: bool
    accept_new_hostkeys: bool
    ledger: Path | None
    as_json: bool
    connection: ConnectionDefaults | None = None  # -u, -b, -K ... (inventory/overrides.py)
    logs: LogTargets | None = None  # --log-file, --syslog, opened
    allow_encrypted: bool = False  # --allow-encrypted-data-loss (engine/preflight.py)


def _source(ledger: Path | None, resume: str | None, plan_id: str | None) -> RunDetail | None:
    """The stored run --resume continues or --plan executes; None for a new run."""
    if not (resume or plan_id):
        return None
    from orchestrator.cli.session import open_existing
    from orchestrator.engine.settings import refuse_both, source_run

    refuse_both(resume, plan_id)  # said before the ledger is opened
    with open_existing(ledger) as book:
        return source_run(book, resume, plan_id)


def _settings(
    given: RunSettings, source: RunDetail | None, *, resume: bool
) -> tuple[RunSettings, dict[str, Reviewed] | None]:
    """The settings to run with and, for --plan, what was reviewed for each host."""
    from orchestrator.engine import review
    from orchestrator.engine.settings import restore

    if source is None:
        settings, reviewed = given, None
    else:
        settings = restore(given, source, resume=resume)
        reviewed = None if resume else review.reviewed(source)
    if not settings.inventory:  # no -i, nothing stored: ansible.cfg's, as detect and plan read
        from orchestrator.cli.session import configured_inventory

        found = configured_inventory(or_else=" (or continue a run with --resume RUN_ID)")
        settings = replace(settings, inventory=tuple(found))
    return settings, reviewed


def _hosts(
    settings: RunSettings,
    resumed: RunDetail | None,
    reviewed: dict[str, Reviewed] | None,
    connection: ConnectionDefaults | None = None,
) -> tuple[Inventory, list[Host]]:
    """The hosts to run on: a plan's hosts, a resumed run's hosts in its order; its waves
    checked against their number before anything runs."""
    from orchestrator.cli.session import load
    from orchestrator.engine import review
    from orchestrator.engine.settings import resume_order
    from orchestrator.engine.waves import batch_sizes, failure_budget

    inv, hosts = load(settings.inventory, settings.limit, connection)
    if reviewed is not None:
        hosts = review.planned_hosts(hosts, reviewed)
    if resumed is not None:
        hosts = resume_order(hosts, resumed)
    batch_sizes(settings.batches, len(hosts))
    failure_budget(settings.max_fail, len(hosts))
    return inv, hosts


def _execute(given: RunSettings, source: RunDetail | None, flags: _Flags) -> None:
    from orchestrator.cli import session
    from orchestrator.cli.console import print_result
    from orchestrator.engine import preflight, runner
    from orchestrator.engine.waves import Window
    from orchestrator.playbook.loader import load_playbooks

    ledger_path = session.ledger_path(flags.ledger)
    settings, reviewed = _settings(given, source, resume=flags.resume is not None)
    if flags.confirm and not session.can_prompt():
        raise InputError("--confirm needs a terminal to ask on; use --pause-after instead")
    wave = runner.WaveSettings(
        batches=settings.batches,
        max_fail=settings.max_fail,
        pause_after=flags.pause_after,
        window=None if settings.window is None else Window.parse(settings.window, settings.tz),
        confirm=session.confirm_batch if flags.confirm else None,
    )
    inv, hosts = _hosts(settings, source if flags.resume else None, reviewed, flags.connection)
    content = load_playbooks(list(settings.playbooks))
    secrets, connector = session.connect_setup(inv, hosts, ledger_path, flags.accept_new_hostkeys)
    template_secrets = session.uninstall_password(
        secrets,
        settings.uninstall_password_env,
        settings.uninstall_password_file,
        hosts,
        content.catalog,
    )
    session.name_missing_passwords(
        hosts, content.catalog, settings.uninstall_password_env, settings.uninstall_password_file
    )
    session.confirm_changes(len(hosts), flags.yes)
    meta = session.run_meta(hosts, settings)
    if flags.plan_id:
        meta["plan"] = flags.plan_id
    wiring = session.Wiring(
        inv, content, secrets, connector, ledger_path, template_secrets, logs=flags.logs
    )
    with session.recording(wiring, hosts, settings, "remove", lambda: meta) as common:
        names = {h.name for h in hosts}
        warned = _warn_ksc(preflight.latest(common["ledger"].host_outcomes(), names))
        common["allow_encrypted"] = flags.allow_encrypted
        result = runner.run(
            hosts,
            **common,
            wave=wave,
            resume=None if not flags.resume or source is None else source.id,
            reviewed=reviewed,
            allow_drift=flags.allow_drift,
        )
        path = common["ledger"].path
    if not warned:  # no earlier run had seen it: say so once the run found it
        _warn_ksc([(o.host, [f.to_dict() for f in o.findings]) for o in result.outcomes])
    print_result(result, path, flags.as_json)
    raise typer.Exit(session.exit_code(result))


def _warn_ksc(seen: Sequence[tuple[str, Any]]) -> bool:
    """Warn of an Administration Server among the hosts (name, findings): at the start, as the
    ledger last saw them, or after the run when it found one first. True when warned."""
    from orchestrator.cli.console import err, safe
    from orchestrator.engine import preflight

    warning = preflight.ksc_warning(preflight.ksc_servers(seen))
    if warning:
        err.print(f"[yellow]kremove: {safe(warning)}[/]")
    return warning is not None
