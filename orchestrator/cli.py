"""The command line: parse, call the engine, render with rich. No logic that a test would miss."""

from __future__ import annotations

import getpass
import json
import os
import shlex
import socket
import stat
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import (
    Console,
    ConsoleOptions,
    ConsoleRenderable,
    RenderHook,
    RenderResult,
)
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.segment import Segment
from rich.table import Table

import orchestrator
from orchestrator import report, textsafe
from orchestrator.engine import runner
from orchestrator.engine import status as st
from orchestrator.engine.host import Reviewed, finding_key
from orchestrator.engine.outcome import RunResult
from orchestrator.engine.waves import Window, batch_sizes, failure_budget
from orchestrator.errors import InputError, KremoveError
from orchestrator.inventory import load_inventories, select
from orchestrator.inventory.model import Host, Inventory, SecretRef
from orchestrator.ledger import Ledger, audit, resolve_ledger_path
from orchestrator.playbook.loader import builtin_dir, load_playbooks
from orchestrator.playbook.model import Finding
from orchestrator.playbook.quoting import utf16le_hex
from orchestrator.secrets import Secret, SecretStore
from orchestrator.transports import Connector

# emoji=False: text is shown as written (rich would turn ":end:" in "[start:end:step]" into 🔚).
out = Console(highlight=False, soft_wrap=True, emoji=False)  # tables size themselves; no wrapping
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)  # an error is one line


def _safe(value: object) -> str:
    """Text from an inventory, a host or the ledger, for one line of rich markup: every control
    and bidi character spelled out (textsafe), markup escaped."""
    return escape(textsafe.line(value))


def _safe_lines(value: object) -> str:
    """As _safe, for text of several lines (a command): its line feeds stay."""
    return escape(textsafe.lines(value))


class _Spelled:
    """A renderable whose text segments have their control characters spelled out."""

    def __init__(self, inner: ConsoleRenderable) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for segment in console.render(self.inner, options):
            text = segment.text if segment.control else textsafe.lines(segment.text)
            yield segment if text == segment.text else Segment(text, segment.style)


class _SpellControls(RenderHook):
    """The net under _safe: whatever text reaches the terminal, a control character in it is
    shown, not obeyed. Rich's own control segments (the live display's cursor moves) pass."""

    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        return [_Spelled(r) for r in renderables]


out.push_render_hook(_SpellControls())
err.push_render_hook(_SpellControls())


class _State:
    debug = False
    quiet = False
    verbose = False
    sign_key_env: str | None = None


app = typer.Typer(
    name="kremove",
    help="Find and remove Kaspersky products across a fleet; keep a ledger of every host's result.",
    epilog="Example: kremove detect -i inventories/localhost.yml\n\n"
    "Environment: KREMOVE_LEDGER (the ledger's path), KREMOVE_SSH_CONFIG (another ssh config; "
    "Match exec is never run), KREMOVE_SECRETS_DIR (secret files an inventory names must lie "
    "inside it), KREMOVE_SIGN_KEY_ENV (see --sign-key-env).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
inventory_app = typer.Typer(
    help="Validate inventories and show the hosts they select.",
    epilog="Example: kremove inventory check -i inventories/example.ini --limit 'linux:!db*'",
    no_args_is_help=True,
)
runs_app = typer.Typer(
    help="List and show runs recorded in the ledger.",
    epilog="Example: kremove runs list; kremove runs show 20261125T120000",
    no_args_is_help=True,
)
audit_app = typer.Typer(
    help="Check the ledger's integrity.",
    epilog="Example: kremove audit verify; kremove audit verify 20261125T1200 --json",
    no_args_is_help=True,
)
app.add_typer(audit_app, name="audit")
lab_app = typer.Typer(
    help="A REHEARSAL environment: a practice fleet of simulated hosts on this machine.",
    epilog="Example: sudo kremove lab up; "
    "kremove plan -i .kremove/lab/inventory.yml -i .kremove/lab/windows.yml",
    no_args_is_help=True,
)
app.add_typer(lab_app, name="lab")
app.add_typer(inventory_app, name="inventory")
app.add_typer(runs_app, name="runs")

# Options shared by several commands.
InventoryOpt = typer.Option(
    ...,
    "-i",
    "--inventory",
    help="Inventory file (kremove YAML, Ansible INI/YAML or CSV); repeat to merge.",
)
LimitOpt = typer.Option(
    None,
    "-l",
    "--limit",
    help="Hosts to select: names, groups, globs, ~regex, !exclude, &intersect, @file; commas.",
)
JsonOpt = typer.Option(
    False, "--json", help="Print one JSON document on stdout and nothing else there."
)
LedgerOpt = typer.Option(
    None,
    "--ledger",
    help="Ledger database (default: $KREMOVE_LEDGER, else .kremove/ledger.db).",
)


def _version(value: bool) -> None:
    if value:
        out.print(f"kremove {orchestrator.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show a traceback with errors."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Only the summary lines: no progress, no host table."
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Also print each host's result on stderr as it finishes."
    ),
    sign_key_env: str | None = typer.Option(
        None,
        "--sign-key-env",
        envvar="KREMOVE_SIGN_KEY_ENV",
        metavar="VAR",
        help="Environment variable holding the ledger's signing key (HMAC-SHA-256 chain). A "
        "ledger created with a key must always be opened with it.",
    ),
) -> None:
    _State.debug = debug
    _State.quiet = quiet
    _State.verbose = verbose
    _State.sign_key_env = sign_key_env


# ---------------------------------------------------------------------------------------------
# inventory


