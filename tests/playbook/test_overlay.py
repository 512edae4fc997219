"""--playbooks DIR over the built-in set, key by key, whether or not the built-in set is installed
(docs/playbooks.md, "Overriding the built-in playbooks"): a file replaces the file at its path, a
playbook also the earlier one of its name, catalog.yml merges key by key; the version digest
covers exactly what won."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from orchestrator.errors import PlaybookError
from orchestrator.playbook import loader
from orchestrator.playbook.loader import builtin_dir, load_playbooks

BUILTIN = builtin_dir()
BUILTIN_SET = load_playbooks()
REMOVE = """\
name: windows-remove
platform: windows
description: the site's own removal
steps:
  - {id: site-uninstall, kind: remove, readonly: false, for_each: finding,
     template: windows/site-uninstall.cmd.j2, exit_codes: msiexec}
"""
SITE_TEMPLATE = "site-uninstall {{ finding.evidence.product_code | cmd }}\n"


@pytest.fixture
def no_builtin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An installation whose package lacks orchestrator/_playbooks."""
    monkeypatch.setattr(loader, "builtin_dir", lambda: None)
    yield


def write(d: Path, name: str, text: str) -> Path:
    path = d / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def catalog_only(d: Path) -> Path:
    doc = {
        "products": {
            "kesl": {"linux": {"services": ["kesl", "kesl-site"]}},
            "site-av": {"name": "Site AV", "order": 30, "linux": {"packages": ["site-av"]}},
        },
        "exit_codes": {"msiexec": {1603: "retry"}},
    }
    write(d, "catalog.yml", yaml.safe_dump(doc))
    return d


def test_a_dir_with_only_a_catalog_takes_everything_else_from_the_built_in_set(
    tmp_path: Path,
) -> None:
    builtin = BUILTIN_SET
    site = load_playbooks([catalog_only(tmp_path)])
    kesl = site.catalog.products["kesl"]
    assert kesl.linux["services"] == ("kesl", "kesl-site")  # the one fact replaced, list whole
    assert kesl.linux["packages"] == builtin.catalog.products["kesl"].linux["packages"]
    assert kesl.windows == builtin.catalog.products["kesl"].windows and kesl.sources
    assert site.catalog.products["site-av"].linux_packages == ("site-av",)  # a product added
    assert set(site.catalog.products) == {*builtin.catalog.products, "site-av"}
    # An exit-code table merges code by code.
    assert site.catalog.exit_meaning("msiexec", 1603) == "retry"
    assert site.catalog.exit_meaning("msiexec", 3010) == "reboot"
    assert {n: p.source for n, p in site.playbooks.items()} == {
        n: p.source for n, p in builtin.playbooks.items()
    }
    assert site.version != builtin.version  # the merged catalog is part of what ran


def test_a_dir_with_one_playbook_and_its_template_replaces_that_playbook_only(
    tmp_path: Path,
) -> None:
    remove = write(tmp_path, "windows/remove.yml", REMOVE.replace("windows-remove", "site-remove"))
    write(tmp_path, "windows/site-uninstall.cmd.j2", SITE_TEMPLATE)
    content = load_playbooks([tmp_path])
    chosen = content.playbook_for("windows", "remove")
    assert chosen is not None and chosen.source == str(remove)  # by path, under another name
    assert "windows-remove" not in content.playbooks
    detect = content.playbook_for("windows", "detect")
    assert detect is not None and BUILTIN is not None
    assert detect.source == str(BUILTIN / "windows" / "detect.yml")
    assert content.catalog.products == BUILTIN_SET.catalog.products
    rendered = content.renderer.render(
        "windows/site-uninstall.cmd.j2", {"finding": {"evidence": {"product_code": "{X}"}}}
    )
    assert rendered.shown == "site-uninstall {X}"
    # The built-in templates the overlay does not replace are still found.
    assert content.renderer.env.get_template("windows/detect.cmd.j2").filename == str(
        BUILTIN / "windows" / "detect.cmd.j2"
    )


def test_a_playbook_of_the_same_name_replaces_the_built_in_one_wherever_it_lies(
    tmp_path: Path,
) -> None:
    mine = write(tmp_path, "windows/site.yml", REMOVE)
    write(tmp_path, "windows/site-uninstall.cmd.j2", SITE_TEMPLATE)
    chosen = load_playbooks([tmp_path]).playbook_for("windows", "remove")
    assert chosen is not None and chosen.source == str(mine)


def test_a_template_overrides_the_built_in_file_at_its_path(tmp_path: Path) -> None:
    write(tmp_path, "linux/cleanup.sh.j2", "echo site cleanup\n")
    content = load_playbooks([tmp_path])
    assert content.renderer.render("linux/cleanup.sh.j2", {}).shown == "echo site cleanup"


