"""Every option more than one command takes, declared once (pip's cmdoptions).

Only typer is imported here: a command module that reads its options from this one stays cheap
to import, so `kremove --help` loads no engine. The defaults repeat the engine's (request.py),
and a test holds the two equal.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

DEFAULT_FORKS = 50  # = orchestrator.engine.request.DEFAULT_FORKS
DEFAULT_HOST_TIMEOUT = 600.0  # = orchestrator.engine.request.DEFAULT_HOST_TIMEOUT


def _inventory_or_configured(given: list[Path]) -> list[Path]:
    """-i as given; without it, the inventory ansible.cfg or ANSIBLE_INVENTORY names."""
    if given:
        return given
    from orchestrator.cli.session import configured_inventory

    return configured_inventory()


InventoryOpt = typer.Option(
    [],
    "-i",
    "--inventory",
    callback=_inventory_or_configured,
    help="Inventory: a file (kremove YAML, Ansible INI/YAML, CSV, script ...), a directory of "
    "them with group_vars/ and host_vars/, or host1,host2; repeat to merge. Default: "
    "ansible.cfg's inventory or ANSIBLE_INVENTORY.",
)
OptionalInventoryOpt = typer.Option(
    None,
    "-i",
    "--inventory",
    help="Inventory: a file (kremove YAML, Ansible INI/YAML, CSV, script ...), a directory of "
    "them with group_vars/ and host_vars/, or host1,host2; repeat to merge. Not needed with "
    "--resume or --plan (the run or plan remembers its own).",
)
LimitOpt = typer.Option(
    None,
    "-l",
    "--limit",
    help="Hosts to select, as an Ansible pattern: names, groups, globs, ~regex, subscripts "
    "(web[0], web[-1], web[0:2] with 2 included, web[1:]), !exclude, &intersect, @file; commas "
    "(or colons). A term that matches nothing is an error. See docs/ansible.md.",
)
JsonOpt = typer.Option(
    False, "--json", help="Print one JSON document on stdout and nothing else there."
)
LedgerOpt = typer.Option(
    None,
    "--ledger",
    help="Ledger database (default: $KREMOVE_LEDGER, else $XDG_STATE_HOME/kremove/ledger.db "
    "(~/.local/state/...), /var/lib/kremove/ledger.db as root; an existing .kremove/ledger.db "
    "in the current directory is used first, with a note).",
)
ForksOpt = typer.Option(DEFAULT_FORKS, "--forks", min=1, max=2000, help="Hosts worked on at once.")
HostTimeoutOpt = typer.Option(
    DEFAULT_HOST_TIMEOUT,
    "--host-timeout",
    min=1,
    help="Seconds a host may take in all (every step it gets) before it ends 'timeout'.",
)
PasswordEnvOpt = typer.Option(
    None,
    "--uninstall-password-env",
    metavar="VAR",
    help="Environment variable holding the products' uninstall (protection) password: "
    "KES KLPASSWD, Network Agent KLUNINSTPASSWD. The run-wide default: an inventory's "
    "uninstall_password_* / kremove_uninstall_password* references win over it.",
)
PasswordFileOpt = typer.Option(
    None,
    "--uninstall-password-file",
    help="File holding the uninstall password (the run-wide default, as --uninstall-password-env).",
)
# Ansible Vault: what ansible-playbook takes, for !vault values and vault-encrypted inventories.
VaultPasswordFileOpt = typer.Option(
    [],
    "--vault-password-file",
    metavar="FILE",
    help="File holding the Ansible Vault password (vault id 'default'); an executable file is "
    "run and its output is the password, as in Ansible. Repeatable.",
)
AskVaultPassOpt = typer.Option(
    False, "--ask-vault-pass", help="Ask for the Ansible Vault password (needs a terminal)."
)
VaultIdOpt = typer.Option(
    [],
    "--vault-id",
    metavar="LABEL@FILE",
    help="An Ansible Vault id and where its password is: LABEL@FILE (an executable FILE is run; "
    "one named *-client gets --vault-id LABEL) or LABEL@prompt. Repeatable.",
)
# The event log (docs/logging.md): every command that works on hosts takes these.
LogFileOpt = typer.Option(
    None,
    "--log-file",
    metavar="FILE",
    help="Append the run's events to FILE as JSON lines, one object per event, written as they "
    "happen (for a log shipper to follow); no secrets, no command text.",
)
SyslogOpt = typer.Option(
    False, "--syslog", help="Send the run's events to syslog (/dev/log, facility user) as JSON."
)
SyslogAddressOpt = typer.Option(
    None,
    "--syslog-address",
    metavar="HOST:PORT|SOCKET",
    help="Syslog over UDP to HOST:PORT, or another Unix socket; implies --syslog.",
)
PlaybooksOpt = typer.Option(
    [],
    "--playbooks",
    help="A directory laid over the built-in playbooks (repeatable): its files replace those at "
    "the same paths, its catalog.yml merges key by key; the rest stays (docs/playbooks.md).",
)
AcceptKeysOpt = typer.Option(
    False,
    "--accept-new-hostkeys",
    help="Pin the key of an SSH host seen for the first time (recorded in the ledger); "
    "without it such hosts end 'hostkey_rejected'. A changed key is always rejected.",
)
RunIdArg = typer.Argument(..., help="Run id, or a unique prefix of one.")
LabDirOpt = typer.Option(
    Path(".kremove/lab"), "--dir", help="Where the practice fleet keeps its state and inventory."
)
BatchesOpt = typer.Option(
    None,
    "--batches",
    help="Wave sizes, counts or percentages of the selected hosts, the last repeating: "
    "1,5,10%,100% (a canary, then growing batches).",
)
MaxFailOpt = typer.Option(
    None,
    "--max-fail",
    help="Failure budget over the whole run (3 or 5%): failed, unreachable, auth_failed, "
    "hostkey_rejected and timeout all count. Past it no new host starts; exit 3.",
)
WindowOpt = typer.Option(
    None,
    "--window",
    help="Change window, HH:MM-HH:MM (may pass midnight). Outside it nothing starts (exit "
    "4); when it closes no new host starts and the run can be resumed.",
)
AllowEncryptedOpt = typer.Option(
    False,
    "--allow-encrypted-data-loss",
    help="Remove from hosts with KES encryption components (full-disk or file-level encryption) "
    "anyway; data encrypted there may become unreadable. Without it such hosts are refused "
    "before any change (docs/runbook.md).",
)
TzOpt = typer.Option(
    None, "--tz", help="Time zone of --window, e.g. Europe/Paris (default: local time)."
)

# Ansible's connection options, for every command that reaches hosts (detect, plan, run,
# rollback). They are defaults: what the inventory writes for a host wins (docs/inventory.md).
CONNECTION_OPTIONS: dict[str, tuple[Any, Any]] = {
    "user": (
        str | None,
        typer.Option(
            None, "-u", "--user", metavar="USER", help="Login user where the inventory names none."
        ),
    ),
    "private_key": (
        Path | None,
        typer.Option(
            None,
            "--private-key",
            "--key-file",
            metavar="FILE",
            help="SSH private key where the inventory names none.",
        ),
    ),
    "ask_pass": (
        bool,
        typer.Option(
            False,
            "-k",
            "--ask-pass",
            help="Ask for the login password (once), for hosts whose inventory gives none.",
        ),
    ),
    "connection_password_file": (
        Path | None,
        typer.Option(
            None,
            "--connection-password-file",
            metavar="FILE",
            help="File holding the login password (mode 0600): -k without a terminal.",
        ),
    ),
    "become": (
        bool,
        typer.Option(
            False,
            "-b",
            "--become",
            help="Become root with sudo where the inventory does not say (without it kremove "
            "still becomes root where the login is not root and sudo -n allows it).",
        ),
    ),
    "become_user": (
        str | None,
        typer.Option(None, "--become-user", metavar="USER", help="User to become (default root)."),
    ),
    "ask_become_pass": (
        bool,
        typer.Option(
            False,
            "-K",
            "--ask-become-pass",
            help="Ask for the sudo password (once), for hosts whose inventory gives none.",
        ),
    ),
    "become_password_file": (
        Path | None,
        typer.Option(
            None,
            "--become-password-file",
            metavar="FILE",
            help="File holding the sudo password (mode 0600): -K without a terminal.",
        ),
    ),
}

Command = TypeVar("Command", bound=Callable[..., Any])


def connection_options(command: Command) -> Command:
    """Give ``command`` the connection options above; it receives them as one keyword,
    ``connection`` (inventory/overrides.py ``ConnectionDefaults``), so its signature stays short."""

    def defaults(**values: Any) -> Any:
        from orchestrator.inventory.overrides import ConnectionDefaults

        return ConnectionDefaults(**values)

    return _bundled(command, "connection", CONNECTION_OPTIONS, defaults)


# The event log (docs/logging.md), as one keyword.
LOG_OPTIONS: dict[str, tuple[Any, Any]] = {
    "log_file": (Path | None, LogFileOpt),
    "syslog": (bool, SyslogOpt),
    "syslog_address": (str | None, SyslogAddressOpt),
}


def log_options(command: Command) -> Command:
    """Give ``command`` --log-file, --syslog and --syslog-address; it receives them opened, as
    one keyword, ``logs`` (eventlog.py ``LogTargets``, or None): a file that cannot be written
    or a syslog that cannot be reached is a one-line error before the command does anything."""

    def opened(log_file: Path | None, syslog: bool, syslog_address: str | None) -> Any:
        from orchestrator.eventlog import open_targets

        return open_targets(log_file, syslog, syslog_address)

    return _bundled(command, "logs", LOG_OPTIONS, opened)


# Ansible Vault, as one step before the command: every command that reads inventories takes these.
VAULT_OPTIONS: dict[str, tuple[Any, Any]] = {
    "vault_password_file": (list[Path], VaultPasswordFileOpt),
    "ask_vault_pass": (bool, AskVaultPassOpt),
    "vault_id": (list[str], VaultIdOpt),
}


def vault_options(command: Command) -> Command:
    """Give ``command`` --vault-password-file, --ask-vault-pass and --vault-id; their passwords
    are registered (session.open_vaults) before it runs, for every later decryption, and the
    command itself receives nothing for them."""

    def opened(vault_password_file: list[Path], ask_vault_pass: bool, vault_id: list[str]) -> None:
        from orchestrator.cli.session import open_vaults

        open_vaults(vault_password_file, ask_vault_pass, vault_id)

    return _bundled(command, None, VAULT_OPTIONS, opened)


def _bundled(
    command: Command,
    keyword: str | None,
    options: dict[str, tuple[Any, Any]],
    build: Callable[..., Any],
) -> Command:
    """``command`` with ``options`` in its signature (Typer reads the one made here), called
    with what ``build`` makes of their values as the one keyword ``keyword`` (with no keyword,
    ``build`` runs for its effect before the command); the command's own annotations stay as
    written."""
    own = inspect.signature(command)
    kept = [p for p in own.parameters.values() if p.name != keyword]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
        for name, (kind, option) in options.items()
    ]

    @functools.wraps(command)
    def with_options(**given: Any) -> Any:
        values = {name: given.pop(name) for name in options}
        built = build(**values)
        return command(**given, **({keyword: built} if keyword else {}))

    with_options.__signature__ = own.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
    with_options.__annotations__ = {
        **{p.name: p.annotation for p in kept},
        **{p.name: p.annotation for p in added},
        "return": own.return_annotation,
    }
    return with_options  # type: ignore[return-value]