@inventory_app.command(
    "check",
    epilog="Example: kremove inventory check -i inventories/example.ini --limit 'linux,!db*'",
)
def inventory_check(
    inventory: list[Path] = InventoryOpt,
    limit: str | None = LimitOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Load and validate inventories; list the selected hosts with their settings and vars.

    Exits 2 with one line naming the file, line and host or field when an inventory is wrong.
    """
    inv, hosts = _load(inventory, limit)
    if as_json:
        _print_json(
            {
                "sources": list(inv.sources),
                "hosts": [
                    {"name": h.name, **h.settings(), "groups": list(h.groups)} for h in hosts
                ],
                "groups": {
                    name: {
                        "hosts": list(g.hosts),
                        "children": list(g.children),
                        "vars": dict(g.vars),
                    }
                    for name, g in inv.groups.items()
                },
                "counts": _host_counts(hosts),
            }
        )
        return
    table = Table(
        title=f"{len(hosts)} of {len(inv.hosts)} hosts from {_safe(', '.join(inv.sources))}",
        title_justify="left",
    )
    for column in ("host", "address", "transport", "platform", "user", "become", "groups", "vars"):
        table.add_column(column, overflow="fold")
    for h in hosts:
        become = f"sudo→{h.become.user}" if h.become.enabled else ""
        address = h.address if h.transport == "local" else f"{h.address}:{h.port}"
        table.add_row(
            *map(
                _safe,
                (
                    h.name,
                    address,
                    h.transport,
                    h.platform or "?",
                    h.user or "",
                    become,
                    ",".join(h.groups),
                    _compact_vars(h.vars),
                ),
            )
        )
    out.print(table)
    counts = _host_counts(hosts)
    out.print(
        "  ".join(f"{k}: {v}" for k, v in counts["transport"].items())
        + "  |  "
        + "  ".join(f"{k}: {v}" for k, v in counts["platform"].items())
    )


def _host_counts(hosts: Sequence[Host]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {"transport": {}, "platform": {}}
    for h in hosts:
        counts["transport"][h.transport] = counts["transport"].get(h.transport, 0) + 1
        p = h.platform or "unknown"
        counts["platform"][p] = counts["platform"].get(p, 0) + 1
    return counts


def _compact_vars(variables: Any) -> str:
    return " ".join(
        f"{k}={json.dumps(v) if not isinstance(v, str) else v}"
        for k, v in sorted(dict(variables).items())
    )


# ---------------------------------------------------------------------------------------------
# detect


@app.command(epilog="Example: kremove detect -i inventories/localhost.yml --json")
def detect(
    inventory: list[Path] = InventoryOpt,
    limit: str | None = LimitOpt,
    forks: int = typer.Option(
        runner.DEFAULT_FORKS, "--forks", min=1, max=2000, help="Hosts worked on at once."
    ),
    host_timeout: float = typer.Option(
        runner.DEFAULT_HOST_TIMEOUT,
        "--host-timeout",
        min=1,
        help="Seconds a host may take in all before it ends 'timeout'.",
    ),
    playbooks: list[Path] = typer.Option(
        [], "--playbooks", help="Extra playbooks directory; overrides the built-in ones."
    ),
    accept_new_hostkeys: bool = typer.Option(
        False,
        "--accept-new-hostkeys",
        help="Pin the key of an SSH host seen for the first time (recorded in the ledger); "
        "without it such hosts end 'hostkey_rejected'. A changed key is always rejected.",
    ),
    ledger: Path | None = LedgerOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Read-only scan: which Kaspersky products are on each host. Recorded as a run in the ledger.

    Exit 0 when every host is clean, 1 when a product was found or a host could not be scanned.
    SSH host keys are checked against ~/.ssh/known_hosts, the inventory's known_hosts and the keys
    kremove pinned (known_hosts beside the ledger).
    """
    inv, hosts = _load(inventory, limit)
    content = load_playbooks(playbooks)
    ledger_path = resolve_ledger_path(ledger)
    secrets, connector = _connect_setup(inv, hosts, ledger_path, accept_new_hostkeys)
    with (
        _book(ledger_path) as book,
        _progress(len(hosts), "detect", as_json) as on_event,
    ):
        result = runner.detect(
            hosts,
            playbooks=content,
            ledger=book,
            info=_run_info(inv),
            connector=connector,
            secrets=secrets,
            forks=forks,
            host_timeout=host_timeout,
            on_event=on_event,
            meta=_run_meta(hosts, inventory, limit, playbooks, None, None),
        )
        path = book.path
    _print_result(result, path, as_json)
    raise typer.Exit(
        st.exit_code([o.status for o in result.outcomes], interrupted=result.interrupted)
    )


OptionalInventoryOpt = typer.Option(
    None,
    "-i",
    "--inventory",
    help="Inventory file (kremove YAML, Ansible INI/YAML or CSV); repeat to merge. "
    "Not needed with --resume or --plan (the run or plan remembers its own).",
)
ForksOpt = typer.Option(
    runner.DEFAULT_FORKS, "--forks", min=1, max=2000, help="Hosts worked on at once."
)
HostTimeoutOpt = typer.Option(
    runner.DEFAULT_HOST_TIMEOUT,
    "--host-timeout",
    min=1,
    help="Seconds a host may take in all (detect, remove, verify) before it ends 'timeout'.",
)
PasswordEnvOpt = typer.Option(
    None,
    "--uninstall-password-env",
    metavar="VAR",
    help="Environment variable holding the products' uninstall (protection) password: "
    "KES KLPASSWD, Network Agent KLUNINSTPASSWD.",
)
PasswordFileOpt = typer.Option(
    None, "--uninstall-password-file", help="File holding the uninstall password."
)
PlaybooksOpt = typer.Option(
    [], "--playbooks", help="Extra playbooks directory; overrides the built-in ones."
)
AcceptKeysOpt = typer.Option(
    False,
    "--accept-new-hostkeys",
    help="Pin the key of an SSH host seen for the first time (recorded in the ledger).",
)


@app.command(
    "plan",
    epilog="Example: kremove plan -i fleet.yml --limit canary   then   kremove run --plan PLAN_ID",
)
def plan_command(
    inventory: list[Path] = InventoryOpt,
    limit: str | None = LimitOpt,
    offline: bool = typer.Option(
        False,
        "--offline",
        help="Do not connect: show the steps every catalog product would get on each platform "
        "(for a change board).",
    ),
    forks: int = ForksOpt,
    host_timeout: float = HostTimeoutOpt,
    uninstall_password_env: str | None = PasswordEnvOpt,
    uninstall_password_file: Path | None = PasswordFileOpt,
    playbooks: list[Path] = PlaybooksOpt,
    accept_new_hostkeys: bool = AcceptKeysOpt,
    ledger: Path | None = LedgerOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The dry run: connect, run only read-only steps, and show per host what was found, the exact
    commands the removal would send in order (secrets masked) and the status to expect.

    The plan is saved in the ledger; `kremove run --plan PLAN_ID` executes exactly these steps.
    """
    inv, hosts = _load(inventory, limit)
    content = load_playbooks(playbooks)
    if offline:
        _print_offline_plan(hosts, content, as_json)
        return
    ledger_path = resolve_ledger_path(ledger)
    secrets, connector = _connect_setup(inv, hosts, ledger_path, accept_new_hostkeys)
    template_secrets = _uninstall_password(secrets, uninstall_password_env, uninstall_password_file)
    meta = _run_meta(
        hosts, inventory, limit, playbooks, uninstall_password_env, uninstall_password_file
    )
    with (
        _book(ledger_path) as book,
        _progress(len(hosts), "plan", as_json) as on_event,
    ):
        result = runner.plan(
            hosts,
            playbooks=content,
            ledger=book,
            info=_run_info(inv),
            connector=connector,
            secrets=secrets,
            template_secrets=template_secrets,
            forks=forks,
            host_timeout=host_timeout,
            on_event=on_event,
            meta=meta,
        )
        record = book.get_run(result.run_id)
        path = book.path
    _print_plan(result, record, path, as_json)
    raise typer.Exit(_exit_code(result))


@app.command(
    epilog="Example: kremove run -i fleet.yml --batches 1,10%,100% --max-fail 2 --yes; "
    "kremove run --resume RUN_ID --yes"
)
def run(
    inventory: list[Path] | None = OptionalInventoryOpt,
    limit: str | None = LimitOpt,
    yes: bool = typer.Option(
        False, "--yes", "-y", help="Do not ask for confirmation (required without a terminal)."
    ),
    batches: str | None = typer.Option(
        None,
        "--batches",
        help="Wave sizes, counts or percentages of the selected hosts, the last repeating: "
        "1,5,10%,100% (a canary, then growing batches).",
    ),
    max_fail: str | None = typer.Option(
        None,
        "--max-fail",
        help="Failure budget over the whole run (3 or 5%): failed, unreachable, auth_failed, "
        "hostkey_rejected and timeout all count. Past it no new host starts; exit 3.",
    ),
    pause_after: int | None = typer.Option(
        None, "--pause-after", min=1, help="Stop as 'paused' after this many batches."
    ),
    confirm: bool = typer.Option(
        False, "--confirm", help="Ask before each batch after the first (needs a terminal)."
    ),
    window: str | None = typer.Option(
        None,
        "--window",
        help="Change window, HH:MM-HH:MM (may pass midnight). Outside it nothing starts (exit "
        "4); when it closes no new host starts and the run can be resumed.",
    ),
    tz: str | None = typer.Option(
        None, "--tz", help="Time zone of --window, e.g. Europe/Paris (default: local time)."
    ),
    resume: str | None = typer.Option(
        None,
        "--resume",
        metavar="RUN_ID",
        help="Continue a halted, paused, window-closed or interrupted run with its settings.",
    ),
    plan_id: str | None = typer.Option(
        None,
        "--plan",
        metavar="PLAN_ID",
        help="Execute a reviewed plan: each host gets exactly the planned steps, or is skipped "
        "as drifted when its findings or steps changed.",
    ),
    allow_drift: bool = typer.Option(
        False, "--allow-drift", help="With --plan: remove on drifted hosts anyway."
    ),
    forks: int = ForksOpt,
    host_timeout: float = HostTimeoutOpt,
    uninstall_password_env: str | None = PasswordEnvOpt,
    uninstall_password_file: Path | None = PasswordFileOpt,
    playbooks: list[Path] = PlaybooksOpt,
    accept_new_hostkeys: bool = AcceptKeysOpt,
    ledger: Path | None = LedgerOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Remove Kaspersky products: detect on each host, remove what was found in catalog order,
    verify it is gone. Every step is recorded in the ledger with the host's pre- and post-state.

    A host where nothing is installed ends 'clean' after detection alone. Exit 0 when every host
    ends clean or removed; 1 otherwise; 3 halted on the failure budget; 4 outside the window.
    """
    ledger_path = resolve_ledger_path(ledger)
    reviewed = None
    if resume or plan_id:
        if resume and plan_id:
            raise InputError("--resume and --plan cannot be combined")
        with _open_existing(ledger) as book:
            source = book.get_run(resume or plan_id or "")
        if resume and source.status not in ("halted", "paused", "interrupted", "running"):
            raise InputError(
                f"run {source.id} is {source.status}; only a halted, paused or interrupted run "
                "can be resumed"
            )
        if plan_id and source.kind != "plan":
            raise InputError(f"run {source.id} is a {source.kind} run, not a plan")
        stored = source.meta
        inventory = inventory or [Path(p) for p in stored.get("inventory", [])]
        limit = limit if limit is not None else stored.get("limit")
        playbooks = playbooks or [Path(p) for p in stored.get("playbooks", [])]
        uninstall_password_env = uninstall_password_env or stored.get("uninstall_password_env")
        if uninstall_password_file is None and stored.get("uninstall_password_file"):
            uninstall_password_file = Path(stored["uninstall_password_file"])
        if resume:
            batches = batches or stored.get("batches")
            max_fail = max_fail or stored.get("max_fail")
            window = window or stored.get("window")
            tz = tz or (stored.get("tz") if stored.get("tz") != "local time" else None)
            forks = stored.get("forks", forks)
            host_timeout = stored.get("host_timeout", host_timeout)
        else:
            reviewed = _reviewed(source)
        if not inventory:
            raise InputError(f"run {source.id} does not record its inventory; give it with -i")
    if not inventory:
        raise InputError("give an inventory with -i (or continue a run with --resume RUN_ID)")
    if confirm and not _can_prompt():
        raise InputError("--confirm needs a terminal to ask on; use --pause-after instead")
    wave = runner.WaveSettings(
        batches=batches,
        max_fail=max_fail,
        pause_after=pause_after,
        window=None if window is None else Window.parse(window, tz),
        confirm=_confirm_batch if confirm else None,
    )
    inv, hosts = _load(inventory, limit)
    if reviewed is not None:
        hosts = [h for h in hosts if h.name in reviewed] or hosts
    if resume:
        with _open_existing(ledger) as book:
            selected = [h.host for h in book.get_run(resume).hosts]
        missing = sorted(set(selected) - {h.name for h in hosts})
        if missing:
            raise InputError(
                f"run {resume}: hosts {', '.join(missing[:5])} are no longer in the inventory"
            )
        order = {name: i for i, name in enumerate(selected)}
        hosts = sorted((h for h in hosts if h.name in order), key=lambda h: order[h.name])
    batch_sizes(batches, len(hosts))  # a bad --batches is an input error before anything runs
    failure_budget(max_fail, len(hosts))
    content = load_playbooks(playbooks)
    secrets, connector = _connect_setup(inv, hosts, ledger_path, accept_new_hostkeys)
    template_secrets = _uninstall_password(secrets, uninstall_password_env, uninstall_password_file)
    _confirm_changes(len(hosts), yes)
    meta = _run_meta(
        hosts, inventory, limit, playbooks, uninstall_password_env, uninstall_password_file
    )
    if plan_id:
        meta["plan"] = plan_id
    with (
        _book(ledger_path) as book,
        _progress(len(hosts), "remove", as_json) as on_event,
    ):
        result = runner.run(
            hosts,
            playbooks=content,
            ledger=book,
            info=_run_info(inv),
            connector=connector,
            secrets=secrets,
            template_secrets=template_secrets,
            forks=forks,
            host_timeout=host_timeout,
            on_event=on_event,
            wave=wave,
            meta=meta,
            resume=None if not resume else book.get_run(resume).id,
            reviewed=reviewed,
            allow_drift=allow_drift,
        )
        path = book.path
    _print_result(result, path, as_json)
    raise typer.Exit(_exit_code(result))


def _print_plan(result: RunResult, record: Any, ledger_path: Path, as_json: bool) -> None:
    hosts = record.hosts
    summary = _plan_summary(hosts)
    if _State.quiet and not as_json:
        out.print(_safe(summary["text"]))
        out.print(f"plan {result.run_id}: kremove run --plan {result.run_id}")
        return
    if as_json:
        _print_json(
            {
                "plan": result.run_id,
                "counts": result.counts,
                "summary": summary,
                "hosts": [
                    {
                        "host": h.host,
                        "status": h.status,
                        "reason": h.reason,
                        "findings": h.findings,
                        "steps": h.plan or [],
                    }
                    for h in hosts
                ],
            }
        )
        return
    for h in hosts:
        out.print(
            f"[bold]{_safe(h.host)}[/]  {_styled(h.status or 'pending')}  {_safe(h.reason or '')}"
        )
        for f in h.findings:
            if f.get("kind") == "installed":
                out.print(f"  found  {_safe(_finding_label(f))}")
        for n, step in enumerate(h.plan or [], 1):
            flags = "read-only" if step["readonly"] else "CHANGES"
            become = ", sudo" if step.get("become") else ""
            out.print(f"  {n}. {_safe(step['step'])}  ({flags}{become})")
            for line in str(step["command"]).splitlines():
                out.print(f"       {_safe(line)}")
    out.print(_safe(summary["text"]))
    out.print(
        f"plan [bold]{result.run_id}[/] saved in {ledger_path}; execute exactly these steps with: "
        f"kremove run --plan {result.run_id}"
    )


def _plan_summary(hosts: Sequence[Any]) -> dict[str, Any]:
    removals: dict[str, set[str]] = {}
    for h in hosts:
        if h.status != st.PLANNED:
            continue
        for f in h.findings:
            if f.get("kind") == "installed":
                removals.setdefault(_finding_label(f), set()).add(h.host)
    statuses: dict[str, int] = {}
    for h in hosts:
        if h.status != st.PLANNED:
            statuses[h.status or "pending"] = statuses.get(h.status or "pending", 0) + 1
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


def _print_offline_plan(hosts: Sequence[Host], content: Any, as_json: bool) -> None:
    """What each catalog product would get on each platform, without connecting anywhere."""
    from orchestrator.engine.detect import host_platform, template_context
    from orchestrator.engine.host import plan_steps

    catalog = content.catalog
    by_platform: dict[str, list[Host]] = {}
    for h in hosts:
        by_platform.setdefault(host_platform(h), []).append(h)
    doc: dict[str, Any] = {}
    for platform, members in sorted(by_platform.items()):
        playbook = content.playbook_for(platform, "remove")
        products = [p for p in catalog.ordered() if p.on(platform)]
        findings = [f for p in products for f in _assumed_findings(p, platform)]
        steps = []
        if playbook is not None and findings:
            context = template_context(members[0], content)
            prepared = plan_steps(playbook.steps, products, findings, context, content)
            steps = [
                {"step": p.ledger_id, "readonly": p.step.readonly, "command": p.command.shown}
                for p in prepared
            ]
        doc[platform] = {"hosts": [h.name for h in members], "steps": steps}
    if as_json:
        _print_json({"offline": True, "platforms": doc})
        return
    for platform, entry in doc.items():
        names = ", ".join(entry["hosts"][:5]) + (" ..." if len(entry["hosts"]) > 5 else "")
        out.print(
            f"[bold]{platform}[/]: {len(entry['hosts'])} hosts ({_safe(names)}); "
            "if every catalog product were found, in this order:"
        )
        for n, step in enumerate(entry["steps"], 1):
            out.print(f"  {n}. {_safe(step['step'])}")
            for line in str(step["command"]).splitlines():
                out.print(f"       {_safe(line)}")
    out.print("offline plan: nothing was contacted; run kremove plan to see what each host has")


def _assumed_findings(product: Any, platform: str) -> list[Finding]:
    entry = product.on(platform)
    version = "<found version>"
    if platform == "linux":
        return [
            Finding(
                product.id, product.name, version, "installed", {"manager": "dpkg", "package": p}
            )
            for p in entry.get("packages", ())[:1]
        ]
    if platform == "windows":
        codes = entry.get("product_codes", ()) or ("{PRODUCT-CODE-FOUND-ON-THE-HOST}",)
        return [Finding(product.id, product.name, version, "installed", {"product_code": codes[0]})]
    return [Finding(product.id, product.name, version, "installed", {})]


def _insecure(hosts: Sequence[Host]) -> list[str]:
    """WinRM hosts whose certificates are not checked: said out loud, and kept with the run."""
    names = [h.name for h in hosts if h.transport == "winrm" and not h.winrm.cert_validation]
    if names:
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        err.print(
            f"[yellow]kremove: certificate validation is OFF (inventory cert_validation: false) "
            f"for {len(names)} WinRM host{'s' if len(names) != 1 else ''}: {_safe(shown)}[/]"
        )
    return names


def _plain_http(hosts: Sequence[Host]) -> list[str]:
    """WinRM hosts over plain HTTP whose login does not prove the host (all but Kerberos): NTLM
    seals the messages, but nothing shows the answer comes from the host meant. Said out loud,
    and kept with the run, as unchecked certificates are."""
    chosen = [
        h
        for h in hosts
        if h.transport == "winrm" and h.winrm.scheme == "http" and h.winrm.auth != "kerberos"
    ]
    names = [h.name for h in chosen]
    if names:
        auths = "/".join(sorted({h.winrm.auth.upper() for h in chosen}))
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        err.print(
            f"[yellow]kremove: WinRM over plain HTTP with {auths} for {len(names)} "
            f"host{'s' if len(names) != 1 else ''}: {_safe(shown)} (messages are encrypted, but "
            "no certificate proves the host is the one meant; use https)[/]"
        )
    return names


def _old_expat(hosts: Sequence[Host]) -> None:
    """Before talking WinRM: say so when this Python's XML parser predates CVE-2024-8176's fix."""
    if any(h.transport == "winrm" for h in hosts):
        from orchestrator.transports.winrm_guard import expat_warning

        warning = expat_warning()
        if warning:
            err.print(f"[yellow]{_safe(warning)}[/]")


def _exit_code(result: RunResult) -> int:
    if result.stop == "halted":
        return st.EXIT_HALTED
    if result.stop == "window":
        return st.EXIT_WINDOW
    return st.exit_code([o.status for o in result.outcomes], interrupted=result.interrupted)


def _run_meta(
    hosts: Sequence[Host],
    inventory: Sequence[Path],
    limit: str | None,
    playbooks: Sequence[Path],
    password_env: str | None,
    password_file: Path | None,
) -> dict[str, Any]:
    """What a run keeps about itself: how to select the same hosts again for --resume and --plan
    (no secret values), each host's groups for reports, where certificates go unchecked and where
    WinRM goes over plain HTTP."""
    _old_expat(hosts)
    return {
        "inventory": [str(p.resolve()) for p in inventory],
        "limit": limit,
        "playbooks": [str(p.resolve()) for p in playbooks],
        "uninstall_password_env": password_env,
        "uninstall_password_file": None if password_file is None else str(password_file),
        "groups": {h.name: list(h.groups) for h in hosts},
        "tls_validation_off": _insecure(hosts),
        "plain_http": _plain_http(hosts),
    }


def _reviewed(plan: Any) -> dict[str, Reviewed]:
    out = {}
    for h in plan.hosts:
        findings = tuple(finding_key(f) for f in h.findings if f.get("kind") == "installed")
        steps = tuple(s["command"] for s in (h.plan or []))
        out[h.host] = Reviewed(h.status or "pending", findings, steps)
    return out


def _confirm_batch(done: int, total: int) -> bool:
    return typer.confirm(f"{done} of {total} batches done. Start the next batch?", err=True)


def _uninstall_password(
    secrets: SecretStore, env: str | None, file: Path | None
) -> dict[str, Secret]:
    if env and file:
        raise InputError("give the uninstall password once: --uninstall-password-env or -file")
    if not env and not file:
        return {}
    ref = SecretRef(env=env) if env else SecretRef(file=str(file))
    secret = secrets.get(ref, "uninstall password", kind="uninstall password")
    secrets.redactor.add(secret.derive(utf16le_hex))  # as Network Agent receives it
    return {"uninstall_password": secret}


def _confirm_changes(count: int, yes: bool) -> None:
    if yes:
        return
    if not _can_prompt():
        raise InputError(
            "kremove run changes hosts and there is no terminal to confirm it on; review with "
            "kremove detect first, then pass --yes"
        )
    question = f"Remove Kaspersky products from {count} host{'s' if count != 1 else ''}?"
    if not typer.confirm(question, default=False, err=True):
        raise InputError("not confirmed; nothing was changed")


def _connect_setup(
    inv: Inventory, hosts: Sequence[Host], ledger_path: Path, accept_new_hostkeys: bool
) -> tuple[SecretStore, Connector]:
    """Fetch every secret and check every key and route now, before a run is recorded.

    paramiko and pywinrm take ~0.3 s to import: only runs with SSH or WinRM hosts pay for them."""
    secrets = SecretStore(prompt=_prompt if _can_prompt() else None)
    winrm = None
    if any(h.transport == "winrm" for h in hosts):
        from orchestrator.transports.winrm import WinrmRun

        winrm = WinrmRun(secrets=secrets)
        winrm.preflight(hosts)  # e.g. Basic over plain HTTP: refused before any secret is read
    secrets.preload(hosts)
    ssh = None
    if any(h.transport == "ssh" for h in hosts):
        from orchestrator.transports.hostkeys import KnownHosts
        from orchestrator.transports.ssh import SshRun
        from orchestrator.transports.sshconfig import SshConfig

        ssh = SshRun(
            secrets=secrets,
            known_hosts=KnownHosts.default(ledger_path.parent / "known_hosts"),
            inventory=inv.hosts,
            config=SshConfig.default(),
            accept_new_hostkeys=accept_new_hostkeys,
        )
        ssh.preflight(hosts)
        for host in hosts:  # jump hosts' own secrets, when they are not selected themselves
            for hop in ssh.route(host).hops:
                secrets.preload([hop.host])
    return secrets, Connector(ssh, winrm)


def _can_prompt() -> bool:
    return sys.stdin.isatty() and not os.environ.get("CI")


def _prompt(label: str) -> str:
    return getpass.getpass(f"kremove: {label}", stream=sys.stderr)


def _run_info(inv: Inventory) -> runner.RunInfo:
    return runner.RunInfo(
        operator=f"{getpass.getuser()}@{socket.gethostname()}",
        command_line=shlex.join(["kremove", *sys.argv[1:]]),
        inventory_digest=inv.digest(),
    )


_STATUS_STYLE = {
    st.CLEAN: "green",
    st.REMOVED: "green",
    st.RESTORED: "green",
    st.PLANNED: "cyan",
    st.FOUND: "yellow",
    st.REBOOT_PENDING: "yellow",
    st.SKIPPED: "dim",
}


def _styled(status: str) -> str:
    return f"[{_STATUS_STYLE.get(status, 'red')}]{status}[/]"


def _found_label(findings: Sequence[Finding]) -> str:
    """Installed products first; leftover directories only counted, unless they are all there is."""
    installed = [f.label() for f in findings if f.kind == "installed"]
    residue = [f.label() for f in findings if f.kind != "installed"]
    if not installed:
        return ", ".join(residue)
    more = f" (+{len(residue)} residue)" if residue else ""
    return ", ".join(installed) + more


def _print_result(result: RunResult, ledger_path: Path, as_json: bool) -> None:
    if as_json:
        _print_json(
            {
                "run": result.run_id,
                "kind": result.kind,
                "interrupted": result.interrupted,
                "counts": result.counts,
                "hosts": [o.to_dict() for o in result.outcomes],
            }
        )
        return
    if _State.quiet:
        summary = ", ".join(f"{n} {s}" for s, n in sorted(result.counts.items()))
        out.print(f"run {result.run_id}: {len(result.outcomes)} hosts: {summary}")
        return
    table = Table()
    for column in ("host", "status", "found", "reason"):
        table.add_column(column, overflow="fold")
    for o in result.outcomes:
        found = _found_label(o.findings)
        table.add_row(_safe(o.host), _styled(o.status), _safe(found), _safe(o.reason or ""))
    out.print(table)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(result.counts.items()))
    n = len(result.outcomes)
    out.print(f"{n} host{'s' if n != 1 else ''}: {summary}")
    out.print(f"run [bold]{result.run_id}[/] recorded in {ledger_path}")


@contextmanager
def _progress(total: int, what: str, quiet: bool) -> Iterator[Callable[[runner.Event], None]]:
    """A live display on stderr when it is a terminal: done, in flight, not clean, rate, ETA.

    Interruptions are announced either way, because the operator must know what Ctrl-C did.
    """
    counts = {"in_flight": 0, "found": 0, "failed": 0}
    budget: dict[str, int | None] = {"total": None}

    def announce(event: runner.Event) -> None:
        if _State.verbose and isinstance(event, runner.HostDone):
            o = event.outcome
            reason = f": {o.reason}" if o.reason else ""
            err.print(f"kremove: {_safe(o.host)} {_styled(o.status)}{_safe(reason)}")
        if isinstance(event, runner.BatchStarted) and event.count > 1:
            left = "" if event.budget is None else f", failure budget left {event.budget_left}"
            err.print(f"kremove: batch {event.index} of {event.count}: {event.size} hosts{left}")
        if isinstance(event, runner.Stopping):
            err.print(
                f"[yellow]kremove: stopping: no new host starts; {event.in_flight} in flight "
                "finish within their deadlines (Ctrl-C again to abandon them)[/]"
            )

    if not err.is_terminal or _State.quiet:
        yield announce
        return
    with Progress(
        TextColumn(f"[bold]{what}[/]" + "{task.fields[batch]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "done  {task.fields[in_flight]} in flight  {task.fields[found]} found  "
            "[red]{task.fields[failed]} failed[/]"
        ),
        TextColumn("{task.fields[budget]}{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(
            what, total=total, in_flight=0, found=0, failed=0, rate="", batch="", budget=""
        )
        started = time.monotonic()

        def on_event(event: runner.Event) -> None:
            if isinstance(event, runner.HostStarted):
                counts["in_flight"] += 1
                progress.update(task, in_flight=counts["in_flight"])
            elif isinstance(event, runner.HostDone):
                counts["in_flight"] -= 1
                counts["failed"] += event.outcome.status in st.FAILURES
                if budget["total"] is not None:
                    left = max(budget["total"] - counts["failed"], 0)
                    progress.update(task, budget=f"budget left {left}  ")
                counts["found"] += event.outcome.status == st.FOUND
                done = progress.tasks[0].completed + 1
                rate = done / max(time.monotonic() - started, 1e-6)
                progress.update(
                    task,
                    advance=1,
                    in_flight=counts["in_flight"],
                    found=counts["found"],
                    failed=counts["failed"],
                    rate=f"{rate:.1f} hosts/s",
                )
                announce(event)
            elif isinstance(event, runner.BatchStarted):
                budget["total"] = event.budget
                shown = "" if event.budget_left is None else f"budget left {event.budget_left}  "
                progress.update(task, batch=f" batch {event.index}/{event.count}", budget=shown)
                announce(event)
            else:
                announce(event)

        yield on_event


# ---------------------------------------------------------------------------------------------
# runs


@runs_app.command("list", epilog="Example: kremove runs list --last 5")
def runs_list(
    last: int = typer.Option(
        20, "--last", "-n", min=1, help="How many of the newest runs to list."
    ),
    ledger: Path | None = LedgerOpt,
    as_json: bool = JsonOpt,
) -> None:
    """List the newest runs in the ledger with their host counts."""
    with _open_existing(ledger) as book:
        runs = book.list_runs(last)
        path = book.path
    if as_json:
        _print_json({"ledger": str(path), "runs": [r.to_dict() for r in runs]})
        return
    if not runs:
        out.print(f"no runs in {path} yet; start with: kremove detect -i inventories/localhost.yml")
        return
    # A run id begins with its start time (UTC), so it doubles as the "started" column.
    table = Table(title=f"runs in {path}", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("run (UTC start)", "kind", "status"):
        table.add_column(column, no_wrap=True)
    for column in ("operator", "hosts", "results"):
        table.add_column(column, overflow="fold")
    for r in runs:
        results = ", ".join(f"{n} {s}" for s, n in sorted(r.counts.items()))
        table.add_row(r.id, r.kind, r.status, _safe(r.operator), str(r.hosts_selected), results)
    out.print(table)


@runs_app.command(
    "show", epilog="Example: kremove runs show 20261125T1200 --json   (a unique prefix is enough)"
)
def runs_show(
    run_id: str = typer.Argument(..., help="Run id, or a unique prefix of one."),
    ledger: Path | None = LedgerOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show one run: who ran it, each host's result, every step with its command and exit code."""
    with _open_existing(ledger) as book:
        run = book.get_run(run_id)
    if as_json:
        _print_json(run.to_dict())
        return
    out.print(f"[bold]run {run.id}[/]  {run.kind}  {run.status}")
    out.print(f"started {run.started}  finished {run.finished or '-'}  by {_safe(run.operator)}")
    out.print(f"command {_safe(run.command_line)}")
    out.print(f"inventory sha256 {run.inventory_digest}  playbooks {run.playbook_version}")
    hosts = Table()
    for column in ("host", "status", "findings", "reason"):
        hosts.add_column(column, overflow="fold")
    for h in run.hosts:
        findings = ", ".join(_finding_label(f) for f in h.findings)
        hosts.add_row(
            _safe(h.host), _styled(h.status or "pending"), _safe(findings), _safe(h.reason or "")
        )
    out.print(hosts)
    steps = Table(title="steps", title_justify="left")
    for column in ("host", "step", "command", "exit", "started"):
        steps.add_column(column, overflow="fold")
    for s in run.steps:
        code = "timeout" if s.timed_out else ("running" if s.finished is None else str(s.exit_code))
        steps.add_row(
            _safe(s.host),
            _safe(f"{s.step_id} ({s.kind})"),
            _safe_lines(s.command),
            code,
            s.started[11:23],
        )
    out.print(steps)
    for e in run.events:
        detail = "  ".join(f"{k}={v}" for k, v in e.detail.items())
        out.print(f"event {e.at}  {_safe(e.host or '-')}  {e.kind}  {_safe(detail)}")


@audit_app.command(
    "verify",
    epilog="Example: kremove audit verify --expect-head 3f2a...  (the head hash you wrote down)",
)
def audit_verify(
    run_id: str | None = typer.Argument(
        None, help="Check one run's records (the chain is global)."
    ),
    sign_key_env: str | None = typer.Option(
        None, "--sign-key-env", metavar="VAR", help="Environment variable holding the signing key."
    ),
    expect_head: str | None = typer.Option(
        None,
        "--expect-head",
        help="The head hash recorded earlier: proves the newest records were not cut off.",
    ),
    ledger: Path | None = LedgerOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Recompute the ledger's hash chain and check every run, host, step and event against it.

    Exit 0 and print the head hash when nothing was edited, deleted or reordered; exit 1 naming
    the first record that was.
    """
    path = resolve_ledger_path(ledger)
    if run_id:
        with _open_existing(ledger, sign_key_env) as book:
            run_id = book.get_run(run_id).id
    verdict = audit.verify(path, _sign_key(sign_key_env or _State.sign_key_env), run_id)
    problem = verdict.problem
    if problem is None and expect_head and not verdict.head.startswith(expect_head.lower()):
        problem = (
            f"the head hash is {verdict.head}, not {expect_head}: records were added or the "
            "newest were cut off since it was noted"
        )
    if as_json:
        _print_json(
            {
                "ledger": str(path),
                "ok": problem is None,
                "entries": verdict.entries,
                "head": verdict.head,
                "signed": verdict.signed,
                "problem": problem,
            }
        )
    elif problem is None:
        signed = " (signed)" if verdict.signed else ""
        out.print(f"ledger {path}: {verdict.entries} records verified{signed}; head {verdict.head}")
    else:
        err.print(f"[red]kremove: audit: {_safe(problem)}[/]")
    raise typer.Exit(0 if problem is None else 1)


@app.command(
    "report",
    epilog="Example: kremove report 20261125T2200 --format html -o wave.html; "
    "kremove report --fleet --format csv",
)
def report_command(
    run_id: str | None = typer.Argument(None, help="Run id or unique prefix (or --fleet)."),
    fleet: bool = typer.Option(
        False, "--fleet", help="Latest known status of every host across all runs."
    ),
    fmt: str = typer.Option(
        "table", "--format", "-f", help="table, csv, json or html (one self-contained file)."
    ),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write here, not stdout."),
    ledger: Path | None = LedgerOpt,
) -> None:
    """Report a run, or the fleet, from the ledger: statuses, products and versions, failures with
    reasons, batches, and the BOD 17-01 view (identified, planned, removed, remaining, failed,
    exceptions). CSV and JSON schemas: docs/reports.md.
    """
    if fmt not in ("table", "csv", "json", "html"):
        raise InputError(f"--format: {fmt!r} is not one of table, csv, json, html")
    if fleet == bool(run_id):
        raise InputError("give a run id, or --fleet for every host's latest status")
    with _open_existing(ledger) as book:
        doc = (
            report.fleet_report(book.host_outcomes())
            if fleet
            else report.run_report(book.get_run(run_id or ""))
        )
    if fmt == "json":
        text = json.dumps(doc, indent=2, default=str) + "\n"
    elif fmt == "csv":
        text = report.to_csv(doc)
    elif fmt == "html":
        from orchestrator.report import html as report_html

        text = report_html.render(doc)
    else:
        text = ""
    if fmt == "table":
        _print_report_table(doc)
        return
    if output is None:
        sys.stdout.write(text)
        return
    _write_private(output, f"-o {output}", text)
    err.print(f"report written to {output}")


def _print_report_table(doc: dict[str, Any]) -> None:
    title = f"run {doc['run']['id']}" if doc["scope"] == "run" else "fleet (latest per host)"
    table = Table(title=title, title_justify="left")
    for column in ("host", "status", "found", "remaining", "reason"):
        table.add_column(column, overflow="fold")
    for h in doc["hosts"]:
        table.add_row(
            _safe(h["host"]),
            _styled(h["status"]),
            _safe(", ".join(f["label"] for f in h["found"])),
            _safe(", ".join(f["label"] for f in h["remaining"])),
            _safe(h["reason"] or ""),
        )
    out.print(table)
    d = doc["directive"]
    out.print(
        f"BOD 17-01: identified {d['identified']}, planned {d['planned']}, removed "
        f"{d['removed']}, remaining {d['remaining']}, failed {d['failed']}, "
        f"exceptions {d['exceptions']}"
    )


@runs_app.command("export", epilog="Example: kremove runs export 20261125T2200 > run.jsonl")
def runs_export(
    run_id: str = typer.Argument(..., help="Run id, or a unique prefix of one."),
    ledger: Path | None = LedgerOpt,
) -> None:
    """Write a run as JSON Lines: the run, then each host, step and event, one object per line."""
    with _open_existing(ledger) as book:
        run = book.get_run(run_id)
    doc = run.to_dict()
    lines = [
        {"type": "run", **{k: v for k, v in doc.items() if k not in ("hosts", "steps", "events")}}
    ]
    lines += [{"type": "host", "run": run.id, **h} for h in doc["hosts"]]
    lines += [{"type": "step", "run": run.id, **st_} for st_ in doc["steps"]]
    lines += [{"type": "event", "run": run.id, **e} for e in doc["events"]]
    for line in lines:
        sys.stdout.write(json.dumps(line, default=str) + "\n")


@runs_app.command(
    "prune",
    epilog="Example: kremove runs prune --before 2026-01-01 --archive ledger-2025.jsonl",
)
def runs_prune(
    before: str = typer.Option(
        ..., "--before", help="Prune runs started before this date (YYYY-MM-DD) or run id."
    ),
    archive: Path = typer.Option(
        ..., "--archive", help="JSON Lines file the runs are appended to first."
    ),
    ledger: Path | None = LedgerOpt,
) -> None:
    """Archive old finished runs to JSON Lines, then delete them from the ledger. The hash chain
    keeps an entry for each (with the archive's digest), so audit verify still passes."""
    import hashlib

    with _open_existing(ledger) as book:
        runs = [r for r in book.list_runs(10**9) if r.started < before or r.id < before]
        runs = [r for r in runs if r.status != "running"]
        if not runs:
            out.print(f"no finished run started before {before}")
            return
        for summary in reversed(runs):
            detail = book.get_run(summary.id).to_dict()
            lines = [json.dumps({"type": "run", **detail}, default=str) + "\n"]
            digest = hashlib.sha256("".join(lines).encode()).hexdigest()
            _write_private(archive, f"--archive {archive}", "".join(lines), append=True)
            book.prune_run(summary.id, digest)
    out.print(f"{len(runs)} runs archived to {archive} and pruned; audit verify still passes")


@audit_app.command("host", epilog="Example: kremove audit host web01.example.org --json")
def audit_host(
    name: str = typer.Argument(..., help="The host's inventory name."),
    ledger: Path | None = LedgerOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Every run that touched a host: its findings, each step with its rendered command (secrets
    masked), exit code and output excerpt, and the outcome."""
    with _open_existing(ledger) as book:
        outcomes = book.host_outcomes(name)
        history = []
        for o in outcomes:
            run = book.get_run(o["run"])
            steps = [s.to_dict() for s in run.steps if s.host == name]
            history.append({**o, "steps": steps})
    if not history:
        raise InputError(f"no run in the ledger has an outcome for host {name!r}")
    if as_json:
        _print_json({"host": name, "runs": history})
        return
    for h in history:
        out.print(
            f"[bold]{h['run']}[/] {h['kind']}  {_styled(h['status'])}  {_safe(h['reason'] or '')}"
        )
        for f in h["findings"]:
            if f.get("kind") == "installed":
                out.print(f"  found  {_safe(_finding_label(f))}")
        for s in h["steps"]:
            code = "timeout" if s["timed_out"] else str(s["exit_code"])
            out.print(f"  {_safe(s['step_id'])}  exit {code}  {s['started']}")
            for line in str(s["command"]).splitlines()[:6]:
                out.print(f"      $ {_safe(line)}")
            excerpt = (s["stderr"] or s["stdout"] or "").strip().splitlines()[-3:]
            for line in excerpt:
                out.print(f"      > {_safe(line[:200])}")


@app.command(
    "rollback",
    epilog="Example: kremove rollback 20261125T2200 --source /mnt/kaspersky-packages   (a dry "
    "run: the reverse plan); add --yes to execute it as a recorded wave",
)
def rollback_command(
    run_id: str = typer.Argument(..., help="The run whose removals to undo (id or prefix)."),
    inventory: list[Path] | None = OptionalInventoryOpt,
    limit: str | None = LimitOpt,
    source: str | None = typer.Option(
        None,
        "--source",
        help="Where the hosts find the exact packages: a directory or share on each host "
        "(package_version_*.deb, {ProductCode}.msi, receipt-version.pkg). Without it, Linux "
        "hosts install the pinned version from their own repositories.",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Execute the plan (default: show it)."),
    batches: str | None = typer.Option(None, "--batches", help="As for kremove run."),
    max_fail: str | None = typer.Option(None, "--max-fail", help="As for kremove run."),
    window: str | None = typer.Option(None, "--window", help="As for kremove run."),
    tz: str | None = typer.Option(None, "--tz", help="Time zone of --window."),
    forks: int = ForksOpt,
    host_timeout: float = HostTimeoutOpt,
    playbooks: list[Path] = PlaybooksOpt,
    accept_new_hostkeys: bool = AcceptKeysOpt,
    ledger: Path | None = LedgerOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Build the reverse plan of a run from its recorded pre- and post-state: per host, the exact
    products, versions, packages or ProductCodes it removed, and the catalog's reinstall commands.

    Shown as a dry run unless --yes; executed as an ordinary recorded wave, each host then detected
    again to prove what came back ('restored').
    """
    from orchestrator.engine.detect import host_platform
    from orchestrator.engine.rollback import plan_rollback

    with _open_existing(ledger) as book:
        source_run = book.get_run(run_id)
    if source_run.kind != "run":
        raise InputError(f"run {source_run.id} is a {source_run.kind} run; only removals roll back")
    stored = source_run.meta
    inventory = inventory or [Path(p) for p in stored.get("inventory", [])]
    playbooks = playbooks or [Path(p) for p in stored.get("playbooks", [])]
    content = load_playbooks(playbooks)
    inv = None
    selected: list[Host] = []
    if inventory:
        inv, selected = _load(inventory, limit)
    names = {h.name for h in selected} if inventory else None
    records = [h for h in source_run.hosts if names is None or h.host in names]
    platforms = {h.name: host_platform(h) for h in selected}
    plans = plan_rollback(records, platforms, content, source)
    todo = [p for p in plans if p.steps]
    if not yes:
        if as_json:
            _print_json({"rollback_of": source_run.id, "hosts": [p.to_dict() for p in plans]})
            return
        for p in plans:
            if not p.removed:
                continue
            out.print(f"[bold]{_safe(p.host)}[/]  was {p.status}")
            for f in p.removed:
                out.print(f"  reinstall  {_safe(_finding_label(f))}")
            for step in p.steps:
                out.print(f"    $ {_safe_lines(step.command.shown)}")
            if p.note:
                out.print(f"  [yellow]note:[/] {_safe(p.note)}")
        out.print(
            f"{len(todo)} host{'s' if len(todo) != 1 else ''} to restore from run "
            f"{source_run.id}; nothing was changed. Execute with --yes."
        )
        return
    if inv is None:
        raise InputError(f"run {source_run.id} does not record its inventory; give it with -i")
    hosts = [h for h in selected if h.name in {p.host for p in todo}]
    if not hosts:
        raise InputError(f"run {source_run.id} removed nothing on the selected hosts")
    wave = runner.WaveSettings(
        batches=batches,
        max_fail=max_fail,
        window=None if window is None else Window.parse(window, tz),
    )
    ledger_path = resolve_ledger_path(ledger)
    secrets, connector = _connect_setup(inv, hosts, ledger_path, accept_new_hostkeys)
    meta = _run_meta(hosts, inventory, limit, playbooks, None, None)
    meta["rollback_of"] = source_run.id
    meta["source"] = source
    with _book(ledger_path) as book, _progress(len(hosts), "rollback", as_json) as on_event:
        result = runner.rollback(
            hosts,
            playbooks=content,
            ledger=book,
            info=_run_info(inv),
            connector=connector,
            secrets=secrets,
            forks=forks,
            host_timeout=host_timeout,
            on_event=on_event,
            wave=wave,
            meta=meta,
            restore={p.host: p.restore() for p in todo},
        )
        path = book.path
    _print_result(result, path, as_json)
    raise typer.Exit(_exit_code(result))


LAB_KINDS = (
    "clean=4,one_product=7,several_products=4,uninstall_fails=1,unreachable=1,slow=1,"
    "jump=1,behind_jump=1"
)
# Windows hosts that remove cleanly, one that needs a reboot (3010) and one protected KES that
# fails without its uninstall password; none that hangs, so a wave over the lab ends quickly.
LAB_WINDOWS_KINDS = "clean=1,kes_and_agent=2,french_agent=1,reboot_required=1,protected_kes=1"
LabDirOpt = typer.Option(
    Path(".kremove/lab"), "--dir", help="Where the practice fleet keeps its state and inventory."
)


def _lab(command: str, directory: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """The practice fleet is the test suite's simulated fleet, run from this checkout."""
    root = builtin_dir().parent
    if not (root / "tests" / "fleet" / "__main__.py").exists():
        raise InputError(
            f"the practice fleet ships with the kremove checkout; {root} has no tests/fleet"
        )
    if command == "up" and os.geteuid() != 0:
        raise InputError(
            "the practice fleet needs root (it runs sshd in private namespaces); run: "
            "sudo kremove lab up"
        )
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "tests.fleet", command, "--dir", str(directory.resolve()), *extra],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@lab_app.command("up", epilog="Example: sudo kremove lab up --dir /tmp/rehearsal")
def lab_up(
    directory: Path = LabDirOpt,
    kinds: str = typer.Option(
        LAB_KINDS, "--kinds", help="Simulated Linux hosts by kind (see tests/fleet/README.md)."
    ),
    windows_kinds: str = typer.Option(
        LAB_WINDOWS_KINDS,
        "--windows-kinds",
        help="Emulated Windows hosts (WinRM) by kind, '' for none "
        "(see tests/fleet/winrm_host/README.md).",
    ),
) -> None:
    """Start a practice fleet (REHEARSAL ONLY): ~20 simulated Linux hosts with dummy Kaspersky
    packages and a few emulated Windows hosts behind WinRM, some failing and unreachable, on
    127.0.0.1. Rehearse plans and waves against it."""
    done = _lab("up", directory, "--kinds", kinds, "--windows-kinds", windows_kinds)
    if done.returncode != 0:
        raise KremoveError(f"lab up failed: {_last(done.stderr or done.stdout)}")
    err.print("[bold yellow]REHEARSAL ENVIRONMENT[/] — simulated hosts, not real machines")
    for line in done.stdout.splitlines():
        # The fleet's own helper lines: its passwords (not needed by this lab) are not shown.
        if line.startswith(("export ", "# stop:", "# inventory:", "# windows inventory:")):
            continue
        out.print(_safe(line.lstrip("# ")))
    out.print(f"inventory: {directory.resolve() / 'inventory.yml'}")
    if windows_kinds.strip():
        out.print(f"windows inventory: {directory.resolve() / 'windows.yml'}")
    out.print(f"stop it with: kremove lab down --dir {directory}")


@lab_app.command("status", epilog="Example: kremove lab status")
def lab_status(directory: Path = LabDirOpt) -> None:
    """Show the practice fleet's Linux and Windows hosts and what is installed on each
    (REHEARSAL ONLY)."""
    done = _lab("status", directory)
    out.print(done.stdout.rstrip())
    if done.returncode not in (0, 3):
        raise KremoveError(f"lab status: {_last(done.stderr or done.stdout)}")


@lab_app.command("down", epilog="Example: kremove lab down")
def lab_down(directory: Path = LabDirOpt) -> None:
    """Stop the practice fleet (Linux and Windows hosts) and everything it started."""
    done = _lab("down", directory)
    if done.returncode != 0:
        raise KremoveError(f"lab down: {_last(done.stderr or done.stdout)}")
    out.print(done.stdout.rstrip())


def _last(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def _finding_label(f: Any) -> str:
    evidence = f.get("evidence") or {}
    what = evidence.get("package") or evidence.get("path") or f.get("product", "?")
    return f"{what} {f.get('version') or ''}".strip() + (
        " (residue)" if f.get("kind") == "residue" else ""
    )


# ---------------------------------------------------------------------------------------------


def _load(paths: Sequence[Path], limit: str | None) -> tuple[Inventory, list[Host]]:
    inv = load_inventories(list(paths))
    return inv, select(inv, limit, Path.cwd())


def _sign_key(env_name: str | None) -> bytes | None:
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if not value:
        raise InputError(f"--sign-key-env: environment variable {env_name} is not set or empty")
    return value.encode("utf-8")


def _book(path: Path, sign_key_env: str | None = None) -> Ledger:
    """The ledger, with the signing key when one is configured; what opening it changed is said."""
    book = Ledger.open(path, _sign_key(sign_key_env or _State.sign_key_env))
    for note in book.notes:
        err.print(f"[yellow]kremove: note: {_safe(note)}[/]")
    return book


def _open_existing(option: Path | None, sign_key_env: str | None = None) -> Ledger:
    """Reading commands never create a ledger: a wrong path should say so, not show nothing."""
    path = resolve_ledger_path(option)
    if not path.exists():
        raise InputError(
            f"no ledger at {path}; run a scan first (kremove detect -i FILE), or point --ledger "
            "or KREMOVE_LEDGER at an existing one"
        )
    return _book(path, sign_key_env)


def _write_private(path: Path, option: str, text: str, *, append: bool = False) -> None:
    """Write a file for the user (a report, an archive of runs): they hold host names, findings
    and commands, so it is readable by its owner only whatever the umask — created 0600, and an
    existing one made 0600 before anything is written to it. On disk when this returns."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else 0), 0o600)
    except OSError as exc:
        raise InputError(f"{option}: cannot write: {exc.strerror}") from None
    with open(fd, "a" if append else "w", encoding="utf-8") as fh:
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)  # not /dev/stdout or /dev/null
            if regular:
                os.fchmod(fd, 0o600)
        except OSError as exc:
            raise InputError(
                f"{option}: cannot make it readable by its owner only: {exc.strerror}; "
                "give a new file"
            ) from None
        try:
            if regular and not append:
                os.ftruncate(fd, 0)  # only now: a file that cannot be made private is kept
            fh.write(text)
            fh.flush()
            if regular:
                os.fsync(fd)
        except OSError as exc:
            raise InputError(f"{option}: cannot write: {exc.strerror}") from None


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    """Console script: one red line and an exit code for every error a user can cause."""
    try:
        app(args=list(argv) if argv is not None else None, standalone_mode=True)
    except KremoveError as exc:
        if _State.debug:
            traceback.print_exc()
        err.print(f"[red]kremove: error:[/] {_safe(exc.message)}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("[red]kremove: interrupted[/]")
        sys.exit(st.EXIT_INTERRUPTED)
    except Exception as exc:  # a bug: say so in one line, traceback only on request
        if _State.debug:
            traceback.print_exc()
        err.print(
            f"[red]kremove: internal error:[/] {_safe(type(exc).__name__)}: {_safe(exc)} "
            "(run again with --debug for the traceback, and report it)"
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
