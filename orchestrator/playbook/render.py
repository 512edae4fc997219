"""The one rendering path: sandboxed Jinja2, strict about undefined names and unquoted values.

Every ``{{ ... }}`` must end in a quoting filter (``sh``, ``cmd``, ``shjoin``, ``cmdjoin``), be a
number, or be marked trusted with ``raw`` (catalog constants only).

A template renders once. A secret it outputs becomes a placeholder, unique to that render, which
the text that is shown, stored and compared carries as the mask and only the text sent to the host
replaces with the secret's quoted value. Nothing in a template can read a secret or a placeholder
(their attributes, length, characters, text), so no branch can depend on either: the text sent is
the text shown with the secret where the mask is, whatever the template says.
"""

from __future__ import annotations

import contextvars
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from orchestrator.errors import PlaybookError
from orchestrator.playbook.quoting import quote_cmd, quote_sh, utf16le_hex
from orchestrator.secrets import MASK, Secret, text_watch

# A placeholder is <U+FDD0>nonce:index<U+FDD1>. These two are Unicode noncharacters, reserved for
# a program's internal use: no command needs them, so text holding one is refused wherever a
# template could make or move it, and a placeholder can only be where a secret was output.
_OPEN, _CLOSE = "\ufdd0", "\ufdd1"
_PLACEHOLDER = re.compile(f"{_OPEN}([0-9a-f]{{32}}):([0-9]+){_CLOSE}")


class Quoted(str):
    """Text that is safe to place in a command as it is."""

    __slots__ = ()


class RenderedCommand:
    """One rendered step. ``shown`` serves every purpose but one: the plan, the ledger, the drift
    check, messages. ``text`` is what the host receives, made when asked for (by the engine, just
    before it sends it): ``shown`` with each mask replaced by the quoted secret output there."""

    __slots__ = ("_body", "_secrets", "shown")

    def __init__(self, body: str, secrets: Sequence[Secret] = ()) -> None:
        self._body = body
        self._secrets = tuple(secrets)
        self.shown = _PLACEHOLDER.sub(MASK, body) if secrets else body

    @property
    def text(self) -> str:
        if not self._secrets:
            return self._body
        return _PLACEHOLDER.sub(lambda m: self._secrets[int(m[2])].reveal(), self._body)

    def __repr__(self) -> str:
        return f"RenderedCommand({self.shown!r})"

    __str__ = __repr__


class _Unquoted(Exception):
    pass


class _Captured(Exception):
    """Text holding a secret's placeholder reached something other than the output."""

    def __init__(self) -> None:
        super().__init__(
            "a secret's output was captured ({% set %} block, macro or {% filter %}) and used "
            "as text; output a secret only as {{ value | sh }} or {{ value | cmd }} in the command"
        )


class _Reserved(_Captured):
    """A value from outside (an inventory var, a catalog string) holds a placeholder's marker."""

    def __init__(self) -> None:
        Exception.__init__(
            self,
            "a value holds U+FDD0 or U+FDD1, characters reserved for kremove's secret "
            "placeholders; remove them from the inventory, catalog or host data",
        )


def _captured_or_reserved(value: str) -> _Captured:
    placeholders = _rendering.get()
    if placeholders is not None and placeholders.nonce in value:
        return _Captured()
    return _Reserved()


class _Placeholders:
    """The secrets one render output, in order, each behind a placeholder unique to the render."""

    def __init__(self) -> None:
        self.nonce = os.urandom(16).hex()
        self.secrets: list[Secret] = []

    def put(self, secret: Secret) -> str:
        self.secrets.append(secret)
        return f"{_OPEN}{self.nonce}:{len(self.secrets) - 1}{_CLOSE}"

    def check(self, body: str) -> None:
        """Each placeholder exactly once in the output, and no stray marker: nothing captured."""
        found = [m for m in _PLACEHOLDER.finditer(body) if m[1] == self.nonce]
        markers = body.count(_OPEN) + body.count(_CLOSE)
        if sorted(int(m[2]) for m in found) != list(range(len(self.secrets))) or markers != 2 * len(
            found
        ):
            raise _Captured()


_rendering: contextvars.ContextVar[_Placeholders | None] = contextvars.ContextVar(
    "rendering", default=None
)


def _marked(value: Any) -> bool:
    return isinstance(value, str) and (_OPEN in value or _CLOSE in value)


