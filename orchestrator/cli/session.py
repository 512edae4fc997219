"""What a command sets up around its one engine call: the hosts, the ledger, secrets and
transports, who is running it; and the one place a wave's result becomes an exit code.

Imported inside command functions only: it loads the inventory, ledger and secrets code.
"""

from __future__ import annotations

import getpass
import os
import shlex
import socket
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from orchestrator.cli.console import err, plural, progress, safe, warn_hosts
from orchestrator.cli.context import current
from orchestrator.engine import runner
from orchestrator.engine import settings as run_settings
from orchestrator.engine import status as st
from orchestrator.engine import uninstall_passwords as passwords
from orchestrator.engine.outcome import RunResult
from orchestrator.errors import InputError
from orchestrator.eventlog import EventLog, LogTargets
from orchestrator.inventory import ansible_cfg, load_inventories, overrides, select
from orchestrator.inventory.model import WSMAN, Host, Inventory
from orchestrator.inventory.overrides import ConnectionDefaults
from orchestrator.ledger import Ledger
from orchestrator.ledger.paths import locate_ledger
from orchestrator.playbook.loader import PlaybookSet
from orchestrator.playbook.model import Catalog
from orchestrator.secrets import Secret, SecretStore
from orchestrator.transports.connector import Connector, PoolSetup


def open_vaults(files: Sequence[Path], ask: bool, vault_ids: Sequence[str]) -> None:
    """Read the Ansible Vault passwords the options name, for every later decryption (values are
    decrypted only when used). Asking needs a terminal; without one it is a one-line error."""
    from orchestrator.inventory import vault

    prompt = _prompt if can_prompt() else None
    # As Ansible: ansible.cfg's vault ids before the command line's, its password file after.
    config = ansible_config()
    files = [*files, *filter(None, [config.path("vault_password_file")])]
    vault_ids = [*config.vault_ids(), *vault_ids]
    vault.register(vault.build_keyring(files, ask, vault_ids, prompt))


def ansible_config() -> ansible_cfg.AnsibleConfig:
    """ansible.cfg and the ANSIBLE_* variables, as Ansible finds them (inventory/ansible_cfg.py);
    what they say that kremove does not follow is said once, here."""
    config = ansible_cfg.load()
    for warning in config.warnings():
        if warning not in _noted:
            _noted.add(warning)
            err.print(f"[yellow]kremove: warning: {safe(warning)}[/]")
    return config


def configured_inventory(or_else: str = "") -> list[Path]:
    """Where -i is not given: the inventory ansible.cfg or ANSIBLE_INVENTORY names (Ansible's
    /etc/ansible/hosts where it exists), said on stderr; else a one-line error (``or_else``
    adds what else the command could be given)."""
    found = ansible_config().inventory()
    if found is None:
        raise InputError(
            "no inventory given: pass -i FILE|DIR|host1,host2, or name one with inventory = in "
            f"ansible.cfg ([defaults]) or ANSIBLE_INVENTORY{or_else}"
        )
    paths, where = found
    err.print(f"kremove: note: inventory {safe(', '.join(map(str, paths)))} (from {safe(where)})")
    return paths


def load(
    paths: Sequence[Path], limit: str | None, connection: ConnectionDefaults | None = None
) -> tuple[Inventory, list[Host]]:
    """The inventory and the selected hosts, with the command line's connection defaults (-u, -b,
    -K ...) where the inventory says nothing, and ansible.cfg's where the command line says
    nothing either (inventory/overrides.py)."""
    config = ansible_config()
    if connection is not None:
        connection = connection.below(config.connection_defaults())
        connection.check(can_prompt=can_prompt())
    # The current directory's group_vars/ and host_vars/ count as a playbook's, as
    # ansible-inventory reads them (docs/inventory.md).
    inv = load_inventories(list(paths) or configured_inventory(), Path.cwd())
    for warning in inv.warnings:  # what the inventory says that kremove does not follow
        err.print(f"[yellow]kremove: warning: {safe(warning)}[/]")
    if connection is not None:
        inv = overrides.apply(inv, connection)
    return inv, select(inv, limit, Path.cwd())


