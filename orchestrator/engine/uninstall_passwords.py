"""Which uninstall password each product of a host gets, each reference fetched once.

A host's references come from its inventory (``Host.uninstall_passwords``: product id → where the
password is, ``*`` for the host's default); ``--uninstall-password-env``/``-file`` is the run-wide
default under them. For one product: the product's own reference, else the host's default, else
the run-wide one, else none. Inventory levels merge per key like every setting (the host before
its groups before ``defaults``/``all``), so a product's own reference given by a group beats a
default given by the host.

Templates keep one name: ``secrets.uninstall_password`` is the host's default, and in a step
rendered for one product (``for_each``) that product's own (engine/steps.py). A product whose
catalog entry has a password kind (``password: kes|klnagent|plain``) is a protected one: plan
says which reference each will use, and run names those without one before it starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError, InventoryError
from orchestrator.inventory.model import Host, SecretRef, UninstallPassword
from orchestrator.inventory.settings import EVERY_PRODUCT
from orchestrator.playbook.model import Catalog
from orchestrator.playbook.quoting import utf16le_hex
from orchestrator.secrets import Secret, SecretStore
from orchestrator.transports import kinds

RUN_WIDE = "uninstall_password"  # the template secret the CLI flags give (its name since 0.1)
PER_PRODUCT = "uninstall_passwords"  # in a host's ``secrets``: product id → its own secret
_INVENTORY = "uninstall_password "  # prefix of the template secrets the inventory's refs give


@dataclass(frozen=True)
class Choice:
    """The reference one protected product of a host will use; ``entry`` None: none given."""

    product: str
    entry: UninstallPassword | None

    def to_dict(self) -> dict[str, str | None]:
        entry = self.entry
        return {
            "product": self.product,
            "reference": None if entry is None else entry.describe(),
            "given_by": None if entry is None else entry.owner,
            "at": None if entry is None else entry.origin,
        }

    def describe(self) -> str:
        if self.entry is None:
            return (
                f"{self.product}: no uninstall password given; if it is protected, its removal "
                "fails (msiexec 1603)"
            )
        where = self.entry.owner + (f", {self.entry.origin}" if self.entry.origin else "")
        return f"{self.product}: uninstall password from {self.entry.describe()} ({where})"


def run_wide(env: str | None, file: Path | None) -> UninstallPassword | None:
    """The command line's reference, the default under every inventory reference."""
    if env and file:
        raise InputError("give the uninstall password once: --uninstall-password-env or -file")
    if env:
        return UninstallPassword(SecretRef(env=env), "--uninstall-password-env", "")
    if file:
        return UninstallPassword(SecretRef(file=str(file)), "--uninstall-password-file", "")
    return None


def entry_for(
    host: Host, product: str, default: UninstallPassword | None
) -> UninstallPassword | None:
    own = host.uninstall_passwords
    return own.get(product) or own.get(EVERY_PRODUCT) or default


def platform_of(host: Host) -> str:
    return kinds.platform_of(host.transport, host.platform)


def protected(catalog: Catalog, platform: str) -> list[str]:
    """Product ids whose removal on ``platform`` takes a password, in removal order."""
    return [p.id for p in catalog.ordered() if p.on(platform).get("password", "none") != "none"]


def choices(
    host: Host,
    platform: str,
    catalog: Catalog,
    default: UninstallPassword | None,
    products: Iterable[str] | None = None,
) -> list[Choice]:
    """For each protected product (of ``products``, when given) the reference it will use."""
    wanted = None if products is None else set(products)
    return [
        Choice(pid, entry_for(host, pid, default))
        for pid in protected(catalog, platform)
        if wanted is None or pid in wanted
    ]


def check_products(hosts: Sequence[Host], catalog: Catalog) -> None:
    """A reference for a product the catalog does not know is a typo, and one for a product whose
    password kremove cannot pass (``password: none`` on every platform, such as Endpoint Agent,
    whose property no source names) would be dropped while its removal fails: one line naming it,
    and the catalog's ``password_route`` for turning that protection off where it has one."""
    for host in hosts:
        for product, entry in sorted(host.uninstall_passwords.items()):
            if product == EVERY_PRODUCT:
                continue
            if product not in catalog.products:
                what = "which is not a catalog product id"
            elif not _takes_none(catalog, product):
                continue
            else:
                route = catalog.products[product].windows.get("password_route")
                what = "which takes none that kremove can pass" + (
                    f" (if it is protected: {route})" if route else ""
                )
            raise InventoryError(
                f"{entry.owner}: uninstall password for {product!r}, {what}; products that "
                f"take one: {', '.join(_protected_ids(catalog))}",
                file=entry.origin or host.source,
            )


