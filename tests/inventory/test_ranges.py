"""Host range expansion as Ansible does it."""

from __future__ import annotations

import pytest

from orchestrator.errors import InventoryError
from orchestrator.inventory.ranges import expand, parse_pattern


def fail(message: str) -> InventoryError:
    return InventoryError(message)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("plain.example.org", ["plain.example.org"]),
        ("web[08:11]", ["web08", "web09", "web10", "web11"]),
        ("web[8:11]", ["web8", "web9", "web10", "web11"]),
        ("db-[a:d]", ["db-a", "db-b", "db-c", "db-d"]),
        ("n[1:10:3]", ["n1", "n4", "n7", "n10"]),
        ("n[:2]", ["n0", "n1", "n2"]),
        ("r[1:2]c[a:b]", ["r1ca", "r1cb", "r2ca", "r2cb"]),
    ],
)
def test_expand(pattern: str, expected: list[str]) -> None:
    assert expand(pattern, fail) == expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("host:2222", (["host"], 2222)),
        ("web[1:2]:22", (["web1", "web2"], 22)),
        ("2001:db8::1", (["2001:db8::1"], None)),
        ("web[1:2]", (["web1", "web2"], None)),
    ],
)
def test_port_suffix(pattern: str, expected: tuple[list[str], int | None]) -> None:
    assert parse_pattern(pattern, fail) == expected


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("web[1:]", "needs an end"),
        ("web[a:3]", "both be numbers or both single letters"),
        ("web[1:3:0]", "at least 1"),
        ("web[1:3:x]", "whole number"),
        ("web[1:3", "malformed host range"),
        ("web[0:9999999]", "more than 100000 hosts"),
        ("a[1:999]b[1:999]", "more than 100000 hosts"),
    ],
)
def test_bad_ranges(pattern: str, fragment: str) -> None:
    with pytest.raises(InventoryError, match=fragment.replace("[", r"\[")):
        expand(pattern, fail)
