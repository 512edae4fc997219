"""The Windows playbooks as rendered: msiexec command lines, password properties, masking, and
hostile values from the host's registry or the inventory.

The rendered text is a batch file. Its lines are checked with a model of how cmd.exe reads a
batch line (percent expansion first, then carets, quotes and the & | < > operators) and of how
msiexec splits its command line (a "" inside quotes is one quote). The model is what these tests
can run here; the scripts still need a pass on real Windows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from orchestrator.errors import PlaybookError
from orchestrator.playbook.loader import PlaybookSet, load_playbooks
from orchestrator.playbook.model import Catalog, Finding, Step
from orchestrator.playbook.render import RenderedCommand
from orchestrator.secrets import MASK, Secret

KES = "{27534751-4A40-48BD-B393-BC3BF28C876E}"
AGENT = "{0F05E4E5-5A89-482C-9A62-47CC58643788}"
ENV = {"SystemRoot": r"C:\Windows", "WINDIR": r"C:\Windows", "PATH": "EXPANDED-PATH"}


@pytest.fixture(scope="module")
def playbooks() -> PlaybookSet:
    return load_playbooks()


# -- a model of cmd.exe reading one batch-file line, and of msiexec's command line ---------------


def percent_expand(line: str, env: Mapping[str, str]) -> str:
    """Phase 1 in a batch file: %% is %, %NAME% its value or nothing, a lone % is dropped.

    Text put in by an expansion is not scanned again.
    """
    values = {k.upper(): v for k, v in env.items()}
    out, i = [], 0
    while i < len(line):
        if line[i] != "%":
            out.append(line[i])
            i += 1
        elif line.startswith("%%", i):
            out.append("%")
            i += 2
        elif (arg := re.match(r"%(~[a-z]*)?[0-9*]", line[i:])) is not None:
            out.append(values.get(arg.group()[1:].upper(), ""))
            i += arg.end()
        elif (end := line.find("%", i + 1)) == -1:
            i += 1
        else:
            name, _, modifier = line[i + 1 : end].partition(":")
            value = values.get(name.upper())
            if value is not None and modifier.startswith("~"):
                value = value[int(modifier[1:]) :]
            elif value is not None and "=" in modifier:
                old, _, new = modifier.partition("=")
                value = value.replace(old, new)
            out.append(value or "")
            i = end + 1
    return "".join(out)


def commands(text: str) -> list[tuple[str, list[str]]]:
    """Phase 2: carets escape outside quotes, quotes toggle, unquoted & | split commands and
    < > start redirections. Each command's text (carets removed) with its redirections."""
    result: list[tuple[str, list[str]]] = []
    cur: list[str] = []
    redirects: list[str] = []
    quoted, i = False, 0
    while i < len(text):
        ch = text[i]
        if quoted:
            cur.append(ch)
            quoted = ch != '"'
        elif ch == "^" and i + 1 < len(text):
            cur.append(text[i + 1])
            i += 1
        elif ch == '"':
            cur.append(ch)
            quoted = True
        elif ch in "&|":
            result.append(("".join(cur).strip(), redirects))
            cur, redirects = [], []
            i += 1 if text[i + 1 : i + 2] == ch else 0
        elif ch in "<>":
            handle = cur.pop() if cur and cur[-1].isdigit() else ""
            target = re.match(r">?&?\s*[^\s&|<>]+", text[i + 1 :])
            assert target is not None, f"redirection without a target in {text!r}"
            redirects.append(handle + ch + target.group())
            i += target.end()
        else:
            cur.append(ch)
        i += 1
    result.append(("".join(cur).strip(), redirects))
    return result


def msi_args(command: str) -> list[str]:
    """msiexec's command line: blanks split outside quotes; inside quotes "" is one quote."""
    args: list[str] = []
    cur: list[str] = []
    quoted, started, i = False, False, 0
    while i < len(command):
        ch = command[i]
        if ch == '"':
            if quoted and command[i + 1 : i + 2] == '"':
                cur.append('"')
                i += 1
            else:
                quoted = not quoted
            started = True
        elif ch in " \t" and not quoted:
            if started:
                args.append("".join(cur))
            cur, started = [], False
        else:
            cur.append(ch)
            started = True
        i += 1
    if started:
        args.append("".join(cur))
    return args


