"""The preflight verdicts (engine/preflight.py), the stuck-host next steps (engine/stuck.py) and the
encryption parser (parsers/encryption.py), from output as reg.exe prints it."""

from __future__ import annotations

import pytest

from orchestrator.engine import preflight, stuck
from orchestrator.playbook.loader import load_playbooks
from orchestrator.playbook.model import Finding, Step
from orchestrator.playbook.parsers.common import ParseError
from orchestrator.playbook.parsers.encryption import windows_encryption
from orchestrator.secrets import MASK
from orchestrator.transports.base import CommandResult

U64 = r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall"
SERVICES = r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services"


def _output(uninstall: str, services: str) -> CommandResult:
    text = "\r\n".join(
        [
            "==kremove:begin==",
            "==kremove:arch AMD64 ==",
            "==kremove:section uninstall 64==",
            uninstall,
            "==kremove:rc 0==",
            "==kremove:section uninstall 32==",
            "ERROR: The system was unable to find the specified registry key or value.",
            "==kremove:rc 1==",
            "==kremove:section services==",
            services,
            "==kremove:rc 0==",
            "==kremove:end==",
        ]
    )
    return CommandResult(0, text, "", 0.1)


def test_encryption_components_are_found_by_entry_and_by_driver() -> None:
    name = "Kaspersky Disk Encryption Authentication Agent"
    entry = f"{U64}\\{{0C9A}}\r\n    DisplayName    REG_SZ    {name}\r\n"
    services = f"{SERVICES}\\AVP\r\n{SERVICES}\\KLFDE\r\n{SERVICES}\\Tcpip\r\n"
    found = windows_encryption(_output(entry, services), load_playbooks().catalog)
    assert sorted(f.name for f in found) == [
        "KLFDE",
        "Kaspersky Disk Encryption Authentication Agent",
    ]
    assert {f.kind for f in found} == {"encryption"}


def test_a_host_without_them_has_no_encryption_finding() -> None:
    services = f"{SERVICES}\\AVP\r\n{SERVICES}\\klif\r\n"
    entry = f"{U64}\\7-Zip\r\n    DisplayName    REG_SZ    7-Zip 23.01 (x64)\r\n"
    assert windows_encryption(_output(entry, services), load_playbooks().catalog) == []


def test_cut_short_output_is_an_error_not_a_pass() -> None:
    result = CommandResult(0, "==kremove:begin==\r\n==kremove:section services==\r\n", "", 0.1)
    with pytest.raises(ParseError):
        windows_encryption(result, load_playbooks().catalog)


def test_the_refusal_names_the_components_and_the_option_unless_given() -> None:
    seen = [Finding("kes-encryption", "klfde", None, "encryption", {"service": "klfde"})]
    reason = preflight.encryption_refusal(seen, allowed=False)
    assert reason is not None and reason.startswith("refused before any change")
    assert "klfde" in reason and preflight.OPTION in reason and "\n" not in reason
    assert preflight.encryption_refusal(seen, allowed=True) is None
    assert preflight.encryption_refusal([], allowed=False) is None


def test_an_administration_server_in_scope_is_warned_of_once() -> None:
    server = {"product": "ksc-server", "kind": "installed"}
    agent = {"product": "klnagent", "kind": "installed"}
    outcomes = [
        {"host": "a", "findings": [server]},
        {"host": "a", "findings": [agent]},  # the latest outcome counts
        {"host": "b", "findings": [agent, server]},
        {"host": "c", "findings": [server]},  # not selected
    ]
    servers = preflight.ksc_servers(preflight.latest(outcomes, ["a", "b"]))
    assert servers == ["b"]
    warning = preflight.ksc_warning(servers)
    assert warning is not None and "b" in warning and "docs/runbook.md" in warning
    assert preflight.ksc_warning([]) is None


MSIEXEC = Step("msiexec-uninstall", "remove", False, "x", exit_codes="msiexec")


@pytest.mark.parametrize(
    ("code", "shown", "wanted"),
    [
        (1612, "msiexec /x {X} /qn", "kavremover"),
        (1603, f"msiexec /x {{X}} KLLOGIN=KLAdmin KLPASSWD={MASK} /qn", "KSC policy"),
        (1603, "msiexec /x {X} /qn", None),  # no password given: nothing was refused
        (1618, "msiexec /x {X} /qn", None),
    ],
)
def test_the_next_step_of_a_stuck_msiexec(code: int, shown: str, wanted: str | None) -> None:
    hint = stuck.next_step(MSIEXEC, code, shown)
    assert (hint is None) if wanted is None else (hint is not None and wanted in hint)


def test_other_steps_get_no_next_step() -> None:
    step = Step("not-msi", "remove", False, "x")
    assert stuck.next_step(step, 1612, "x") is None