def _refuse_markers(value: Any, depth: int = 0) -> None:
    """Refuse a placeholder's text, also inside lists and mappings (``[x] | shjoin``)."""
    if _marked(value):
        raise _captured_or_reserved(value)
    if depth > 8:  # deeper data is not something a filter quotes into a command
        return
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _refuse_markers(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_markers(key, depth + 1)
            _refuse_markers(item, depth + 1)


def _refuse_reading(obj: Any) -> None:
    if isinstance(obj, Secret):
        raise SecurityError(
            f"secret {obj.name!r} cannot be read in a template; output it with "
            "{{ value | sh }} or {{ value | cmd }}, or test it with 'is none'"
        )
    if _marked(obj):
        raise _captured_or_reserved(obj)


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, in which secrets and placeholders are opaque."""

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, Secret) or _marked(obj):  # the `attr` filter asks this
            return False
        return super().is_safe_attribute(obj, attr, value)

    def getattr(self, obj: Any, attribute: str) -> Any:
        _refuse_reading(obj)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _refuse_reading(obj)
        return super().getitem(obj, argument)

    def preprocess(self, source: str, name: str | None = None, filename: str | None = None) -> str:
        if _OPEN in source or _CLOSE in source:
            raise jinja2.TemplateSyntaxError(
                "the characters U+FDD0 and U+FDD1 are reserved for kremove", 1, name, filename
            )
        return super().preprocess(source, name, filename)


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that refuses a placeholder's text in any argument."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            _refuse_markers(value)
        return fn(*args, **kwargs)

    pass_arg = getattr(fn, "jinja_pass_arg", None)  # pass_context / pass_environment / ...
    if pass_arg is not None:
        guarded.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    return guarded


def _finalize(value: Any) -> Any:
    if isinstance(value, Quoted):
        return value
    if isinstance(value, Secret):
        if not value.quoted:
            raise _Unquoted(
                f"secret {value.name!r} must pass through a quoting filter (| sh, | cmd)"
            )
        placeholders = _rendering.get()
        if placeholders is None:
            raise _Unquoted(f"secret {value.name!r} can only be output while a command renders")
        return placeholders.put(value)
    if _marked(value):
        raise _captured_or_reserved(value)
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
        for item in items:
            _refuse_markers(item)  # a generator's items are seen only here
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
        self.env = _Sandbox(
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
        # Every filter, Jinja's own included: none may take a placeholder's text as input.
        self.env.filters = {name: _guarded(fn) for name, fn in self.env.filters.items()}

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
        prefix = f"{where}: when {expression!r}"
        try:
            with text_watch() as turned:
                truth = bool(
                    self.env.compile_expression(expression, undefined_to_none=False)(**context)
                )
        except jinja2.UndefinedError as exc:
            raise PlaybookError(f"{prefix}: {exc.message}") from None
        except SecurityError as exc:
            raise PlaybookError(f"{prefix}: not allowed in the sandbox: {exc}") from None
        except (jinja2.TemplateError, _Unquoted, _Captured, TypeError, ValueError) as exc:
            raise PlaybookError(f"{prefix}: {_one_line(exc)}") from None
        if turned:
            raise PlaybookError(
                f"{prefix}: secret {turned[0]!r} cannot be read in a condition; "
                "test only whether it is set ('is none', 'is not none')"
            )
        return truth

    def render(self, template: str, context: Mapping[str, Any]) -> RenderedCommand:
        return self._render(template, lambda: self.env.get_template(template), context)

    def render_string(
        self, source: str, context: Mapping[str, Any], name: str = "<inline>"
    ) -> RenderedCommand:
        return self._render(name, lambda: self.env.from_string(source), context)

    def _render(self, name: str, load: Any, context: Mapping[str, Any]) -> RenderedCommand:
        placeholders = _Placeholders()
        token = _rendering.set(placeholders)
        try:
            with text_watch() as turned:
                tmpl: jinja2.Template = load()
                body = tmpl.render(context)
            placeholders.check(body)
        except jinja2.TemplateNotFound as exc:
            raise PlaybookError(
                f"template {_one_line(exc.name)} not found in the playbooks directories"
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise PlaybookError(
                f"template syntax error: {exc.message}", file=exc.filename or name, line=exc.lineno
            ) from None
        except jinja2.UndefinedError as exc:
            raise PlaybookError(
                f"template {name}: {exc.message}; define it in the inventory vars or the catalog"
            ) from None
        except SecurityError as exc:
            raise PlaybookError(
                f"template {name}: not allowed in the sandbox: {_one_line(exc)}"
            ) from None
        except (jinja2.TemplateError, _Unquoted, _Captured, TypeError, ValueError) as exc:
            raise PlaybookError(f"template {name}: {_one_line(exc)}") from None
        finally:
            _rendering.reset(token)
        if turned:
            raise PlaybookError(
                f"template {name}: secret {turned[0]!r} was joined into text (~, format or a "
                "filter that reads text); output it on its own with {{ value | sh }} or "
                "{{ value | cmd }}"
            )
        return RenderedCommand(body, placeholders.secrets)


def _one_line(exc: object) -> str:
    """A message without placeholders or line breaks (Jinja's may quote a template's text)."""
    text = _PLACEHOLDER.sub(MASK, str(exc)).replace(_OPEN, "").replace(_CLOSE, "")
    return " ".join(text.split())
