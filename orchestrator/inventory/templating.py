"""``{{ var }}`` references in Ansible inventory values, resolved per host as Ansible does.

A templated connection setting (``ansible_user: "{{ deploy_user }}"``) is kept as ``Templated``
until the host's variables are merged (resolve.py), then evaluated with that host's variables,
later levels winning, plus the magic variables an inventory may use (``inventory_hostname``,
``inventory_hostname_short``, ``group_names``, ``groups``). Evaluation is Jinja2's immutable
sandbox with ``StrictUndefined`` and a short list of filters. ``lookup()`` exists only where a
secret is expected (a password variable), and only as the env and file references of
ansible_secrets.py: there the value must come out as a reference (a lookup, a ``!vault`` value
or a password variable), never as text. Variables a template names are resolved on demand, at
most ``MAX_DEPTH`` deep; an undefined one is one line naming the file:line, host and variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateError, UndefinedError, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from orchestrator.inventory.ansible_secrets import lookup_path
from orchestrator.inventory.model import SecretRef, VaultText
from orchestrator.inventory.raw import Owner, Value
from orchestrator.inventory.settings import ENV_NAME, show
from orchestrator.inventory.vault import VaultedVar, VaultError, keyring, problem

MAX_DEPTH = 16
SECRET_FORMS = (
    "only {{ lookup('env', 'VAR') }}, {{ lookup('file', 'PATH') }}, a !vault value or a "
    "variable holding one of them is accepted here"
)
# Ansible's filters an inventory value plausibly uses, and Jinja2's harmless ones.
SAFE_FILTERS = (
    *("abs", "capitalize", "count", "d", "default", "first", "float", "format", "int"),
    *("join", "last", "length", "list", "lower", "max", "min", "replace", "reverse"),
    *("round", "sort", "string", "title", "trim", "truncate", "unique", "upper"),
)
_SINGLE = re.compile(r"\s*\{\{-?(?P<expr>(?:(?!\{\{|\}\}|\{%|\{#).)*?)-?\}\}\s*\Z", re.DOTALL)


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


@dataclass(frozen=True)
class Templated:
    """A setting's value still to be evaluated with its host's variables. ``var`` is the
    Ansible variable it was written as; ``owner`` the level that wrote it ("group 'web'")."""

    text: str
    var: str
    owner: str = field(default="", compare=False)

    def describe(self) -> str:
        return f"template {show(self.text)}"


class _Refused(Exception):
    """Why a template cannot be used; the caller says where it was written."""


def _bool(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on", "y")


def _mandatory(value: Any) -> Any:
    if isinstance(value, StrictUndefined):
        str(value)  # raises the UndefinedError naming the variable
    return value


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.filters = {name: env.filters[name] for name in SAFE_FILTERS}
    env.filters.update({"bool": _bool, "mandatory": _mandatory})
    env.globals = {"range": env.globals["range"]}
    return env


_ENV = _environment()


class HostVars:
    """One host's variables under their Ansible names, templates evaluated when first read."""

    def __init__(self, host: str, entries: Mapping[str, Value], magic: Mapping[str, Any]) -> None:
        self.host = host
        self.owner = Owner("host", host)
        self.entries = entries
        self.magic = magic
        self._plain: dict[str, Any] = {}

    def setting(self, value: Value, *, secret: bool) -> Any:
        """The value of a templated setting: text for a setting, a SecretRef for a secret."""
        templated = value.value
        assert isinstance(templated, Templated)
        return self._evaluate(templated.text, value, templated.var, secret, [templated.var])

    def text(self, value: Value, var: str) -> Any:
        """A free var's value with its templates evaluated (kremove reads a few itself)."""
        if not is_template(value.value):
            return value.value
        return self._evaluate(value.value, value, var, False, [var])

    def _evaluate(self, text: str, where: Value, var: str, secret: bool, stack: list[str]) -> Any:
        try:
            if secret:
                return self._secret(text, stack)
            return self._render(text, stack)
        except _Refused as exc:
            raise self.owner.error(str(exc), where.origin, var) from None

    def _secret(self, text: str, stack: list[str]) -> SecretRef:
        single = _SINGLE.match(text)
        if single is None:
            raise _Refused(f"{SECRET_FORMS}; kremove evaluates no other template here")
        value = self._expression(single["expr"], stack, secret=True)
        if isinstance(value, SecretRef):
            return value
        if isinstance(value, VaultedVar):
            return _vault_ref(value.vault)
        if isinstance(value, str) and is_template(value):
            return self._secret(value, stack)
        raise _Refused(
            f"{SECRET_FORMS}; this template gives plaintext (never accepted as a password)"
        )

    def _render(self, text: str, stack: list[str]) -> Any:
        single = _SINGLE.match(text)
        if single is not None:  # one expression: its value as is (a number stays a number)
            return self._expression(single["expr"], stack, secret=False)
        context = self._context(text, stack, secret=False)
        try:
            return _ENV.from_string(text).render(context)
        except _Refused:
            raise
        except (TemplateError, SecurityError, TypeError, ValueError, ArithmeticError) as exc:
            raise _Refused(_why(exc)) from None

    def _expression(self, expr: str, stack: list[str], *, secret: bool) -> Any:
        context = self._context("{{" + expr + "}}", stack, secret=secret)
        try:
            value = _ENV.compile_expression(expr, undefined_to_none=False)(**context)
            if isinstance(value, StrictUndefined):
                str(value)
        except _Refused:
            raise
        except (TemplateError, SecurityError, TypeError, ValueError, ArithmeticError) as exc:
            raise _Refused(_why(exc)) from None
        return value

    def _context(self, text: str, stack: list[str], *, secret: bool) -> dict[str, Any]:
        """The variables ``text`` names that this host defines, each evaluated first."""
        try:
            names = meta.find_undeclared_variables(_ENV.parse(text))
        except TemplateError as exc:
            raise _Refused(f"the template cannot be read: {_why(exc)}") from None
        context: dict[str, Any] = {
            "lookup": _lookup if secret else _no_lookup,
            "query": _not_a_reference if secret else _no_lookup,
            "q": _not_a_reference if secret else _no_lookup,
        }
        for name in names - context.keys():
            if name in self.magic:
                context[name] = self.magic[name]
            elif name in self.entries:
                context[name] = self._variable(name, stack, secret=secret)
        return context

    def _variable(self, name: str, stack: list[str], *, secret: bool) -> Any:
        if name in stack:
            loop = " -> ".join([*stack[stack.index(name) :], name])
            raise _Refused(f"variables refer to each other in a loop: {loop}")
        if len(stack) >= MAX_DEPTH:
            raise _Refused(f"templates nest more than {MAX_DEPTH} variables deep at {name!r}")
        if not secret and name in self._plain:
            return self._plain[name]
        entry = self.entries[name]
        value = entry.value
        if isinstance(value, Templated):
            value = value.text
        if isinstance(value, SecretRef):
            if not secret:
                raise _Refused(f"{name!r} is a password, usable only where a password is expected")
            return value
        if isinstance(value, VaultedVar):
            return value if secret else self._opened(name, value, entry)
        if is_template(value):
            inner = [*stack, name]
            try:
                value = self._expression_or_text(value, inner, secret=secret)
            except _Refused as exc:  # said where the inner template was written
                raise self.owner.error(str(exc), entry.origin, name) from None
        if not secret:
            self._plain[name] = value
        return value

    def _expression_or_text(self, text: str, stack: list[str], *, secret: bool) -> Any:
        single = _SINGLE.match(text)
        if secret and single is not None:
            return self._expression(single["expr"], stack, secret=True)
        return self._render(text, stack)

    def _opened(self, name: str, value: VaultedVar, entry: Value) -> str:
        """A vaulted variable a setting's template reads: decrypted, as Ansible does."""
        try:
            return keyring().open(value.vault).decode("utf-8-sig").strip()
        except VaultError as exc:
            raise self.owner.error(f"vault value: {exc}", entry.origin, name) from None
        except UnicodeDecodeError:
            raise self.owner.error(
                "decrypted, the vault value is not UTF-8", entry.origin, name
            ) from None


