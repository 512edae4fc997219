"""The one rendering path: sandboxed Jinja2, strict about undefined names and unquoted values.

Every ``{{ ... }}`` must end in a quoting filter (``sh``, ``cmd``, ``shjoin``, ``cmdjoin``), be a
number, or be marked trusted with ``raw`` (catalog constants only). Secrets render to their value
only in the text that is sent; the text that is shown, stored and logged carries the mask.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from orchestrator.errors import PlaybookError
from orchestrator.playbook.quoting import quote_cmd, quote_sh, utf16le_hex
from orchestrator.secrets import MASK, Secret, reveal_context, revealing


class Quoted(str):
    """Text that is safe to place in a command as it is."""

    __slots__ = ()


@dataclass(frozen=True, repr=False)
class RenderedCommand:
    """``text`` goes to the host and nowhere else; ``shown`` is for every other purpose."""

    text: str
    shown: str

    def __repr__(self) -> str:
        return f"RenderedCommand({self.shown!r})"

    __str__ = __repr__


class _Unquoted(Exception):
    pass


def _finalize(value: Any) -> Any:
    if isinstance(value, Quoted):
        return value
    if isinstance(value, Secret):
        if not value.quoted:
            raise _Unquoted(
                f"secret {value.name!r} must pass through a quoting filter (| sh, | cmd)"
            )
        return value.reveal() if revealing() else MASK
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _Unquoted(
        f"a {type(value).__name__} value must pass through a quoting filter (| sh, | cmd) "
        "or be marked trusted with | raw"
    )


def _quoting(fn: Any) -> Any:
    def apply(value: Any) -> Any:
        if isinstance(value, Secret):
            return value.derive(fn, quoted=True)
        return Quoted(fn(str(value)))

    return apply


def _joining(fn: Any) -> Any:
    def apply(values: Iterable[Any], sep: str = " ") -> Quoted:
        items = list(values)
        if any(isinstance(v, Secret) for v in items):
            raise _Unquoted("secrets cannot be joined into a list; quote each one where it is used")
        return Quoted(sep.join(fn(str(v)) for v in items))

    return apply


def _raw(value: Any) -> Quoted:
    if isinstance(value, Secret):
        raise _Unquoted(f"secret {value.name!r} cannot be marked raw; quote it with | sh or | cmd")
    return Quoted(str(value))


def _hex16(value: Any) -> Any:
    if isinstance(value, Secret):
        return value.derive(utf16le_hex)
    return utf16le_hex(str(value))


class Renderer:
    """Renders step templates found under ``search_path`` (later directories are overridden)."""

    def __init__(self, search_path: Sequence[Path]) -> None:
        self.env = ImmutableSandboxedEnvironment(
            loader=jinja2.FileSystemLoader([str(p) for p in search_path]),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            finalize=_finalize,
        )
        self.env.filters.update(
            sh=_quoting(quote_sh),
            cmd=_quoting(quote_cmd),
            shjoin=_joining(quote_sh),
            cmdjoin=_joining(quote_cmd),
            raw=_raw,
            utf16le_hex=_hex16,
        )

    def check_expression(self, expression: str, where: str) -> None:
        """A ``when`` condition must at least parse; it is evaluated per host and product."""
        try:
            self.env.compile_expression(expression)
        except jinja2.TemplateSyntaxError as exc:
            raise PlaybookError(
                f"{where}: {expression!r} is not an expression: {exc.message}"
            ) from None

    def evaluate(self, expression: str, context: Mapping[str, Any], where: str) -> bool:
        """The truth of a ``when`` condition, in the same sandbox as templates."""
        try:
            value = self.env.compile_expression(expression, undefined_to_none=False)(**context)
            return bool(value)
        except jinja2.UndefinedError as exc:
            raise PlaybookError(f"{where}: when {expression!r}: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise PlaybookError(f"{where}: when {expression!r}: {exc}") from None

    def render(self, template: str, context: Mapping[str, Any]) -> RenderedCommand:
        return self._render(template, lambda: self.env.get_template(template), context)

    def render_string(
        self, source: str, context: Mapping[str, Any], name: str = "<inline>"
    ) -> RenderedCommand:
        return self._render(name, lambda: self.env.from_string(source), context)

    def _render(self, name: str, load: Any, context: Mapping[str, Any]) -> RenderedCommand:
        try:
            tmpl: jinja2.Template = load()
            shown = tmpl.render(context)
            with reveal_context() as leaked:
                text = tmpl.render(context)
        except jinja2.TemplateNotFound as exc:
            raise PlaybookError(
                f"template {exc.name} not found in the playbooks directories"
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise PlaybookError(
                f"template syntax error: {exc.message}", file=exc.filename or name, line=exc.lineno
            ) from None
        except jinja2.UndefinedError as exc:
            raise PlaybookError(
                f"template {name}: {exc.message}; define it in the inventory vars or the catalog"
            ) from None
        except jinja2.exceptions.SecurityError as exc:
            raise PlaybookError(f"template {name}: not allowed in the sandbox: {exc}") from None
        except (_Unquoted, ValueError) as exc:
            raise PlaybookError(f"template {name}: {exc}") from None
        except jinja2.TemplateError as exc:
            raise PlaybookError(f"template {name}: {exc}") from None
        if leaked:
            raise PlaybookError(
                f"template {name}: secret {leaked[0]!r} was joined into text (~ or format); "
                "output it on its own with {{ value | sh }} or {{ value | cmd }}"
            )
        return RenderedCommand(text=text, shown=shown)
