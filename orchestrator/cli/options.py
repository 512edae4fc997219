"""Every option more than one command takes, declared once (pip's cmdoptions).

Only typer is imported here: a command module that reads its options from this one stays cheap
to import, so `kremove --help` loads no engine. The defaults repeat the engine's (request.py),
and a test holds the two equal.
"""

from __future__ import annotations

from pathlib import Path

import typer

DEFAULT_FORKS = 50  # = orchestrator.engine.request.DEFAULT_FORKS
DEFAULT_HOST_TIMEOUT = 600.0  # = orchestrator.engine.request.DEFAULT_HOST_TIMEOUT

InventoryOpt = typer.Option(
    ...,
    "-i",
    "--inventory",
    help="Inventory file (kremove YAML, Ansible INI/YAML or CSV); repeat to merge.",
)
OptionalInventoryOpt = typer.Option(
    None,
    "-i",
    "--inventory",
    help="Inventory file (kremove YAML, Ansible INI/YAML or CSV); repeat to merge. "
    "Not needed with --resume or --plan (the run or plan remembers its own).",
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
TzOpt = typer.Option(
    None, "--tz", help="Time zone of --window, e.g. Europe/Paris (default: local time)."
)