def _vault_ref(vault: VaultText) -> SecretRef:
    wrong = problem(vault)
    if wrong is not None:
        raise _Refused(
            f"!vault value is not usable Ansible Vault text ({wrong}); "
            "encrypt it again with ansible-vault encrypt_string"
        )
    return SecretRef(vault=vault)


def _lookup(*args: Any, **kwargs: Any) -> SecretRef:
    """``lookup('env', 'VAR')`` and ``lookup('file', 'PATH')`` as references; nothing else."""
    if len(args) != 2 or kwargs or not all(isinstance(arg, str) for arg in args):
        raise _Refused(f"{SECRET_FORMS}; this lookup() is not one of them")
    plugin, term = args
    name = plugin.removeprefix("ansible.builtin.")
    if name not in ("env", "file") or not term.strip():
        raise _Refused(f"{SECRET_FORMS}; lookup({show(plugin)}, ...) is not one of them")
    if name == "file":
        return SecretRef(file=lookup_path(term.strip()))
    if not ENV_NAME.match(term.strip()):
        raise _Refused(f"{show(term)} is not an environment variable name")
    return SecretRef(env=term.strip())


def _not_a_reference(*args: Any, **kwargs: Any) -> Any:
    raise _Refused(f"{SECRET_FORMS}; kremove evaluates no other lookup")


def _no_lookup(*args: Any, **kwargs: Any) -> Any:
    raise _Refused(
        "kremove evaluates lookups only as {{ lookup('env'|'file', ...) }} where a password is "
        "expected (ansible_password, ansible_become_password ...); give the value itself here"
    )


def _why(exc: BaseException) -> str:
    if isinstance(exc, UndefinedError):
        text = str(exc).replace("'StrictUndefined' ", "")
        return f"{text}; define it in the host's or a group's vars"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
