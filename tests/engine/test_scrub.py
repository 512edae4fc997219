"""A host that echoes a secret back (issue 15, L3): the output is scrubbed before anything reads it.

Real sh on the local transport, a real SQLite ledger; the host's "output" is printed by the step.
"""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.engine import runner
from orchestrator.engine import status as st
from orchestrator.inventory.model import Host
from orchestrator.ledger import Ledger
from orchestrator.playbook.loader import load_playbooks
from orchestrator.playbook.quoting import utf16le_hex
from orchestrator.secrets import Secret, SecretStore

INFO = runner.RunInfo(operator="t@example", command_line="kremove detect", inventory_digest="0")
VALUE = "Kx7-s3cret-L3-pw"
HEX = utf16le_hex(VALUE)

# A dpkg record whose version and architecture are the password and its UTF-16LE hex, or an
# error line naming the password: fields a parser keeps, or turns into the host's reason.
ECHO = """\
printf 'manager\\tdpkg\\n'
{% if host.vars.get('echo') == 'error' %}
printf 'error\\tbad password %s\\n' {{ secrets.uninstall_password | sh }}
{% else %}
printf 'dpkg\\tkesl\\t%s\\t%s\\tinstall ok installed\\n' \
{{ secrets.uninstall_password | sh }} {{ secrets.uninstall_password | utf16le_hex | sh }}
{% endif %}
"""


def playbooks_dir(tmp_path: Path) -> Path:
    playbooks = tmp_path / "pb"
    (playbooks / "linux").mkdir(parents=True)
    (playbooks / "linux" / "detect.yml").write_text(
        "name: linux-detect\nplatform: linux\ndescription: test\nsteps:\n"
        "  - {id: packages, kind: detect, readonly: true, template: linux/echo.sh.j2,"
        " parser: linux_packages}\n"
    )
    (playbooks / "linux" / "echo.sh.j2").write_text(ECHO)
    return playbooks


def local(name: str, echo: str) -> Host:
    return Host(
        name=name,
        address="localhost",
        transport="local",
        port=0,
        platform="linux",
        vars={"echo": echo},
    )


def test_a_secret_a_host_echoes_reaches_no_finding_reason_or_ledger(tmp_path: Path) -> None:
    secret = Secret(VALUE, "uninstall password")
    store = SecretStore()
    store.redactor.add(secret)
    store.redactor.add(secret.derive(utf16le_hex))  # as the CLI does for Network Agent's form
    hosts = [local("in-finding", "finding"), local("in-error", "error")]
    with Ledger.open(tmp_path / "ledger.db") as ledger:
        result = runner.detect(
            hosts,
            playbooks=load_playbooks([playbooks_dir(tmp_path)]),
            ledger=ledger,
            info=INFO,
            secrets=store,
            template_secrets={"uninstall_password": secret},
        )
        record = json.dumps(ledger.get_run(result.run_id).to_dict(), default=str)
    shown = repr([(o.status, o.reason, [f.to_dict() for f in o.findings]) for o in result.outcomes])
    for needle in (VALUE, HEX):
        assert needle not in shown
        assert needle not in record
        for path in tmp_path.iterdir():  # the database and its WAL, byte for byte
            if path.is_file():
                assert needle.encode() not in path.read_bytes(), path.name
    # A parse of output that held a secret proves nothing: never a false clean.
    assert {o.status for o in result.outcomes} == {st.FAILED}
    for outcome in result.outcomes:
        assert "held a secret" in (outcome.reason or ""), outcome.reason
