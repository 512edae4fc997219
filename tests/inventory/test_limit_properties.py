"""Random --limit patterns over the site of test_limit_ansible, each asked of ansible-core and of
kremove: where kremove selects, it selects what Ansible selects, in its order; where Ansible warns
or selects nothing, kremove stops. And random strings split into the terms Ansible splits them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import InventoryError
from orchestrator.inventory.patterns import split

from .test_limit_ansible import SITE_INI, Site, kremove_lists, opened

GROUPS = ["all", "ungrouped", "web", "web_eu", "db", "api", "windows", "canaries", "linux"]
HOSTS = ["jump.example.org", "web02.example.org", "web-canary.example.org", "db-2.example.org"]
IPV6 = ["2001:db8::1", "2001:db8::b"]  # only in comma-separated patterns
GLOBS = ["web*", "*.example.org", "db-?.example.org", "*canar*", "w?b", "web0[1-3].example.org"]
REGEXES = ["~web0[13]", "~(db|dc)", "~api", "~.*eu", "~web"]
TYPOS = ["nosuch", "Web", "dbb"]
MANY = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def ini(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with opened(tmp_path_factory.mktemp("ini"), "hosts", SITE_INI) as found:
        yield found


def slices() -> st.SearchStrategy[str]:
    index = st.integers(-6, 8).map(lambda i: f"[{i}]")
    bounds = st.tuples(st.integers(0, 8), st.integers(0, 8)).map(sorted)
    span = bounds.map(lambda b: f"[{b[0]}:{b[1]}]")
    return st.one_of(index, span, st.integers(0, 8).map(lambda i: f"[{i}:]"))


@st.composite
def patterns(draw: st.DrawFn) -> str:
    names = st.sampled_from(GROUPS + HOSTS + GLOBS)
    plain = st.one_of(
        names,
        st.builds(str.__add__, names, slices()),
        st.sampled_from(REGEXES),
        st.sampled_from(TYPOS + IPV6),
    )
    terms = draw(
        st.lists(
            st.builds(str.__add__, st.sampled_from(["", "", "", "&", "!"]), plain),
            min_size=1,
            max_size=5,
        )
    )
    colons = not any(":" in term for term in terms) and draw(st.booleans())
    return (":" if colons else ",").join(terms)


@MANY
@given(pattern=patterns())
def test_random_patterns_select_what_ansible_selects(ini: Site, pattern: str) -> None:
    listed = ini.ansible(pattern)
    got = kremove_lists(ini.inventory, pattern)
    if isinstance(got, list):
        assert not listed.refused
        assert got == listed.hosts
    else:
        # Ansible lets a slice past the end add nothing to a union; kremove names it
        assert listed.refused or "past the end" in got, got


# Pieces of IPv6 addresses, ranges and patterns, joined by colons: where ansible-core's address
# rules decide whether a colon separates terms.
PIECES = ["2001", "db8", "0", "ffff", "1", "", "[1:3]", "[a:f]", "1.2.3.4", "web", "!db", "*", "22"]
COLON_JOINED = st.lists(st.sampled_from(PIECES), min_size=1, max_size=10).map(":".join)


@settings(MANY, max_examples=600)
@given(text=st.one_of(st.text(alphabet="ab:f0129,[]!&~ .*", min_size=1, max_size=24), COLON_JOINED))
def test_random_strings_split_as_ansible_splits_them(ini: Site, text: str) -> None:
    terms = ini.ansible(text).terms
    try:
        mine = split(text, text)
    except InventoryError as exc:
        assert "\n" not in str(exc)
        assert "[" in text or "]" in text  # only brackets Ansible drops or passes on unbalanced
        return
    assert mine == terms
