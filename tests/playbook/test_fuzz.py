"""Hostile input to every output parser and to the catalog and playbook loaders: findings or a
named error (ParseError, PlaybookError), never anything else."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import PlaybookError
from orchestrator.playbook.loader import load_playbooks
from orchestrator.playbook.model import Finding
from orchestrator.playbook.parsers import PARSERS, ParseError
from orchestrator.transports.base import CommandResult
from tests import figures

CATALOG = load_playbooks().catalog
TAGS = [
    "manager", "dpkg", "rpm", "path", "error", "==kremove:end==", "receipt", "launchd", "pkgutil",
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\{X}",
    "    DisplayName    REG_SZ    Kaspersky Endpoint Security", "SERVICE_NAME: AVP",
    "kesl", "klnagent64", "install ok installed", "com.kaspersky.kav.core", "==kremove:",
]  # fmt: skip
field = st.one_of(st.sampled_from(TAGS), st.text(max_size=30))
line = st.lists(field, min_size=1, max_size=6).map("\t".join)
output = st.one_of(
    st.text(max_size=2000),
    st.lists(line, max_size=40).map("\n".join),
    st.lists(line, max_size=40).map("\r\n".join),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(name=st.sampled_from(sorted(PARSERS)), stdout=output, code=st.integers(-1, 4000))
def test_parsers_return_findings_or_a_parse_error(name: str, stdout: str, code: int) -> None:
    figures.count("parsers_return_findings_or_a_parse_error")
    result = CommandResult(code, stdout, "", 0.1)
    try:
        findings = PARSERS[name](result, CATALOG)
    except ParseError:
        return
    assert all(isinstance(f, Finding) for f in findings)


json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
catalog_doc = st.one_of(
    json_value,
    st.fixed_dictionaries(
        {},
        optional={
            "products": st.dictionaries(
                st.sampled_from(["kesl", "new", "klnagent"]),
                st.dictionaries(
                    st.sampled_from(["name", "order", "linux", "windows", "macos", "sources", "x"]),
                    json_value,
                    max_size=4,
                ),
                max_size=2,
            ),
            "exit_codes": st.dictionaries(st.text(max_size=8), json_value, max_size=2),
            "platforms": st.dictionaries(
                st.sampled_from(["linux", "windows", "macos", "beos"]), json_value, max_size=2
            ),
        },
    ),
)
step = st.dictionaries(
    st.sampled_from(
        [
            "id",
            "kind",
            "readonly",
            "template",
            "parser",
            "become",
            "timeout",
            "for_each",
            "when",
            "exit_codes",
            "retries",
            "retry_delay",
            "bogus",
        ]
    ),
    st.one_of(json_value, st.sampled_from(["detect", "remove", "linux/purge.sh.j2", "product"])),
    max_size=8,
)
playbook_doc = st.one_of(
    json_value,
    st.fixed_dictionaries(
        {"name": st.sampled_from(["linux-remove", "x"]), "platform": st.sampled_from(["linux", 3])},
        optional={"steps": st.lists(step, max_size=3), "description": json_value},
    ),
)


def _load(files: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, doc in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
        with contextlib.suppress(PlaybookError):  # the one error allowed
            load_playbooks([root])


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(doc=catalog_doc)
def test_any_catalog_override_loads_or_is_a_playbook_error(doc: Any) -> None:
    figures.count("any_catalog_override_loads_or_is_a_playbook_error")
    _load({"catalog.yml": doc})


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(doc=playbook_doc, raw=st.text(max_size=200))
def test_any_playbook_loads_or_is_a_playbook_error(doc: Any, raw: str) -> None:
    figures.count("any_playbook_loads_or_is_a_playbook_error")
    _load({"linux/remove.yml": doc})
    _load({"linux/remove.yml": raw})
