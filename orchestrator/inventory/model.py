"""The inventory as the rest of kremove sees it: hosts with resolved connection settings; groups."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

PlatformName = Literal["linux", "windows", "macos"]
PLATFORMS: tuple[str, ...] = ("linux", "windows", "macos")


@dataclass(frozen=True)
class VaultText:
    """An Ansible Vault value as written (``$ANSIBLE_VAULT;1.1;AES256`` and hex lines), still
    encrypted; ``vault_id`` is the 1.2 header's label. Decrypted only when the secret is used."""

    text: str
    vault_id: str | None = None
    origin: str = field(default="", compare=False)  # "file:line", for messages

    def describe(self) -> str:
        return f"vault:{self.vault_id or 'default'}@{self.origin}"


@dataclass(frozen=True)
class SecretRef:
    """Where a secret is found — an environment variable, a file, a prompt, or an Ansible Vault
    value. Never the secret."""

    env: str | None = None
    file: str | None = None
    prompt: bool = False
    vault: VaultText | None = None

    def describe(self) -> str:
        if self.env:
            return f"env:{self.env}"
        if self.file:
            return f"file:{self.file}"
        if self.vault:
            return self.vault.describe()
        return "prompt" if self.prompt else "none"


@dataclass(frozen=True)
class UninstallPassword:
    """Where a product's uninstall password is found, and who said so: ``owner`` is the inventory
    level that wrote it ("group 'branch'", "host 'w1'", "defaults"), ``origin`` its file:line.
    Equal references are the same password wherever they were written."""

    ref: SecretRef
    owner: str = field(default="", compare=False)
    origin: str = field(default="", compare=False)

    def describe(self) -> str:
        return self.ref.describe()


@dataclass(frozen=True)
class Become:
    """Privilege escalation on the host (sudo, su or doas). ``auto``: the inventory and the
    command line said nothing, so kremove becomes root where the login is not root and sudo lets it
    (inventory/overrides.py, engine/privilege.py)."""

    enabled: bool = False
    user: str = "root"
    method: str = "sudo"
    password: SecretRef | None = None
    auto: bool = False


# The transports that speak WS-Management and so read WinrmSettings.
WSMAN = ("winrm", "psrp")


@dataclass(frozen=True)
class WinrmSettings:
    """WinRM specifics; consulted only when transport is winrm or psrp (the same endpoint)."""

    auth: str = "ntlm"  # ntlm | kerberos | credssp | basic | certificate
    scheme: str = "https"  # https | http
    cert_validation: bool = True
    ca_trust_path: str | None = None
    cert_pem: str | None = None  # auth certificate: the client certificate file (PEM)
    cert_key_pem: str | None = None  # and its key file (PEM, unencrypted, mode 0600)


@dataclass(frozen=True)
class Host:
    """One target machine with everything needed to reach it. ``vars`` are the merged free vars."""

    name: str
    address: str
    transport: str = "ssh"
    port: int = 22
    platform: str | None = None
    user: str | None = None
    key_file: str | None = None
    key_passphrase: SecretRef | None = None
    password: SecretRef | None = None
    become: Become = field(default_factory=Become)
    winrm: WinrmSettings = field(default_factory=WinrmSettings)
    shell_type: str | None = None  # sh | cmd | powershell, when the inventory says so
    jump: str | None = None  # name of the inventory host to tunnel SSH through
    # ProxyJump spec from Ansible's ssh args ("user@bastion:2222,next"), when no jump is named.
    proxy_jump: str | None = None
    known_hosts: str | None = None  # an extra known_hosts file for this host's key
    # Per catalog product id, where its uninstall password is found; "*": every other product.
    uninstall_passwords: Mapping[str, UninstallPassword] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""  # "file:line" where the host was (first) defined
    # The settings the inventory wrote for this host ("user", "become.enabled" ...): what the
    # command line's connection defaults (-u, -b, --private-key ...) must not override.
    given: frozenset[str] = field(default=frozenset(), compare=False)

    def settings(self) -> dict[str, Any]:
        """Everything that defines how to reach and treat the host, for comparison and digests."""
        return {
            "address": self.address,
            "transport": self.transport,
            "port": self.port,
            "platform": self.platform,
            "user": self.user,
            "key_file": self.key_file,
            "key_passphrase": self.key_passphrase and self.key_passphrase.describe(),
            "password": self.password and self.password.describe(),
            "become": {
                "enabled": self.become.enabled,
                "user": self.become.user,
                "method": self.become.method,
                "password": self.become.password and self.become.password.describe(),
            },
            "winrm": vars(self.winrm) if self.transport in WSMAN else None,
            "shell_type": self.shell_type,
            "jump": self.jump,
            **({"proxy_jump": self.proxy_jump} if self.proxy_jump else {}),
            "known_hosts": self.known_hosts,
            "uninstall_passwords": {
                product: entry.describe()
                for product, entry in sorted(self.uninstall_passwords.items())
            },
            "vars": dict(self.vars),
        }


@dataclass(frozen=True)
class Group:
    name: str
    hosts: tuple[str, ...] = ()  # direct members
    children: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SiteFile:
    """A file the inventory was read from, in the order read (inventory/site.py): ``role`` is
    ``inventory``, ``group_vars`` or ``host_vars`` (``name``: the group or host it gives vars
    to), or ``skipped`` (``name``: why)."""

    path: str
    role: str
    name: str = ""


@dataclass(frozen=True)
class Inventory:
    """Hosts in definition order, and groups. Every host belongs to the implicit group ``all``."""

    hosts: Mapping[str, Host]
    groups: Mapping[str, Group]
    sources: tuple[str, ...] = ()
    site: tuple[SiteFile, ...] = ()  # every file read, and skipped, to build it
    # What the inventory says that kremove does not follow (ssh args ...), each said once.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def digest(self) -> str:
        """SHA-256 over the canonical content, recorded with each run."""
        doc = {
            "hosts": {n: {**h.settings(), "groups": list(h.groups)} for n, h in self.hosts.items()},
            "groups": {
                n: {"hosts": list(g.hosts), "children": list(g.children), "vars": dict(g.vars)}
                for n, g in self.groups.items()
            },
        }
        blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()