def data_lines(text: str) -> dict[str, str]:
    """What FOR /F "tokens=1,2,*" over the script's "kremove-data NAME VALUE" lines sets."""
    env = {}
    for line in text.split("\n"):  # FOR /F splits on LF only
        match = re.fullmatch(r"kremove-data[ \t]+(\S+)[ \t]+(.*)", line)
        if match:
            env[f"KREMOVE_{match.group(1)}"] = match.group(2)
    return env


def run_line(text: str, starts: str) -> tuple[str, list[str]]:
    """The one line of ``text`` starting with ``starts``, read as cmd.exe would: one command."""
    [line] = [ln for ln in text.split("\n") if ln.startswith(starts)]
    env = {**ENV, **data_lines(text), "KREMOVE_LOG": r"C:\Windows\Temp\kremove-x.log"}
    parsed = commands(percent_expand(line, env))
    assert len(parsed) == 1, f"{line!r} is more than one command: {parsed!r}"
    return parsed[0]


def msiexec(text: str) -> list[str]:
    command, redirects = run_line(text, '"%SystemRoot%\\System32\\msiexec.exe"')
    assert redirects == []
    program, *args = msi_args(command)
    assert program == r"C:\Windows\System32\msiexec.exe"
    return args


def test_the_model_sees_what_cmd_does() -> None:
    # A | cmd value in a batch line loses its "%...%" and lets the & through: why the templates
    # carry such values as data lines (see msiexec-uninstall.cmd.j2).
    assert commands(percent_expand('echo ^"^%x^%^&calc^"', {})) == [
        ('echo "^', []),
        ('calc"', []),
    ]
    env = {"A": "a%b%", "~f0": "x.cmd"}
    for line, expanded in [
        ("%A%", "a%b%"),  # not scanned again
        ("100%", "100"),
        ("%%B", "%B"),
        ("%~f0", "x.cmd"),
        ("%A:~2%", "b%"),
        ("%UNSET%x", "x"),
        ("5% and 6%", "5"),  # "% and 6%" is an unset variable
    ]:
        assert percent_expand(line, env) == expanded
    assert commands('>&2 echo a "&" b 2>&1') == [('echo a "&" b', [">&2", "2>&1"])]
    assert msi_args('/x {G} KLPASSWD="a b""c" X=') == ["/x", "{G}", 'KLPASSWD=a b"c', "X="]


# -- rendering ----------------------------------------------------------------------------------


def step(playbooks: PlaybookSet, step_id: str) -> Step:
    playbook = playbooks.playbooks["windows-remove"]
    [found] = [s for s in playbook.steps if s.id == step_id]
    return found


