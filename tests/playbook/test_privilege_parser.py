"""The privilege probes' parsers, on output captured from the test fleet's hosts (sudo 1.9.13) and
from Windows' whoami /groups /fo csv /nh; fuzzed for a clear error instead of a crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.playbook.parsers import ParseError
from orchestrator.playbook.parsers.privilege import Privilege, posix_privilege, windows_privilege
from orchestrator.transports.base import CommandResult


def result(stdout: str) -> CommandResult:
    return CommandResult(0, stdout, "", 0.1)


# What playbooks/linux/privilege.sh.j2 printed on the fleet's kinds (and on a root login).
NOPASSWD = "login\tkops\t1500\nsudo\tok\t0\n"
PASSWORD = (
    "login\tkops\t1500\nsudo\trefused\tsudo: a password is required\n"
    "sudo_list\tsudo: a password is required\n"
)
ROOT = "login\troot\t0\n"


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        (NOPASSWD, Privilege("kops", "nopasswd")),
        (PASSWORD, Privilege("kops", "password", "sudo: a password is required")),
        (ROOT, Privilege("root", "root")),
        ("login\tops\t1001\nsudo\tmissing\n", Privilege("ops", "missing", "sudo is not installed")),
        (
            "login\tops\t1001\nsudo\trefused\tsudo: a password is required\n"
            "sudo_list\tSorry, user ops may not run sudo on web1.\n",
            Privilege("ops", "denied", "sudo: a password is required"),
        ),
        (
            "login\tops\t1001\nsudo\trefused\tSorry, user ops is not allowed to execute "
            "'/bin/sh -c id -u' as root on web1.\nsudo_list\t    (root) /usr/bin/id\n",
            Privilege(
                "ops",
                "denied",
                "Sorry, user ops is not allowed to execute '/bin/sh -c id -u' as root on web1.",
            ),
        ),
        (
            "login\tops\t1001\nsudo\tok\t1002\n",
            Privilege("ops", "denied", "sudo -n ran as uid 1002, not root"),
        ),
        (  # requiretty: sudo says so; kremove's sessions have no terminal either
            "login\tops\t1001\nsudo\trefused\tsudo: sorry, you must have a tty to run sudo\n"
            "sudo_list\tsudo: sorry, you must have a tty to run sudo\n",
            Privilege("ops", "denied", "sudo: sorry, you must have a tty to run sudo"),
        ),
    ],
)
def test_posix_probe_records(stdout: str, expected: Privilege) -> None:
    assert posix_privilege(result(stdout)) == expected
    assert posix_privilege(result(stdout.replace("\n", "\r\n"))) == expected


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        ("", "no login record"),
        ("sudo\tok\t0\n", "no login record"),
        ("login\tkops\t1500\n", "then stops"),
    ],
)
def test_posix_probe_cut_short_is_a_parse_error(stdout: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        posix_privilege(result(stdout))


ENABLED = "Mandatory group, Enabled by default, Enabled group"
ADMIN = f"""\
win10\\kops\r
"Everyone","Well-known group","S-1-1-0","{ENABLED}"\r
"BUILTIN\\Administrators","Alias","S-1-5-32-544","{ENABLED}, Group owner"\r
"BUILTIN\\Users","Alias","S-1-5-32-545","{ENABLED}"\r
"NT AUTHORITY\\NETWORK","Well-known group","S-1-5-2","{ENABLED}"\r
"Mandatory Label\\High Mandatory Level","Label","S-1-16-12288",""\r
"""
# UAC's filtered token: Administrators for deny only, a Medium integrity level.
FILTERED = (
    ADMIN.replace(f"{ENABLED}, Group owner", "Group used for deny only")
    .replace("High Mandatory Level", "Medium Mandatory Level")
    .replace("S-1-16-12288", "S-1-16-8192")
)
USER = (
    "\r\n".join(ln for ln in ADMIN.splitlines() if "S-1-5-32-544" not in ln)
    .replace("High Mandatory Level", "Medium Mandatory Level")
    .replace("S-1-16-12288", "S-1-16-8192")
)


def test_windows_probe_tells_an_elevated_administrator_from_the_rest() -> None:
    assert windows_privilege(result(ADMIN)) == Privilege("win10\\kops", "admin")
    assert windows_privilege(result(FILTERED)) == Privilege(
        "win10\\kops", "not_admin", "Administrators is for deny only (a UAC-filtered token)"
    )
    assert windows_privilege(result(USER)) == Privilege(
        "win10\\kops", "not_admin", "not a member of Administrators"
    )
    medium = ADMIN.replace("S-1-16-12288", "S-1-16-8192")
    assert windows_privilege(result(medium)).detail.startswith("the token is not elevated")


def test_windows_probe_without_groups_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="printed nothing"):
        windows_privilege(result("\r\n"))
    with pytest.raises(ParseError, match="no groups"):
        windows_privilege(result("win10\\kops\r\n'whoami' is not recognized\r\n"))


LINES = st.lists(
    st.one_of(
        st.sampled_from([NOPASSWD, PASSWORD, ROOT, ADMIN, "sudo\tmissing\n", "login\t\t\n"]),
        st.text(max_size=40),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(LINES)
def test_any_output_is_a_fact_or_a_clear_error(parts: list[str]) -> None:
    text = "".join(parts)
    for parse in (posix_privilege, windows_privilege):
        try:
            fact = parse(result(text))
        except ParseError as exc:
            assert str(exc) and "\n" not in str(exc)
        else:
            assert fact.access in (
                "root",
                "nopasswd",
                "password",
                "denied",
                "missing",
                "admin",
                "not_admin",
            )
