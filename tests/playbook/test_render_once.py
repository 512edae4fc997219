"""What is shown is what is sent (issue 15, M2): a template renders once, its secrets are opaque.

A template must not be able to tell the text kremove shows (plan, ledger, drift check) from the
text it sends, nor read a secret's value; the only difference between the two texts is a secret's
quoted value where the shown text has the mask.
"""

from __future__ import annotations

import shlex

import pytest

from orchestrator.errors import PlaybookError
from orchestrator.playbook.quoting import quote_cmd, utf16le_hex
from orchestrator.playbook.render import Renderer
from orchestrator.secrets import MASK, Secret

VALUE = "Kx7-s3cret 'M2' & $(id)"


@pytest.fixture
def renderer() -> Renderer:
    return Renderer([])


def context() -> dict[str, object]:
    return {
        "secrets": {"uninstall_password": Secret(VALUE, "uninstall password")},
        "packages": ["kesl"],
    }


def sent_as_shown(shown: str, quoted: str) -> str:
    """The text a host must receive for ``shown``: each mask replaced by the quoted secret."""
    return shown.replace(MASK, quoted)


@pytest.mark.parametrize(
    "template",
    [
        # The form the review named: a comparison with the mask decides the branch.
        "{% if secrets.uninstall_password | sh == '********' %}echo SHOWN"
        "{% else %}echo SENT{% endif %}; dpkg --purge {{ packages | shjoin }}"
        " --pw {{ secrets.uninstall_password | sh }}",
        "{% if secrets.uninstall_password == '********' %}echo SHOWN{% else %}echo SENT{% endif %}",
        "{% if secrets.uninstall_password is string %}echo SHOWN{% else %}echo SENT{% endif %}"
        " {{ secrets.uninstall_password | sh }} {{ secrets.uninstall_password | sh }}",
    ],
)
def test_the_text_sent_is_the_text_shown_with_the_secret_in_place_of_the_mask(
    renderer: Renderer, template: str
) -> None:
    cmd = renderer.render_string(template, context())
    assert VALUE not in cmd.shown
    assert cmd.text == sent_as_shown(cmd.shown, shlex.quote(VALUE))


def test_a_derived_secret_is_substituted_in_its_derived_form(renderer: Renderer) -> None:
    cmd = renderer.render_string(
        "KLUNINSTPASSWD={{ secrets.uninstall_password | utf16le_hex | cmd }} /qn", context()
    )
    assert cmd.shown == f"KLUNINSTPASSWD={MASK} /qn"
    assert cmd.text == sent_as_shown(cmd.shown, quote_cmd(utf16le_hex(VALUE)))


@pytest.mark.parametrize(
    "template",
    [
        "{{ secrets.uninstall_password.reveal() | sh }}",
        "{{ secrets.uninstall_password._value | sh }}",
        "{{ secrets.uninstall_password.derive | sh }}",
        "{{ (secrets.uninstall_password | sh).reveal() | sh }}",
        "{{ secrets.uninstall_password | attr('reveal') | sh }}",
        "{{ secrets.uninstall_password['_value'] | sh }}",
        "{% if secrets.uninstall_password.reveal() == 'x' %}echo yes{% endif %}",
        "{{ secrets.uninstall_password | length }}",
        "{{ secrets.uninstall_password | list | shjoin }}",
        "{% for c in secrets.uninstall_password %}{{ c | sh }}{% endfor %}",
        "{{ secrets.uninstall_password | string | sh }}",
        "{{ secrets.uninstall_password | lower | sh }}",
        "{{ '%s' % secrets.uninstall_password | sh }}",
        "{{ '{}'.format(secrets.uninstall_password) | sh }}",
    ],
)
def test_a_template_cannot_read_a_secret(renderer: Renderer, template: str) -> None:
    with pytest.raises(PlaybookError) as caught:
        renderer.render_string(template, context())
    message = str(caught.value)
    assert VALUE not in message and "\n" not in message
    assert message.startswith("template <inline>: ")


@pytest.mark.parametrize(
    "template",
    [
        # Capture the secret's output, then decide what to send by looking at it.
        "{% set x %}{{ secrets.uninstall_password | sh }}{% endset %}"
        "{% if x == '********' %}echo SHOWN{% else %}echo SENT{% endif %}",
        "{% set x %}{{ secrets.uninstall_password | sh }}{% endset %}{{ x | raw }}",
        "{% set x %}{{ secrets.uninstall_password | sh }}{% endset %}{{ x | sh }}",
        "{% set x %}{{ secrets.uninstall_password | sh }}{% endset %}{{ [x] | shjoin }}",
        "{% set x %}{{ secrets.uninstall_password | sh }}{% endset %}{{ x | length }}",
        "{% set x %}{{ secrets.uninstall_password | sh }}{% endset %}"
        "{% if '*' in x %}echo SHOWN{% endif %}",
        "{% set x %}{{ secrets.uninstall_password | sh }}{% endset %}{{ x[1:] | raw }}",
        "{% set x %}{{ secrets.uninstall_password | sh }}{% endset %}{{ x.upper() | raw }}",
        "{% set x %}{{ secrets.uninstall_password | sh }}{% endset %}"
        "{% for c in x %}{{ c | raw }}{% endfor %}",
        "{% filter trim %}{{ secrets.uninstall_password | sh }}{% endfilter %}",
        "{% macro m() %}{{ secrets.uninstall_password | sh }}{% endmacro %}{{ m() | raw }}",
        "{% macro m() %}{{ secrets.uninstall_password | sh }}{% endmacro %}"
        "{% if m() == '********' %}echo SHOWN{% endif %}",
    ],
)
def test_a_secrets_output_cannot_be_captured_and_reused(renderer: Renderer, template: str) -> None:
    with pytest.raises(PlaybookError) as caught:
        renderer.render_string(template, context())
    message = str(caught.value)
    assert VALUE not in message and "\n" not in message and MASK not in message


def test_when_conditions_see_the_same_opaque_secret(renderer: Renderer) -> None:
    ctx = context()
    assert renderer.evaluate("secrets.uninstall_password is not none", ctx, "step 'x'")
    assert not renderer.evaluate("secrets.uninstall_password == '********'", ctx, "step 'x'")
    for expression in (
        "secrets.uninstall_password.reveal() == 'x'",
        "secrets.uninstall_password | string == '********'",
        "secrets.uninstall_password | length > 3",
    ):
        with pytest.raises(PlaybookError) as caught:
            renderer.evaluate(expression, ctx, "step 'x'")
        assert VALUE not in str(caught.value) and str(caught.value).startswith("step 'x': when ")


def test_text_written_in_a_template_cannot_forge_a_placeholder(renderer: Renderer) -> None:
    """A placeholder's marker characters can only come from a secret's output, never be typed."""
    cmd = renderer.render_string("echo {{ secrets.uninstall_password | sh }}", context())
    assert cmd.text == f"echo {shlex.quote(VALUE)}"
    for forged in ("echo \ufdd0", "{{ '\\ufdd0' | raw }}", "{{ x | sh }}"):
        with pytest.raises(PlaybookError):
            renderer.render_string(forged, {**context(), "x": "a\ufdd0b"})


def test_the_command_keeps_no_secret_in_its_repr(renderer: Renderer) -> None:
    cmd = renderer.render_string("echo {{ secrets.uninstall_password | sh }}", context())
    for text in (repr(cmd), str(cmd), cmd.shown):
        assert VALUE not in text