def context(
    playbooks: PlaybookSet,
    finding: Finding,
    password: Secret | None = None,
    login: str = "KLAdmin",
    host_vars: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What the engine gives a ``for_each: finding`` step (playbooks/README.md)."""
    product = playbooks.catalog.products[finding.product]
    found = [finding.to_dict()]
    return {
        "host": {"name": "ws1", "address": "ws1", "platform": "windows", "vars": host_vars or {}},
        "catalog": playbooks.catalog,
        "secrets": {"uninstall_password": password},
        "uninstall_login": login,
        "findings": found,
        "product": product,
        "found": found,
        "finding": found[0],
    }


def msi_finding(product: str = "kes-windows", code: str = KES, **evidence: str) -> Finding:
    return Finding(
        product=product,
        name="x",
        version="1.0",
        evidence={
            "display_name": "Kaspersky Endpoint Security for Windows",
            "product_code": code,
            "key": rf"HKEY_LOCAL_MACHINE\SOFTWARE\WOW6432Node\...\Uninstall\{code}",
            "view": "32",
            "uninstall_string": f"MsiExec.exe /I{code}",
            "windows_installer": "1",
            "publisher": "AO Kaspersky Lab",
            **evidence,
        },
    )


def render(playbooks: PlaybookSet, step_id: str, ctx: Mapping[str, Any]) -> RenderedCommand:
    return playbooks.renderer.render(step(playbooks, step_id).template, ctx)


def applies(playbooks: PlaybookSet, step_id: str, ctx: Mapping[str, Any]) -> bool:
    when = step(playbooks, step_id).when
    assert when is not None
    return playbooks.renderer.evaluate(when, ctx, step_id)


def test_playbooks_load_with_their_steps(playbooks: PlaybookSet) -> None:
    detect = playbooks.playbook_for("windows", "detect")
    verify = playbooks.playbook_for("windows", "verify")
    remove = playbooks.playbook_for("windows", "remove")
    assert detect is not None and verify is not None and remove is not None
    assert [(s.id, s.parser, s.readonly) for s in detect.steps] == [
        ("privilege", "windows_privilege", True),
        ("inventory", "windows_detect", True),
        ("encryption", "windows_encryption", True),
    ]
    assert [(s.id, s.template, s.parser) for s in verify.steps] == [
        ("verify-inventory", detect.steps[1].template, "windows_detect")
    ]
    assert [(s.id, s.for_each, s.exit_codes, s.readonly) for s in remove.steps] == [
        ("not-msi", "finding", None, False),
        ("msiexec-uninstall", "finding", "msiexec", False),
    ]


@pytest.mark.parametrize(
    ("evidence", "product", "msi"),
    [
        ({}, "kes-windows", True),
        ({"windows_installer": "0"}, "kes-windows", False),  # a GUID subkey that is not MSI
        ({"product_code": ""}, "kaspersky-consumer", False),
    ],
)
def test_exactly_one_remove_step_takes_each_finding(
    playbooks: PlaybookSet, evidence: dict[str, str], product: str, msi: bool
) -> None:
    finding = msi_finding(product, **evidence)
    if not finding.evidence["product_code"]:
        finding = Finding(product, "x", None, evidence={"display_name": "Kaspersky Total Security"})
    ctx = context(playbooks, finding)
    assert applies(playbooks, "msiexec-uninstall", ctx) is msi
    assert applies(playbooks, "not-msi", ctx) is not msi


def test_kes_password_properties(playbooks: PlaybookSet) -> None:
    secret = "Tr0ub4dor&3 %PATH% ^caret! (x) <y> |z|"
    cmd = render(
        playbooks, "msiexec-uninstall", context(playbooks, msi_finding(), Secret(secret, "pw"))
    )
    assert msiexec(cmd.text) == [
        "/x",
        KES,
        "/qn",
        "/norestart",
        "/l*v",
        r"C:\Windows\Temp\kremove-x.log",
        "KLLOGIN=KLAdmin",
        f"KLPASSWD={secret}",
        "REBOOT=ReallySuppress",
    ]
    assert secret not in cmd.shown and "Tr0ub4dor" not in cmd.shown
    assert f"kremove-data KLPASSWD {MASK}" in cmd.shown
    assert "KLLOGIN=%KREMOVE_KLLOGIN% KLPASSWD=%KREMOVE_KLPASSWD% REBOOT" in cmd.text
    assert "kremove-data KLLOGIN KLAdmin" in cmd.text
    # The data lines come after the last exit: cmd.exe never runs them.
    lines = cmd.text.splitlines()
    last_exit = max(i for i, ln in enumerate(lines) if ln.startswith("exit /b"))
    assert all(ln.startswith("kremove-data ") for ln in lines[last_exit + 1 :])
    assert len(lines) - last_exit - 1 == 2


def test_network_agent_password_is_utf16le_hex(playbooks: PlaybookSet) -> None:
    finding = msi_finding("klnagent", AGENT)
    cmd = render(playbooks, "msiexec-uninstall", context(playbooks, finding, Secret("ab", "pw")))
    assert "KLUNINSTPASSWD=61006200 REBOOT=ReallySuppress" in cmd.text
    assert f"KLUNINSTPASSWD={MASK} REBOOT=ReallySuppress" in cmd.shown
    assert "61006200" not in cmd.shown
    assert (
        "KLPASSWD" not in cmd.text.replace("KLUNINSTPASSWD", "") and "kremove-data" not in cmd.text
    )
    assert msiexec(cmd.text)[6:] == ["KLUNINSTPASSWD=61006200", "REBOOT=ReallySuppress"]


def test_no_password_properties_without_a_password_or_for_none(playbooks: PlaybookSet) -> None:
    for finding, password in (
        (msi_finding("ksc-console"), Secret("pw", "pw")),
        (msi_finding("ksws"), None),
        (msi_finding("kes-windows"), None),
        (msi_finding("klnagent", AGENT), None),
    ):
        cmd = render(playbooks, "msiexec-uninstall", context(playbooks, finding, password))
        assert msiexec(cmd.text)[6:] == ["REBOOT=ReallySuppress"]
        assert "kremove-data" not in cmd.text and cmd.text == cmd.shown


# Any text but a double quote (see below), NUL, CR, LF, and Ctrl-Z, which cmd.exe reads as a line
# end in a batch file (quote_cmd refuses the first three; the data lines never meet cmd's reader).
PASSWORD = st.text(
    alphabet=st.characters(blacklist_characters='\x00\r\n\x1a"', blacklist_categories=["Cs"]),
    min_size=1,
)
# A login is rendered as a value, in which the two noncharacters that mark a secret's placeholder
# are refused (test_a_login_holding_a_placeholder_marker_is_refused_in_one_line).
LOGIN = st.text(
    alphabet=st.characters(
        blacklist_characters='\x00\r\n\x1a"\ufdd0\ufdd1', blacklist_categories=["Cs"]
    ),
    min_size=1,
)


def test_ksws_password_goes_to_the_catalogs_property(playbooks: PlaybookSet) -> None:
    # password: plain: the property is catalog data (UNCONFIRMED for KSWS), the value a data line.
    secret = "Tr0ub4dor&3 %PATH% ^caret!"
    ctx = context(playbooks, msi_finding("ksws"), Secret(secret, "pw"))
    cmd = render(playbooks, "msiexec-uninstall", ctx)
    assert msiexec(cmd.text)[6:] == [f"UNLOCK_PASSWORD={secret}", "REBOOT=ReallySuppress"]
    assert secret not in cmd.shown and f"kremove-data PASSWORD {MASK}" in cmd.shown
    assert "KLLOGIN" not in cmd.text and "KLPASSWD" not in cmd.text
    # An operator's catalog names another property: that one is passed.
    product = playbooks.catalog.products["ksws"]
    windows = {**product.windows, "password_property": "KSWS_PW"}
    ctx["product"] = replace(product, platforms={**product.platforms, "windows": windows})
    cmd = render(playbooks, "msiexec-uninstall", ctx)
    assert msiexec(cmd.text)[6:] == [f"KSWS_PW={secret}", "REBOOT=ReallySuppress"]


@settings(max_examples=300, deadline=None)
@given(password=PASSWORD, login=LOGIN)
def test_any_kes_password_reaches_msiexec_unchanged(
    playbooks: PlaybookSet, password: str, login: str
) -> None:
    # Not covered: a double quote (msiexec wants "", | cmd writes \"), and a backslash ending a
    # value | cmd must quote (MSVC doubles it before the closing quote; msiexec does not undo it).
    assume(not password.endswith("\\") and not login.endswith("\\"))
    ctx = context(playbooks, msi_finding(), Secret(password, "pw"), login=login)
    args = msiexec(render(playbooks, "msiexec-uninstall", ctx).text)
    assert args[6:] == [f"KLLOGIN={login}", f"KLPASSWD={password}", "REBOOT=ReallySuppress"]


@pytest.mark.parametrize(
    "code",
    [
        f"{KES} & calc",
        "{27534751-4A40-48BD-B393-BC3BF28C876E^}",
        '{27534751-4A40-48BD-B393-BC3BF28C876"}',
        "{%PATH%-4A40-48BD-B393-BC3BF28C876E}",
        "{27534751-4A40-48BD-B393-BC3BF28C876}",
    ],
)
def test_a_product_code_that_is_not_a_guid_never_reaches_msiexec(
    playbooks: PlaybookSet, code: str
) -> None:
    cmd = render(playbooks, "msiexec-uninstall", context(playbooks, msi_finding(code=code)))
    assert "msiexec.exe" not in cmd.text and code not in cmd.text
    assert cmd.text.splitlines()[-1] == "exit /b 1"


@pytest.mark.parametrize("marker", ["\ufdd0", "\ufdd1"])
def test_a_login_holding_a_placeholder_marker_is_refused_in_one_line(
    playbooks: PlaybookSet, marker: str
) -> None:
    ctx = context(playbooks, msi_finding(), Secret("pw-kept", "pw"), login=f"adm{marker}in")
    with pytest.raises(PlaybookError, match="reserved for kremove's secret placeholders") as caught:
        render(playbooks, "msiexec-uninstall", ctx)
    assert "\n" not in str(caught.value) and "captured" not in str(caught.value)


def test_a_login_with_a_double_quote_is_refused(playbooks: PlaybookSet) -> None:
    ctx = context(playbooks, msi_finding(), Secret("pw", "pw"), login='x" /i evil.msi "')
    cmd = render(playbooks, "msiexec-uninstall", ctx)
    assert "msiexec.exe" not in cmd.text and "evil" not in cmd.text


@pytest.mark.parametrize(
    "login", ["KLAdmin & calc", "%PATH%", "a^b", "(x)", "<in >out |pipe", "!x!", "DOMAIN\\adm"]
)
def test_hostile_host_vars_cannot_inject(playbooks: PlaybookSet, login: str) -> None:
    hostile = {"kaspersky_login": login, "evil": '& calc %PATH% ^ "\n'}
    ctx = context(playbooks, msi_finding(), Secret("pw", "pw"), login=login, host_vars=hostile)
    cmd = render(playbooks, "msiexec-uninstall", ctx)
    assert msiexec(cmd.text)[6:] == [f"KLLOGIN={login}", "KLPASSWD=pw", "REBOOT=ReallySuppress"]


def test_failure_report_lines_are_single_commands(playbooks: PlaybookSet) -> None:
    cmd = render(playbooks, "msiexec-uninstall", context(playbooks, msi_finding()))
    text = cmd.text
    command, redirects = run_line(text, ">&2 echo kremove: msiexec /x")
    assert redirects == [">&2"]
    # KREMOVE_RC is unset in the model, so the code prints as nothing here.
    assert command == rf"echo kremove: msiexec /x {KES} for kes-windows exited"
    for code in ("0", "3010", "1641", "1605"):
        assert f'if "%KREMOVE_RC%"=="{code}" goto kremove_end' in text
    assert "find.exe /c" in text and "findstr.exe /n" in text and "GTR %KREMOVE_SKIP%" in text
    assert "set /a KREMOVE_SKIP=KREMOVE_LINES-40" in text
    assert text.splitlines()[-1] == "exit /b %KREMOVE_RC%"


def test_the_msiexec_log_is_private_and_deleted_on_every_path(playbooks: PlaybookSet) -> None:
    # The verbose log names the product and its properties. It goes next to the script (the
    # login user's own %TEMP%, under the script's random name: nobody can guess or pre-create
    # it), and once msiexec has returned every path ends at the one line that deletes it.
    for secret in (None, Secret("pw", "pw")):
        ctx = context(playbooks, msi_finding(), secret)
        text = render(playbooks, "msiexec-uninstall", ctx).text
        assert 'set "KREMOVE_LOG=%~dpn0.log"' in text
        assert "WINDIR" not in text and "27534751-4A40-48BD-B393-BC3BF28C876E.log" not in text
        lines = text.split("\n")
        after = lines[next(i for i, ln in enumerate(lines) if "msiexec.exe" in ln) :]
        exits = [i for i, ln in enumerate(after) if re.match(r"(.*\s)?exit /b", ln)]
        assert len(exits) == 1, exits  # one way out
        assert after[exits[0] - 1] == 'del /f /q "%KREMOVE_LOG%" >nul 2>&1'
        assert after[exits[0] - 3] == ":kremove_end"
        gotos = {ln.rpartition(" goto ")[2] for ln in after if " goto " in ln}
        assert gotos == {"kremove_end", "kremove_report"}


HOSTILE_TEXT = [
    "Kaspersky & calc",
    "Kaspersky %PATH% %x%&calc",
    "Kaspersky ^ ^^ caret",
    'Kaspersky "quoted" & calc',
    "Kaspersky (x86) <in >out |pipe !x!",
]


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_not_msi_reports_hostile_names_as_text(playbooks: PlaybookSet, text: str) -> None:
    finding = Finding(
        "kaspersky-consumer",
        "Kaspersky consumer product",
        "21.2",
        evidence={
            "display_name": text,
            "uninstall_string": f'"C:\\{text}\\setup.exe" /x',
            "key": rf"HKEY_LOCAL_MACHINE\SOFTWARE\...\Uninstall\{text}",
            "view": "32",
            "windows_installer": "0",
            "publisher": "Kaspersky",
        },
    )
    cmd = render(playbooks, "not-msi", context(playbooks, finding))
    assert cmd.text == cmd.shown and cmd.text.splitlines()[-5] == "exit /b 1"
    message, redirects = run_line(cmd.text, ">&2 echo kremove: %KREMOVE_NAME%")
    assert redirects == [">&2"]
    quoted = '"' + text.replace('"', '\\"') + '"'  # as | cmd quotes it, carets gone
    assert message.startswith(f"echo kremove: {quoted} is not an MSI installation")
    assert "EXPANDED-PATH" not in message
    assert message.endswith(
        "is not an MSI installation; remove it with its own uninstaller or add a catalog entry"
    )
    uninstall, _ = run_line(cmd.text, ">&2 echo kremove: its UninstallString")
    assert "EXPANDED-PATH" not in uninstall and "setup.exe" in uninstall


def test_a_line_break_in_host_text_fails_rendering(playbooks: PlaybookSet) -> None:
    finding = Finding("kaspersky-consumer", "x", None, evidence={"display_name": "a\r\nexit"})
    with pytest.raises(PlaybookError, match="line break"):
        render(playbooks, "not-msi", context(playbooks, finding))


def test_detection_script_covers_the_catalog(playbooks: PlaybookSet) -> None:
    detect = playbooks.playbook_for("windows", "detect")
    assert detect is not None
    ctx = {
        "host": {"name": "ws1", "address": "ws1", "platform": "windows", "vars": {"x": "& calc"}},
        "catalog": playbooks.catalog,
        "secrets": {"uninstall_password": Secret("pw", "pw")},
        "uninstall_login": "KLAdmin",
    }
    cmd = playbooks.renderer.render(detect.steps[1].template, ctx)
    text = cmd.text
    assert text == cmd.shown and "calc" not in text
    win = playbooks.catalog.platform("windows")
    data = data_lines(text)
    for i, path in enumerate(win["residue_paths"]):
        assert data[f"KREMOVE_PATH_{i}"] == path
        assert f'if exist "%KREMOVE_PATH_{i}%" echo path {i}\n' in text
    for i, key in enumerate(win["residue_registry"]):
        assert data[f"KREMOVE_REGKEY_{i}"] == key.rpartition("\\")[0]
        assert f"==kremove:section regkey {i}==\n" in text
        assert f'"%KREMOVE_REG%" query "%KREMOVE_REGKEY_{i}%" /reg:64 2>&1\n' in text
    code, _ = script_and_data(text)
    assert code[-2:] == ["echo ==kremove:end==", "exit /b 0"]
    assert text.splitlines()[0] == "@echo off"
    assert max(len(ln) for ln in text.splitlines()) < 8191
    # Every query is followed by the line that prints its exit code (inside the loop over the
    # user hives, through call: a block's %ERRORLEVEL% would expand once, before it runs).
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("for /f ") and " query HKU " in line:
            assert line.endswith(' do if /i "%%A"=="HKEY_USERS" (')
        elif line.startswith("  ") and " query " in line:
            assert lines[i + 1] == "  call echo ==kremove:rc %%ERRORLEVEL%%=="
        elif " query " in line and not line.startswith("rem "):
            assert lines[i + 1] == "echo ==kremove:rc %ERRORLEVEL%=="
    # Per-user Uninstall keys of the loaded hives; services marked for deletion.
    assert '"%KREMOVE_REG%" query HKU 2>&1' in lines
    assert "==kremove:section deleteflag==" in text
    assert "/s /v DeleteFlag /reg:64 2>&1" in text


# -- issue 15 M5: catalog data in the detection script -------------------------------------------

# Values a --playbooks override could hold if the loader let them through. A double quote is not
# among them: the loader refuses it (no Windows path holds one) and the script relies on that.
HOSTILE_PATHS = [
    "C:\\Kaspersky\\%PATH%&calc.exe & rem",
    "C:\\Kaspersky\\^&calc.exe",
    "C:\\Kaspersky\\a|calc.exe<in >out",
    "C:\\Kaspersky\\%%x%% ^^ !x! (calc.exe)",
]
HOSTILE_KEYS = [
    "HKLM\\SOFTWARE\\a%PATH%&calc.exe & rem\\KasperskyLab",
    "HKLM\\SOFTWARE\\b^|calc.exe>x\\KasperskyLab",
]


def script_and_data(text: str) -> tuple[list[str], list[str]]:
    """The lines cmd.exe runs (up to the last ``exit /b``) and the data lines after them."""
    lines = text.splitlines()
    last_exit = max(i for i, ln in enumerate(lines) if ln.startswith("exit /b"))
    return lines[: last_exit + 1], lines[last_exit + 1 :]


def hostile_catalog(catalog: Catalog) -> Catalog:
    """The built-in catalog with hostile Windows residue paths and keys, past the loader."""
    win = dict(catalog.platform("windows"))
    win["residue_paths"] = (*win["residue_paths"], *HOSTILE_PATHS)
    win["residue_registry"] = (*win["residue_registry"], *HOSTILE_KEYS)
    kes = catalog.products["kes-windows"]
    kes = replace(
        kes, platforms={**kes.platforms, "windows": {**kes.windows, "residue_paths": HOSTILE_PATHS}}
    )
    return replace(
        catalog,
        products={**catalog.products, "kes-windows": kes},
        platforms={**catalog.platforms, "windows": win},
    )  # fmt: skip


def test_catalog_values_reach_the_detection_script_only_as_data_lines(
    playbooks: PlaybookSet,
) -> None:
    catalog = hostile_catalog(playbooks.catalog)
    detect = playbooks.playbook_for("windows", "detect")
    assert detect is not None
    ctx = {"host": {"name": "ws1", "vars": {}}, "catalog": catalog, "secrets": {}}
    text = playbooks.renderer.render(detect.steps[1].template, ctx).text
    code, data = script_and_data(text)
    assert all(ln.startswith("kremove-data ") for ln in data)
    assert not [ln for ln in code if "calc" in ln]  # no value on any line cmd.exe runs
    env = {**ENV, **data_lines(text), "KREMOVE_REG": r"C:\Windows\System32\reg.exe"}
    for line in code:
        if not line.startswith("rem "):  # each line, values expanded, is one command
            assert len(commands(percent_expand(line, env))) == 1, line
    win = catalog.platform("windows")
    for i, path in enumerate(win["residue_paths"]):
        command, _ = run_line(text, f'if exist "%KREMOVE_PATH_{i}%"')
        assert command == f'if exist "{path}" echo path {i}'
    for i, path in enumerate(HOSTILE_PATHS):
        command, _ = run_line(text, f'if exist "%KREMOVE_PATH_kes-windows_{i}%"')
        assert command == f'if exist "{path}" echo path {i} kes-windows'
    for i, key in enumerate(win["residue_registry"]):
        command, redirects = run_line(text, f'"%KREMOVE_REG%" query "%KREMOVE_REGKEY_{i}%"')
        parent = key.rpartition("\\")[0]
        assert command.partition(" query ")[2] == f'"{parent}" /reg:64'
        assert redirects == ["2>&1"]


def test_not_msi_reads_the_catalogs_uninstaller_from_a_data_line(playbooks: PlaybookSet) -> None:
    kes = playbooks.catalog.products["kes-windows"]
    other = replace(kes, platforms={**kes.platforms, "windows": {**kes.windows, "uninstall": "x"}})
    ctx = {**context(playbooks, msi_finding()), "product": other}
    text = render(playbooks, "not-msi", ctx).text
    code, data = script_and_data(text)
    assert "kremove-data CATALOG_UNINSTALL x" in data
    assert not [ln for ln in code if "uninstall: x" in ln]
    command, redirects = run_line(text, ">&2 echo kremove: kes-windows: the catalog says")
    assert redirects == [">&2"]
    assert command == (
        "echo kremove: kes-windows: the catalog says uninstall: x, which this playbook does not run"
    )