def sign_key(env_name: str | None) -> bytes | None:
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if not value:
        raise InputError(f"--sign-key-env: environment variable {env_name} is not set or empty")
    return value.encode("utf-8")


def book(path: Path, sign_key_env: str | None = None) -> Ledger:
    """The ledger, with the signing key when one is configured; what opening it changed is said."""
    ledger = Ledger.open(path, sign_key(sign_key_env or current().sign_key_env))
    for note in ledger.notes:
        err.print(f"[yellow]kremove: note: {safe(note)}[/]")
    return ledger


_noted: set[str] = set()  # a command may look its ledger up twice; the note is said once


def ledger_path(option: Path | None) -> Path:
    """The ledger this command uses (ledger/paths.py decides), with the note when it is an old
    ./.kremove/ledger.db that wins over the default."""
    where = locate_ledger(option)
    if where.notice and where.notice not in _noted:
        _noted.add(where.notice)
        err.print(f"[yellow]kremove: note: {safe(where.notice)}[/]")
    return where.path


def existing_ledger(option: Path | None) -> Path:
    """Reading commands never create a ledger: a wrong path should say so, not show nothing."""
    path = ledger_path(option)
    if not path.exists():
        raise InputError(
            f"no ledger at {path}; run a scan first (kremove detect -i FILE), or point --ledger "
            "or KREMOVE_LEDGER at an existing one"
        )
    return path


def open_existing(option: Path | None, sign_key_env: str | None = None) -> Ledger:
    return book(existing_ledger(option), sign_key_env)


@dataclass(frozen=True)
class Wiring:
    """What a command set up before its engine call: how hosts are reached, and where it goes."""

    inv: Inventory
    content: PlaybookSet
    secrets: SecretStore
    connector: Connector
    ledger_path: Path
    template_secrets: Mapping[str, Secret] | None = None
    logs: LogTargets | None = None  # --log-file, --syslog: opened before anything was sent


@contextmanager
def recording(
    wiring: Wiring,
    hosts: Sequence[Host],
    settings: run_settings.RunSettings,
    what: str,
    meta: Callable[[], dict[str, Any]],
) -> Iterator[runner.Options]:
    """For one engine call: the ledger open, the live display and the event log following the
    run, and the keywords every entry point takes. ``meta`` is made once the ledger is open
    (its notes come first)."""
    with (
        book(wiring.ledger_path) as ledger,
        progress(len(hosts), what) as show,
        _logged(wiring, show) as on_event,
    ):
        yield {
            "playbooks": wiring.content,
            "ledger": ledger,
            "info": run_info(wiring.inv),
            "connector": wiring.connector,
            "secrets": wiring.secrets,
            "template_secrets": wiring.template_secrets,
            "forks": settings.forks,
            "host_timeout": settings.host_timeout,
            "on_event": on_event,
            "meta": meta(),
        }


@contextmanager
def _logged(
    wiring: Wiring, show: Callable[[runner.Event], None]
) -> Iterator[Callable[[runner.Event], None]]:
    """The display's subscriber, and the event log's beside it when one was asked for; what the
    log could not write is said once the run is over."""
    if wiring.logs is None:
        yield show
        return
    log = EventLog(wiring.logs, wiring.secrets.redactor.scrub, exit_code)

    def both(event: runner.Event) -> None:
        log(event)
        show(event)

    try:
        yield both
    finally:
        for problem in log.close():
            err.print(f"[yellow]kremove: warning: {safe(problem)}[/]")


def run_meta(hosts: Sequence[Host], settings: run_settings.RunSettings) -> dict[str, Any]:
    """The run's record of itself (engine/settings.py), with what it keeps said out loud first:
    an old XML parser, unchecked certificates, WinRM over plain HTTP."""
    _old_expat(hosts)
    names = run_settings.unchecked_certificates(hosts)
    if names:
        warn_hosts(
            f"certificate validation is OFF (inventory cert_validation: false) "
            f"for {plural(len(names), 'WinRM host')}: {safe(_shown(names))}"
        )
    chosen = run_settings.plain_http(hosts)
    if chosen:
        auths = "/".join(sorted({h.winrm.auth.upper() for h in chosen}))
        warn_hosts(
            f"WinRM over plain HTTP with {auths} for {plural(len(chosen), 'host')}: "
            f"{safe(_shown([h.name for h in chosen]))} (messages are encrypted, but "
            "no certificate proves the host is the one meant; use https)"
        )
    return run_settings.run_meta(hosts, settings)


