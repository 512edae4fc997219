"""The command line's connection defaults (-u, -b, --become-user, -K, -k, --private-key) as host
settings, applied in this one place so that detect, plan, run and rollback get the same hosts.

Ansible's rule: options on the command line are defaults, and what the inventory writes for a
host (ansible_user, ansible_become, ansible_private_key_file …; kremove YAML's user, become,
key_file …) wins over them. ``Host.given`` says what the inventory wrote.

Where neither says anything about become, the host's become is ``auto``: enabled, and the engine
uses it only where the login is not root and sudo lets it (engine/privilege.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import InputError
from orchestrator.inventory.model import Become, Host, Inventory, SecretRef

# Transports on which kremove becomes root with sudo (Windows has no become: the login must be an
# administrator).
SUDO_TRANSPORTS = frozenset({"ssh", "local"})


@dataclass(frozen=True)
class ConnectionDefaults:
    """What the command line said about logging in and becoming root, for every host."""

    user: str | None = None  # -u/--user
    become: bool = False  # -b/--become
    become_user: str | None = None  # --become-user
    ask_become_pass: bool = False  # -K/--ask-become-pass
    become_password_file: Path | None = None  # --become-password-file
    ask_pass: bool = False  # -k/--ask-pass
    connection_password_file: Path | None = None  # --connection-password-file
    private_key: Path | None = None  # --private-key

    def check(self, *, can_prompt: bool) -> None:
        """Refuse what cannot work before anything is read: a prompt without a terminal, or one
        password given two ways. One line each, naming the option and what to use instead."""
        if self.ask_become_pass and self.become_password_file:
            raise InputError(
                "give the become password once: -K/--ask-become-pass or --become-password-file"
            )
        if self.ask_pass and self.connection_password_file:
            raise InputError(
                "give the login password once: -k/--ask-pass or --connection-password-file"
            )
        if not can_prompt and self.ask_become_pass:
            raise InputError(
                "-K/--ask-become-pass needs a terminal to ask on (stdin is not one, or CI is "
                "set); use --become-password-file FILE, the inventory's become password_env/"
                "password_file, or ansible_become_password with a lookup('env', ...)"
            )
        if not can_prompt and self.ask_pass:
            raise InputError(
                "-k/--ask-pass needs a terminal to ask on (stdin is not one, or CI is set); use "
                "--connection-password-file FILE, the inventory's password_env/password_file, "
                "or ansible_password with a lookup('env', ...)"
            )

    def below(self, configured: ConnectionDefaults) -> ConnectionDefaults:
        """These options, and ``configured`` (ansible.cfg, ANSIBLE_* variables) where the
        command line gave none: command line > ansible.cfg/environment > kremove's default."""
        return dataclasses.replace(
            self,
            user=self.user or configured.user,
            private_key=self.private_key or configured.private_key,
            become=self.become or configured.become,
            become_user=self.become_user or configured.become_user,
        )

    def become_password(self) -> SecretRef | None:
        return _reference(self.ask_become_pass, self.become_password_file)

    def login_password(self) -> SecretRef | None:
        return _reference(self.ask_pass, self.connection_password_file)


def _reference(ask: bool, file: Path | None) -> SecretRef | None:
    """A password asked for once (-K, -k), or read from a file; None when neither was given."""
    if ask:
        return SecretRef(prompt=True)
    return SecretRef(file=str(file)) if file else None


def apply(inventory: Inventory, defaults: ConnectionDefaults) -> Inventory:
    """Every host of ``inventory`` with the command line's defaults filled in where the inventory
    wrote nothing (jump hosts too: they are logged in to as well)."""
    hosts = {name: host_with(host, defaults) for name, host in inventory.hosts.items()}
    return dataclasses.replace(inventory, hosts=hosts)


def host_with(host: Host, defaults: ConnectionDefaults) -> Host:
    """``host`` with the defaults where its inventory said nothing."""
    if host.transport == "local":  # the controller itself: no login, no key, no password
        return dataclasses.replace(host, become=_become(host, defaults))
    given = host.given
    return dataclasses.replace(
        host,
        user=host.user if "user" in given or defaults.user is None else defaults.user,
        key_file=_key_file(host, defaults),
        password=host.password if "password" in given else defaults.login_password(),
        become=_become(host, defaults),
    )


def _key_file(host: Host, defaults: ConnectionDefaults) -> str | None:
    if "key_file" in host.given or defaults.private_key is None or host.transport != "ssh":
        return host.key_file
    return str(defaults.private_key)


def _become(host: Host, defaults: ConnectionDefaults) -> Become:
    become = host.become
    if host.transport not in SUDO_TRANSPORTS:
        return become
    given = host.given
    if "become.enabled" in given:
        enabled, auto = become.enabled, False
    else:
        enabled, auto = True, not defaults.become
    user = become.user
    if "become.user" not in given and defaults.become_user:
        user = defaults.become_user
    password = become.password
    if "become.password" not in given and host.transport != "local":
        password = defaults.become_password()
    return dataclasses.replace(become, enabled=enabled, auto=auto, user=user, password=password)


def from_cli(host: Host, setting: str) -> bool:
    """Whether ``setting`` of ``host`` came from the command line rather than the inventory."""
    return setting not in host.given