def _takes_none(catalog: Catalog, product: str) -> bool:
    entry = catalog.products[product]
    return all(entry.on(name).get("password", "none") == "none" for name in entry.platforms)


def _protected_ids(catalog: Catalog) -> list[str]:
    platforms = {name for p in catalog.products.values() for name in p.platforms}
    return sorted({pid for name in platforms for pid in protected(catalog, name)})


def fetch(
    hosts: Sequence[Host], store: SecretStore, default: UninstallPassword | None
) -> dict[str, Secret]:
    """Every uninstall password the hosts' references and the command line name, fetched once
    per reference (a prompt: once per place it was written) before anything connects; each known
    to the redactor with the form Network Agent receives (hex of its UTF-16LE bytes)."""
    found: dict[str, Secret] = {}
    if default is not None:
        found[RUN_WIDE] = _get(store, default, "uninstall password")
    for host in hosts:
        # The default first: prompts ask in a stable order.
        entries = sorted(
            host.uninstall_passwords.items(), key=lambda i: (i[0] != EVERY_PRODUCT, i[0])
        )
        for product, entry in entries:
            key = _key(product, entry)
            if key not in found:
                what = "uninstall password" + (
                    "" if product == EVERY_PRODUCT else f" for {product}"
                )
                where = entry.owner + (f", {entry.origin}" if entry.origin else "")
                found[key] = _get(store, entry, f"{what} ({where})")
    return found


def _get(store: SecretStore, entry: UninstallPassword, what: str) -> Secret:
    """``what`` names it in messages and is what a prompt asks for."""
    secret = store.get(entry.ref, what, kind=what)
    store.redactor.add(secret.derive(utf16le_hex))
    return secret


def _key(product: str, entry: UninstallPassword) -> str:
    """The template secret of one reference: equal references share it, except prompts, which
    are asked once per level and product they were written for (another group's may differ)."""
    if entry.ref.prompt:
        return f"{_INVENTORY}prompt {entry.owner} {product}"
    return f"{_INVENTORY}{entry.describe()}"


def for_host(host: Host, secrets: Mapping[str, Secret]) -> dict[str, Any]:
    """The uninstall passwords in ``host``'s template context: its default as
    ``uninstall_password`` and, under ``uninstall_passwords``, each product's own."""
    own = host.uninstall_passwords
    default_entry = own.get(EVERY_PRODUCT)
    default = (
        secrets.get(_key(EVERY_PRODUCT, default_entry))
        if default_entry is not None
        else secrets.get(RUN_WIDE)
    )
    per_product = {
        product: secrets[_key(product, entry)]
        for product, entry in own.items()
        if product != EVERY_PRODUCT and _key(product, entry) in secrets
    }
    return {RUN_WIDE: default, PER_PRODUCT: per_product}


def run_wide_secrets(secrets: Mapping[str, Any] | None) -> dict[str, Any]:
    """Template secrets other than uninstall passwords (none today), passed on as they are."""
    return {
        k: v for k, v in (secrets or {}).items() if k != RUN_WIDE and not k.startswith(_INVENTORY)
    }


def for_product(secrets: Mapping[str, Any], product: str) -> dict[str, Any]:
    """A host's ``secrets`` as a step rendered for ``product`` sees them: its own password."""
    own = secrets.get(PER_PRODUCT) or {}
    return {**secrets, RUN_WIDE: own.get(product, secrets.get(RUN_WIDE))}


def missing(
    hosts: Sequence[Host],
    platform_of: Callable[[Host], str],
    catalog: Catalog,
    default: UninstallPassword | None,
) -> dict[tuple[str, ...], list[str]]:
    """Protected products without any reference, grouped: product ids → the hosts lacking them."""
    lacking: dict[tuple[str, ...], list[str]] = {}
    for host in hosts:
        none = tuple(
            c.product for c in choices(host, platform_of(host), catalog, default) if c.entry is None
        )
        if none:
            lacking.setdefault(none, []).append(host.name)
    return lacking
