"""From merged raw content to ``Inventory``: checks across files, then precedence per host.

Precedence, lowest first: the ``all`` group (native ``defaults``), then every group the host is in,
ancestors before descendants (by depth, then name, as Ansible does), then group_vars/all and
group_vars/<group> beside each source, then the host itself, then host_vars/ (Ansible's order).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from orchestrator.errors import InventoryError
from orchestrator.inventory.addresses import address_problem
from orchestrator.inventory.ansible_vars import connection
from orchestrator.inventory.model import WSMAN, Become, Group, Host, Inventory, WinrmSettings
from orchestrator.inventory.raw import Owner, RawGroup, RawHost, RawInventory, Value, VarsFiles
from orchestrator.inventory.settings import show, uninstall_passwords
from orchestrator.transports import kinds

NAME = re.compile(r"[^\s,!&~@][^\s,]*")
WINRM_HTTP_PORT = 5985


def resolve(raw: RawInventory) -> Inventory:
    if not raw.hosts:
        raise InventoryError(
            "the inventory defines no hosts; add at least one host", file=", ".join(raw.files)
        )
    _check_names(raw)
    _check_references(raw)
    for host in raw.hosts.values():
        for name, origin in host.groups.items():
            raw.group(name, origin)
    _check_cycles(raw)
    parents = _parents(raw.groups)
    depths: dict[str, int] = {}
    order = {name: (_depth(name, parents, depths), name) for name in raw.groups}
    members = _members(raw)
    hosts = {}
    warnings: list[str] = []
    for name, raw_host in raw.hosts.items():
        in_groups = sorted(_ancestors(members[name], parents) - {"all"}, key=order.__getitem__)
        hosts[name] = _host(raw_host, in_groups, raw.groups, raw.vars_files, warnings)
    _check_jumps(hosts)
    groups = {
        name: Group(
            name=name,
            hosts=_group_hosts(group, raw, members),
            children=tuple(group.children),
            vars={
                key: value.value
                for layer in [group.layer, *raw.vars_files.of_group(name)]
                for key, value in layer.vars.items()
            },
        )
        for name, group in raw.groups.items()
    }
    said = tuple(dict.fromkeys(warnings))
    return Inventory(hosts=hosts, groups=groups, sources=tuple(raw.files), warnings=said)


def _check_jumps(hosts: Mapping[str, Host]) -> None:
    """A jump names another SSH host of the inventory, and following jumps never loops."""
    for host in hosts.values():
        seen = [host.name]
        current = host
        while current.jump is not None:
            target = hosts.get(current.jump)
            if target is None or target.transport != "ssh":
                problem = (
                    "is not a host of the inventory" if target is None else "is not an SSH host"
                )
                raise InventoryError(
                    f"jump host {current.jump!r} {problem}; define it under hosts",
                    file=current.source,
                    host=current.name,
                    field="jump",
                )
            if target.name in seen:
                raise InventoryError(
                    f"jump hosts form a loop: {' -> '.join([*seen, target.name])}",
                    file=host.source,
                    host=host.name,
                    field="jump",
                )
            seen.append(target.name)
            current = target


def _check_names(raw: RawInventory) -> None:
    for kind, items in (("host", raw.hosts.values()), ("group", raw.groups.values())):
        for item in items:
            if not NAME.fullmatch(item.name):
                raise InventoryError(
                    f"{kind} name {item.name[:40]!r} cannot be selected with --limit; "
                    "use a name without spaces or commas that does not start with ! & ~ @",
                    file=item.origin.file,
                    line=item.origin.line,
                )


def _check_references(raw: RawInventory) -> None:
    for group in raw.groups.values():
        for name, origin in group.hosts.items():
            if name not in raw.hosts:
                raise Owner("group", group.name).error(
                    f"lists host {name!r}, which is not defined under hosts:; "
                    "define it there or remove it from the group",
                    origin,
                    "hosts",
                )
        for name, origin in group.children.items():
            if name not in raw.groups:
                raise Owner("group", group.name).error(
                    f"lists child group {name!r}, which is not defined; "
                    "define it under groups: or remove it from children",
                    origin,
                    "children",
                )


def _check_cycles(raw: RawInventory) -> None:
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        for child, origin in raw.groups[name].children.items():
            if child in path:
                cycle = " -> ".join([*path[path.index(child) :], child])
                raise Owner("group", name).error(
                    f"group children form a cycle: {cycle}; remove one of these children entries",
                    origin,
                    "children",
                )
            if child not in done:
                visit(child, [*path, child])
        done.add(name)

    for name in raw.groups:
        if name not in done:
            visit(name, [name])


def _parents(groups: Mapping[str, RawGroup]) -> dict[str, set[str]]:
    parents: dict[str, set[str]] = {name: set() for name in groups}
    for group in groups.values():
        for child in group.children:
            parents[child].add(group.name)
    return parents


def _depth(name: str, parents: Mapping[str, set[str]], depths: dict[str, int]) -> int:
    """0 for ``all``; otherwise one more than the deepest parent (top-level groups are 1)."""
    if name not in depths:
        above = [_depth(p, parents, depths) for p in parents[name] if p != "all"]
        depths[name] = 0 if name == "all" else 1 + max(above, default=0)
    return depths[name]


def _group_hosts(
    group: RawGroup, raw: RawInventory, members: Mapping[str, set[str]]
) -> tuple[str, ...]:
    """In the order the group lists them where it lists them all (Ansible's order, which
    --limit 'group[0]' indexes); else, hosts naming their own groups, in definition order."""
    defined = tuple(name for name in raw.hosts if group.name in members[name])
    return tuple(group.hosts) if len(group.hosts) == len(defined) else defined


def _members(raw: RawInventory) -> dict[str, set[str]]:
    """Each host's direct groups, whichever side declared the membership."""
    members = {name: set(host.groups) for name, host in raw.hosts.items()}
    for group in raw.groups.values():
        for name in group.hosts:
            members[name].add(group.name)
    return members


