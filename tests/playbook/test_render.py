"""Rendering: the sandbox, strict undefined names, the quoting rule, and secret masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import PlaybookError
from orchestrator.playbook.render import Renderer
from orchestrator.secrets import MASK, Redactor, Secret

SECRET_VALUE = "Tr0ub4dor&3 'quoted'"


@pytest.fixture
def renderer() -> Renderer:
    return Renderer([])


@pytest.fixture
def secret() -> Secret:
    return Secret(SECRET_VALUE, "kes uninstall password")


def test_secret_is_real_only_in_the_sent_text(renderer: Renderer, secret: Secret) -> None:
    cmd = renderer.render_string(
        "msiexec /x {{ code | cmd }} KLLOGIN={{ login | cmd }} KLPASSWD={{ pw | cmd }} /qn",
        {"code": "{0F05E4E5-5A89-482C-9A62-47CC58643788}", "login": "KLAdmin", "pw": secret},
    )
    assert SECRET_VALUE.replace('"', "") not in cmd.shown
    assert f"KLPASSWD={MASK} /qn" in cmd.shown
    assert "KLPASSWD=" in cmd.text and MASK not in cmd.text
    assert SECRET_VALUE not in repr(cmd) and SECRET_VALUE not in str(cmd)


def test_derived_secret_stays_secret(renderer: Renderer, secret: Secret) -> None:
    cmd = renderer.render_string("KLUNINSTPASSWD={{ pw | utf16le_hex | cmd }}", {"pw": secret})
    assert cmd.shown == f"KLUNINSTPASSWD={MASK}"
    assert cmd.text == "KLUNINSTPASSWD=" + SECRET_VALUE.encode("utf-16-le").hex().upper()


def test_secret_never_shows_in_str_repr_or_format(secret: Secret) -> None:
    for text in (str(secret), repr(secret), f"{secret}", f"{secret}"):
        assert SECRET_VALUE not in text


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("echo {{ name }}", "quoting filter"),
        ("echo {{ pw }}", "quoting filter"),
        ("echo {{ ('x' ~ pw) | sh }}", "joined into text"),
        ("echo {{ pw | raw }}", "cannot be marked raw"),
        ("echo {{ [pw] | shjoin }}", "cannot be joined"),
        ("echo {{ missing | sh }}", "'missing' is undefined"),
        ("echo {{ name.__class__.__mro__ | raw }}", "sandbox"),
        ("echo {% if %}", "syntax error"),
    ],
)
def test_render_errors_are_playbook_errors_without_the_secret(
    renderer: Renderer, secret: Secret, template: str, message: str
) -> None:
    with pytest.raises(PlaybookError) as caught:
        renderer.render_string(template, {"name": "x", "pw": secret})
    assert message in str(caught.value)
    assert SECRET_VALUE not in str(caught.value)
    assert "\n" not in str(caught.value)


def test_lists_are_quoted_item_by_item(renderer: Renderer) -> None:
    cmd = renderer.render_string("dpkg -s {{ pkgs | shjoin }}", {"pkgs": ["kesl", "a b", "$(id)"]})
    assert cmd.text == "dpkg -s kesl 'a b' '$(id)'"


def test_templates_load_from_later_directories_first(tmp_path: Path) -> None:
    base, override = tmp_path / "base", tmp_path / "override"
    for d, word in ((base, "base"), (override, "override")):
        d.mkdir()
        (d / "t.j2").write_text(f"echo {word}")
    assert Renderer([override, base]).render("t.j2", {}).text == "echo override"


def test_redactor_scrubs_values_and_ignores_tiny_ones() -> None:
    redactor = Redactor()
    redactor.add(Secret(SECRET_VALUE, "a"))
    redactor.add(Secret("ab", "too short to mask safely"))
    assert (
        redactor.scrub(f"error: bad password {SECRET_VALUE} for ab")
        == f"error: bad password {MASK} for ab"
    )
