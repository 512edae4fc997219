"""Whatever text a loader is given, it loads or raises InventoryError — never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import InventoryError
from orchestrator.inventory import load_inventories, select
from orchestrator.inventory.loader import parse_text
from orchestrator.inventory.resolve import resolve
from tests import figures

KINDS = ["yaml", "native", "ansible-yaml", "ansible-ini", "csv"]
SYNTAX = st.text(alphabet="[]:=\n #;\"',-_!&*~@{}|>?%.\\0129abwxyz\t", max_size=300)
KEYS = [
    "all", "hosts", "children", "vars", "groups", "defaults", "version", "address", "port",
    "transport", "platform", "user", "become", "winrm", "auth", "scheme", "enabled",
    "password_env", "password", "ansible_host", "ansible_port", "ansible_connection",
    "ansible_become", "ansible_password", "web[1:3]", "h1", "g1", "<<",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 70000),
    st.sampled_from(["ssh", "winrm", "local", "linux", "https", "http", "basic", "sudo", "su"]),
    st.text(max_size=8),
)
DOCS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=25,
)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load_or_refuse(text: str, kind: str) -> None:
    try:
        inventory = resolve(parse_text(text, "fuzz", kind))
    except InventoryError as exc:
        assert "\n" not in str(exc)
        return
    inventory.digest()
    select(inventory, None)


@pytest.mark.parametrize("kind", KINDS)
@FAST
@given(text=st.one_of(st.text(max_size=300), SYNTAX))
def test_random_text(kind: str, text: str) -> None:
    figures.count("random_text")
    load_or_refuse(text, kind)


@pytest.mark.parametrize("kind", ["native", "ansible-yaml"])
@FAST
@given(doc=st.dictionaries(st.sampled_from(KEYS), DOCS, max_size=4))
def test_random_yaml_documents(kind: str, doc: dict[str, Any]) -> None:
    figures.count("random_yaml_documents")
    load_or_refuse(yaml.safe_dump(doc), kind)


@FAST
@given(
    lines=st.lists(
        st.one_of(
            st.sampled_from(["[g1]", "[g1:vars]", "[g1:children]", "[g2]", "[all:vars]", "g2"]),
            st.builds(
                lambda host, key, value: f"{host} {key}={value}",
                st.sampled_from(["h1", "web[1:3]", "db-[a:c]:2222", "h[01:2]"]),
                st.sampled_from(KEYS),
                SCALARS.map(str),
            ),
        ),
        max_size=12,
    )
)
def test_random_ini_lines(lines: list[str]) -> None:
    figures.count("random_ini_lines")
    load_or_refuse("\n".join(lines), "ansible-ini")


@FAST
@given(data=st.binary(max_size=200), suffix=st.sampled_from([".yml", ".ini", ".csv", ""]))
def test_random_bytes_from_a_file(data: bytes, suffix: str) -> None:
    figures.count("random_bytes_from_a_file")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"inventory{suffix}"
        path.write_bytes(data)
        try:
            load_inventories([path])
        except InventoryError as exc:
            assert "\n" not in str(exc)


def test_billion_laughs_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 9)]
    text = "all:\n  vars:\n" + "".join(f"    {line}\n" for line in lines) + "  hosts: {h: }\n"
    with pytest.raises(InventoryError, match="too many values"):
        resolve(parse_text(text, "laughs.yml", "yaml"))


def test_recursive_alias_is_refused() -> None:
    text = "all:\n  hosts:\n    h:\n      loop: &a [*a]\n"
    with pytest.raises(InventoryError, match="refers to itself"):
        resolve(parse_text(text, "loop.yml", "yaml"))