def _ancestors(direct: Iterable[str], parents: Mapping[str, set[str]]) -> set[str]:
    found: set[str] = set()
    todo = list(direct)
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(parents[name])
    return found


def _host(
    raw: RawHost,
    groups: list[str],
    raw_groups: Mapping[str, RawGroup],
    files: VarsFiles,
    warnings: list[str],
) -> Host:
    layers = [raw_groups["all"].layer] if "all" in raw_groups else []
    if raw.defaults is not None:
        layers.append(raw.defaults)
    layers += [raw_groups[name].layer for name in groups if name in raw_groups]
    layers += files.group_layers(groups)  # group_vars/ beat every group var of the inventory
    settings: dict[str, Value] = {}
    free: dict[str, Value] = {}
    for layer in [*layers, raw.layer, *files.host_layers(raw.name)]:
        settings.update(layer.settings)
        free.update(layer.vars)
    # Templates evaluated, ssh args' jump, WinRM's implied scheme and auth (Ansible's meaning).
    settings, free, implied, said = connection(raw.name, groups, settings, free)
    warnings.extend(said)
    get = _getter({**implied, **settings})
    transport = get("transport", "ssh")
    winrm = _winrm(get)
    if transport in WSMAN:
        _check_winrm(raw.name, winrm, settings)
    kind = kinds.KINDS[transport]
    default_port = WINRM_HTTP_PORT if transport in WSMAN and winrm.scheme == "http" else None
    address = get("address", raw.name)
    if transport != "local":
        _check_address(raw, address, settings.get("address"))
    return Host(
        name=raw.name,
        address=address,
        transport=transport,
        port=get("port", default_port or kind.default_port),
        platform=get("platform", kinds.implied_platform(transport, get("shell_type", None))),
        user=get("user", None),
        key_file=get("key_file", None),
        key_passphrase=get("key_passphrase", None),
        password=get("password", None),
        become=Become(
            enabled=get("become.enabled", False),
            user=get("become.user", "root"),
            method=get("become.method", "sudo"),
            password=get("become.password", None),
        ),
        winrm=winrm,
        shell_type=get("shell_type", None),
        jump=get("jump", None),
        proxy_jump=get("proxy_jump", None),
        known_hosts=get("known_hosts", None),
        uninstall_passwords=uninstall_passwords(settings),
        groups=tuple(groups),
        vars={key: value.value for key, value in free.items()},
        source=str(raw.origin),
        given=frozenset(settings),
    )


def _winrm(get: Callable[[str, Any], Any]) -> WinrmSettings:
    return WinrmSettings(
        auth=get("winrm.auth", "ntlm"),
        scheme=get("winrm.scheme", "https"),
        cert_validation=get("winrm.cert_validation", True),
        ca_trust_path=get("winrm.ca_trust_path", None),
        cert_pem=get("winrm.cert_pem", None),
        cert_key_pem=get("winrm.cert_key_pem", None),
    )


def _getter(settings: Mapping[str, Value]) -> Callable[[str, Any], Any]:
    def get(key: str, default: Any) -> Any:
        return settings[key].value if key in settings else default

    return get


def _check_winrm(name: str, winrm: WinrmSettings, settings: Mapping[str, Value]) -> None:
    # Principle 4: Basic sends the password readable by anyone on the path unless TLS wraps it.
    if winrm.auth == "basic" and winrm.scheme == "http":
        origin = settings["winrm.auth"].origin
        raise Owner("host", name).error(
            "WinRM basic auth over plain http would send the password in clear text; "
            "use scheme https or auth ntlm/kerberos",
            origin,
            "winrm.auth",
        )


def _check_address(raw: RawHost, address: str, written: Value | None) -> None:
    """An address that will be dialled or looked up in ~/.ssh/config is host-name or IP syntax."""
    problem = address_problem(address)
    if problem is None:
        return
    origin = written.origin if written is not None else raw.origin
    whose = "" if written is not None else " (the host's name; set address to dial another)"
    raise InventoryError(
        f"address {show(address)}{whose} {problem}",
        file=origin.file,
        line=origin.line,
        host=raw.name,
    )
