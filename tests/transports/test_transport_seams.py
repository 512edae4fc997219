"""The seams inside the SSH and WinRM transports, in process: what a failed WS-Man request maps
to (in the order the checks are made), and how a command is wrapped for sudo."""

from __future__ import annotations

import pytest
import requests
from winrm.exceptions import InvalidCredentialsError

from orchestrator.errors import AuthError, HostKeyError, TransportError, UnreachableError
from orchestrator.inventory.model import Become, Host
from orchestrator.transports.ssh_sudo import wrap
from orchestrator.transports.winrm_errors import failure
from orchestrator.transports.winrm_guard import RefusedAnswer

WHERE = "host 'w' (10.0.0.1:5986)"


def mapped(exc: Exception) -> Exception:
    return failure(
        exc, WHERE, "read output", auth="ntlm", user="admin", read_timeout=25, trust=None
    )


@pytest.mark.parametrize(
    ("exc", "kind", "text"),
    [
        (RefusedAnswer("a DTD"), TransportError, "answer refused while trying to read output"),
        (InvalidCredentialsError("401"), AuthError, "winrm auth ntlm, user 'admin'"),
        (PermissionError("no challenge"), AuthError, "NTLM authentication failed"),
        (
            requests.exceptions.SSLError(
                "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
            ),
            HostKeyError,
            "checked against the system CA store",
        ),
        (requests.exceptions.SSLError("handshake"), UnreachableError, "TLS handshake failed"),
        (requests.exceptions.ReadTimeout("slow"), UnreachableError, "no answer within 25s"),
        (requests.exceptions.ConnectTimeout("x"), UnreachableError, "no answer to the TCP"),
        # requests' ValueErrors were always reported as a malformed answer, not an HTTP failure
        (requests.exceptions.InvalidURL("bad"), TransportError, "malformed WS-Man answer"),
        (requests.exceptions.TooManyRedirects("many"), TransportError, "HTTP failure"),
    ],
)
def test_a_failed_request_maps_to_its_typed_error(exc: Exception, kind: type, text: str) -> None:
    error = mapped(exc)
    assert type(error) is kind and text in str(error) and str(error).startswith(WHERE)


def test_an_unknown_failure_is_shown_as_it_is() -> None:
    bug = RuntimeError("kremove's own bug")
    assert mapped(bug) is bug


def host(enabled: bool) -> Host:
    return Host(name="h", address="h", become=Become(enabled=enabled, user="root"))


def test_a_command_goes_through_sudo_only_when_asked_and_enabled() -> None:
    assert wrap("id", host(True), become=False, with_password=True).command == "id"
    assert wrap("id", host(False), become=True, with_password=True).command == "id"
    plain = wrap("id", host(True), become=True, with_password=False)
    assert plain.prompt is None and plain.marker and plain.command.startswith("sudo -n ")
    asked = wrap("id", host(True), become=True, with_password=True)
    assert asked.prompt and asked.prompt in asked.command and asked.marker != plain.marker