def _shown(names: Sequence[str]) -> str:
    return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def _old_expat(hosts: Sequence[Host]) -> None:
    """Before talking WinRM: say so when this Python's XML parser predates CVE-2024-8176's fix."""
    if any(h.transport in WSMAN for h in hosts):
        from orchestrator.transports.winrm_guard import expat_warning

        warning = expat_warning()
        if warning:
            err.print(f"[yellow]{safe(warning)}[/]")


def exit_code(result: RunResult) -> int:
    if result.stop == "halted":
        return st.EXIT_HALTED
    if result.stop == "window":
        return st.EXIT_WINDOW
    return st.exit_code([o.status for o in result.outcomes], interrupted=result.interrupted)


def confirm_batch(done: int, total: int) -> bool:
    return typer.confirm(f"{done} of {total} batches done. Start the next batch?", err=True)


def uninstall_password(
    secrets: SecretStore,
    env: str | None,
    file: Path | None,
    hosts: Sequence[Host],
    catalog: Catalog,
) -> dict[str, Secret]:
    """Every uninstall password the hosts' inventory references and the flags (the run-wide
    default under them) name, fetched once each before the run is recorded; which product gets
    which is engine/uninstall_passwords.py's. A reference for an unknown product is refused."""
    default = passwords.run_wide(env, file)
    passwords.check_products(hosts, catalog)
    return passwords.fetch(hosts, secrets, default)


def name_missing_passwords(
    hosts: Sequence[Host], catalog: Catalog, env: str | None, file: Path | None
) -> None:
    """Before a run starts: the protected products no reference covers, host by host."""
    lacking = passwords.missing(
        hosts, passwords.platform_of, catalog, passwords.run_wide(env, file)
    )
    for products, names in lacking.items():
        warn_hosts(
            f"no uninstall password for {', '.join(products)} on {plural(len(names), 'host')}: "
            f"{safe(_shown(names))}; if installed and protected, their removal fails (1603). "
            "Give one with uninstall_password_env (kremove_uninstall_password in Ansible) or "
            "--uninstall-password-env; kremove plan shows which each product uses"
        )


def confirm_changes(count: int, yes: bool) -> None:
    if yes:
        return
    if not can_prompt():
        raise InputError(
            "kremove run changes hosts and there is no terminal to confirm it on; review with "
            "kremove detect first, then pass --yes"
        )
    question = f"Remove Kaspersky products from {plural(count, 'host')}?"
    if not typer.confirm(question, default=False, err=True):
        raise InputError("not confirmed; nothing was changed")


def connect_setup(
    inv: Inventory, hosts: Sequence[Host], ledger_path: Path, accept_new_hostkeys: bool
) -> tuple[SecretStore, Connector]:
    """Fetch every secret and check every key and route now, before a run is recorded."""
    secrets = SecretStore(prompt=_prompt if can_prompt() else None)
    setup = PoolSetup(
        secrets=secrets,
        inventory=inv.hosts,
        state_dir=ledger_path.parent,
        accept_new_hostkeys=accept_new_hostkeys,
    )
    return secrets, Connector.open(setup, hosts)


def can_prompt() -> bool:
    return sys.stdin.isatty() and not os.environ.get("CI")


def _prompt(label: str) -> str:
    return getpass.getpass(f"kremove: {label}", stream=sys.stderr)


def run_info(inv: Inventory) -> runner.RunInfo:
    return runner.RunInfo(
        operator=f"{getpass.getuser()}@{socket.gethostname()}",
        command_line=shlex.join(["kremove", *sys.argv[1:]]),
        inventory_digest=inv.digest(),
    )