def test_two_playbooks_with_steps_of_one_kind_for_a_platform_are_refused(tmp_path: Path) -> None:
    """Which of the two would run must not depend on the order of files."""
    extra = write(tmp_path, "windows/extra.yml", REMOVE.replace("windows-remove", "site-remove"))
    write(tmp_path, "windows/site-uninstall.cmd.j2", SITE_TEMPLATE)
    with pytest.raises(PlaybookError) as raised:
        load_playbooks([tmp_path])
    assert raised.value.message.startswith(f"{extra}: its remove steps for windows compete")
    assert "windows/remove.yml ('windows-remove')" in raised.value.message
    assert "\n" not in raised.value.message


def test_two_playbooks_of_one_name_in_one_directory_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "windows/a.yml", REMOVE)
    write(tmp_path, "windows/b.yml", REMOVE)
    with pytest.raises(PlaybookError, match=r"b\.yml: playbook name 'windows-remove' is also"):
        load_playbooks([tmp_path])


def test_a_missing_playbooks_dir_is_still_an_error(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match=f"playbooks directory {tmp_path / 'nope'} does not"):
        load_playbooks([tmp_path / "nope"])


def test_without_the_built_in_set_a_complete_dir_serves_alone(
    tmp_path: Path, no_builtin: None
) -> None:
    assert BUILTIN is not None
    copy = shutil.copytree(BUILTIN, tmp_path / "copy")
    content = load_playbooks([copy])
    assert content.dirs == (copy,)
    assert set(content.playbooks) == set(BUILTIN_SET.playbooks)
    assert content.catalog.products == BUILTIN_SET.catalog.products
    # The same files as the built-in set: the same content, the same version.
    assert content.version == BUILTIN_SET.version


def test_without_the_built_in_set_a_partial_dir_is_named(tmp_path: Path, no_builtin: None) -> None:
    write(tmp_path, "linux/cleanup.sh.j2", "true\n")
    with pytest.raises(PlaybookError) as raised:
        load_playbooks([tmp_path])
    assert raised.value.message == (
        "no catalog.yml found: this installation has no built-in playbooks "
        f"(orchestrator/_playbooks) and {tmp_path} has none; reinstall kremove or pass "
        "--playbooks DIR with a catalog.yml"
    )
    with pytest.raises(
        PlaybookError, match=r"\(orchestrator/_playbooks\) and no --playbooks; reinstall"
    ):
        load_playbooks()


def test_the_version_covers_what_won_and_nothing_that_lost(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    write(lower, "linux/cleanup.sh.j2", "echo lower\n")
    write(upper, "linux/cleanup.sh.j2", "echo upper\n")
    first = load_playbooks([lower, upper]).version
    write(lower, "linux/cleanup.sh.j2", "echo lower, changed\n")  # lost to upper: not used
    assert load_playbooks([lower, upper]).version == first
    write(upper, "linux/cleanup.sh.j2", "echo upper, changed\n")
    assert load_playbooks([lower, upper]).version != first
    # A file equal to the built-in one it replaces: the content used is the same.
    assert BUILTIN is not None
    same = write(
        tmp_path / "same", "linux/cleanup.sh.j2", (BUILTIN / "linux/cleanup.sh.j2").read_text()
    )
    assert load_playbooks([same.parents[1]]).version == BUILTIN_SET.version
    # Every catalog.yml counts, merged in order.
    catalog_only(lower)
    merged = load_playbooks([lower, upper]).version
    write(lower, "catalog.yml", (lower / "catalog.yml").read_text().replace("kesl-site", "k2"))
    assert load_playbooks([lower, upper]).version != merged


def test_the_built_in_set_is_read_through_importlib_resources_even_from_a_zip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package imported from a zip (zipapp, a zipped site-packages) has no directory on disk:
    its playbooks are copied out for as long as kremove runs, and load as the same content."""
    assert BUILTIN is not None
    archive = tmp_path / "orchestrator.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(BUILTIN.rglob("*")):
            if path.is_file():
                zf.write(path, f"orchestrator/_playbooks/{path.relative_to(BUILTIN)}")
    monkeypatch.setattr(
        loader.resources, "files", lambda package: zipfile.Path(archive, "orchestrator/")
    )
    loader.builtin_dir.cache_clear()
    try:
        extracted = loader.builtin_dir()
        assert extracted is not None and extracted != BUILTIN
        assert (extracted / "catalog.yml").read_bytes() == (BUILTIN / "catalog.yml").read_bytes()
        assert load_playbooks().version == BUILTIN_SET.version
    finally:
        loader.builtin_dir.cache_clear()
