"""The command line as a user meets it: the installed `kremove` script, run as a real subprocess."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_runner import OWN_SETTINGS, kremove
from tests.fleet import Fleet
from tests.fleet.pytest_plugin import SEEN
from tests.fleet.winrm_host import WinrmFleet

ROOT = Path(__file__).resolve().parent.parent
ON_TERMINAL = (*OWN_SETTINGS, "NO_COLOR")  # as in an operator's shell, where colour is allowed
COMMANDS = [
    [],
    ["inventory"],
    ["inventory", "check"],
    ["detect"],
    ["plan"],
    ["run"],
    ["rollback"],
    ["report"],
    ["audit"],
    ["audit", "verify"],
    ["audit", "host"],
    ["runs", "export"],
    ["runs", "prune"],
    ["lab"],
    ["lab", "up"],
    ["runs"],
    ["runs", "list"],
    ["runs", "show"],
]


def test_version(tmp_path: Path) -> None:
    done = kremove("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip().startswith("kremove 0.")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "kremove")
def test_every_command_has_help_with_an_example(tmp_path: Path, command: list[str]) -> None:
    done = kremove(*command, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Example" in done.stdout and "kremove " in done.stdout.split("Example", 1)[1]


def test_detect_localhost_is_recorded_and_listed(tmp_path: Path) -> None:
    pytest.importorskip("sqlite3")
    if shutil.which("dpkg-query") is None and shutil.which("rpm") is None:
        pytest.skip("needs dpkg or rpm on the controller")
    inventory = str(ROOT / "inventories" / "localhost.yml")
    done = kremove("detect", "-i", inventory, "--json", cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    (host,) = report["hosts"]
    assert host["host"] == "localhost" and host["status"] in ("clean", "found")
    assert (done.returncode == 0) == (host["status"] == "clean")
    assert (tmp_path / ".kremove" / "ledger.db").exists()
    assert oct((tmp_path / ".kremove" / "ledger.db").stat().st_mode & 0o777) == "0o600"

    listed = kremove("runs", "list", cwd=tmp_path)
    assert listed.returncode == 0 and report["run"] in listed.stdout

    shown = json.loads(kremove("runs", "show", report["run"][:15], "--json", cwd=tmp_path).stdout)
    assert shown["id"] == report["run"] and shown["kind"] == "detect"
    assert shown["steps"][0]["step_id"] == "privilege"  # who the login is, then the query
    assert shown["steps"][1]["command"].startswith("found_manager=no")


def test_ledger_moves_with_the_environment_variable(tmp_path: Path) -> None:
    ledger = tmp_path / "elsewhere" / "book.db"
    kremove(
        "detect",
        "-i",
        str(ROOT / "inventories" / "localhost.yml"),
        cwd=tmp_path,
        env={"KREMOVE_LEDGER": str(ledger)},
    )
    assert ledger.exists() and not (tmp_path / ".kremove").exists()


def test_reading_commands_do_not_create_a_ledger(tmp_path: Path) -> None:
    for args in (["runs", "list"], ["runs", "show", "x"]):
        done = kremove(*args, cwd=tmp_path)
        assert done.returncode == 2 and "no ledger at" in done.stderr
    assert not (tmp_path / ".kremove").exists()


def test_unknown_run_is_a_one_line_input_error(tmp_path: Path) -> None:
    kremove("detect", "-i", str(ROOT / "inventories" / "localhost.yml"), cwd=tmp_path)
    done = kremove("runs", "show", "nosuchrun", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "nosuchrun" in done.stderr
    assert "Traceback" not in done.stderr


BAD_INVENTORIES = {
    "syntax.yml": "hosts:\n  web01: {address: 192.0.2.1\n",
    "unknown-key.yml": "hosts:\n  web01:\n    adress: 192.0.2.1\n",
    "inline-password.yml": "hosts:\n  web01:\n    password: correct-horse-battery\n",
    "bad-port.ini": "[web]\nweb01 ansible_port=99999\n",
    "bad-transport.ini": "[web]\nweb01 ansible_connection=docker\n",
    "cycle.ini": "[a:children]\nb\n[b:children]\na\n[a]\nh1\n",
}


@pytest.mark.parametrize("name", sorted(BAD_INVENTORIES))
def test_bad_inventory_is_one_line_on_stderr_and_exit_2(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text(BAD_INVENTORIES[name])
    done = kremove("inventory", "check", "-i", name, cwd=tmp_path, env={"COLUMNS": "40"})
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"kremove: error: {name}:")
    assert "Traceback" not in done.stderr and "correct-horse-battery" not in done.stderr


def test_conflicting_host_across_two_files_names_both(tmp_path: Path) -> None:
    (tmp_path / "a.ini").write_text("[web]\nweb01 ansible_host=192.0.2.1\n")
    (tmp_path / "b.ini").write_text("[db]\nweb01 ansible_host=192.0.2.2\n")
    done = kremove("inventory", "check", "-i", "a.ini", "-i", "b.ini", cwd=tmp_path)
    assert done.returncode == 2 and "a.ini:2" in done.stderr and "b.ini:2" in done.stderr


def test_empty_selection_exits_2(tmp_path: Path) -> None:
    (tmp_path / "a.ini").write_text("[web]\nweb01\n")
    done = kremove("detect", "-i", "a.ini", "--limit", "!web01", cwd=tmp_path)
    assert done.returncode == 2 and "selects no host" in done.stderr
    assert not (tmp_path / ".kremove").exists()  # nothing was recorded for a run that never started


def test_inventory_check_shows_hosts_and_vars_of_an_ansible_ini(tmp_path: Path) -> None:
    done = kremove(
        "inventory",
        "check",
        "-i",
        str(ROOT / "inventories" / "example.ini"),
        "--limit",
        "db",
        "--json",
        cwd=tmp_path,
    )
    hosts = {h["name"]: h for h in json.loads(done.stdout)["hosts"]}
    assert sorted(hosts) == [
        "db-a.example.org",
        "db-b.example.org",
        "db-c.example.org",
        "db-legacy.example.org",
    ]
    legacy = hosts["db-legacy.example.org"]
    assert (legacy["address"], legacy["port"], legacy["user"]) == ("192.0.2.40", 22, "dbadmin")
    assert (
        hosts["db-a.example.org"]["port"] == 2222
        and hosts["db-a.example.org"]["user"] == "postgres"
    )
    assert legacy["vars"] == {"backup_window": "02:00-04:00", "site": "hq"}
    assert legacy["groups"] == ["linux", "db"]


def test_traceback_only_with_debug(tmp_path: Path) -> None:
    plain = kremove("runs", "list", cwd=tmp_path)
    debug = kremove("--debug", "runs", "list", cwd=tmp_path)
    assert plain.returncode == debug.returncode == 2
    assert "Traceback" not in plain.stderr
    assert "Traceback" in debug.stderr and debug.stderr.rstrip().endswith(plain.stderr.strip())


def test_an_offline_plan_contacts_nothing_and_shows_the_catalog_order(tmp_path: Path) -> None:
    inventory = tmp_path / "fleet.yml"
    inventory.write_text(
        "version: 1\nhosts:\n  web1:\n    address: 192.0.2.10\n    platform: linux\n"
        "  web2:\n    address: 192.0.2.11\n    platform: linux\n"
    )
    done = kremove("plan", "-i", str(inventory), "--offline", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    linux = json.loads(done.stdout)["platforms"]["linux"]
    assert linux["hosts"] == ["web1", "web2"]
    purges = [s["step"] for s in linux["steps"] if s["step"].startswith("purge:")]
    assert purges.index("purge:kesl-gui") < purges.index("purge:kesl")
    assert purges.index("purge:kesl") < purges.index("purge:klnagent")
    assert not (tmp_path / ".kremove").exists()  # no run, no ledger: nothing happened


def test_run_refuses_bad_wave_settings_before_doing_anything(tmp_path: Path) -> None:
    inventory = ROOT / "inventories" / "localhost.yml"
    for args, message in [
        (["--batches", "0,5"], "--batches: '0' is not a batch size"),
        (["--max-fail", "lots"], "--max-fail: 'lots' is not a count or a percentage"),
        (["--window", "25:00-26:00"], "--window: '25:00-26:00' has a time that does not exist"),
        (["--window", "22:00-04:00", "--tz", "Mars/Olympus"], "--tz: unknown time zone"),
    ]:
        done = kremove("run", "-i", str(inventory), "--yes", *args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / ".kremove").exists()


def test_old_runs_are_archived_then_pruned_and_the_ledger_still_verifies(tmp_path: Path) -> None:
    inventory = str(ROOT / "inventories" / "localhost.yml")
    for _ in range(2):
        kremove("detect", "-i", inventory, cwd=tmp_path)
    runs = json.loads(kremove("runs", "list", "--json", cwd=tmp_path).stdout)["runs"]
    archive = tmp_path / "archive.jsonl"
    done = kremove("runs", "prune", "--before", "9999", "--archive", str(archive), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    archived = [json.loads(line) for line in archive.read_text().splitlines()]
    assert sorted(a["id"] for a in archived) == sorted(r["id"] for r in runs)
    assert all(a["hosts"] and a["steps"] for a in archived)
    assert json.loads(kremove("runs", "list", "--json", cwd=tmp_path).stdout)["runs"] == []
    assert kremove("audit", "verify", cwd=tmp_path).returncode == 0


def test_quiet_prints_one_summary_and_verbose_each_host(tmp_path: Path) -> None:
    inventory = str(ROOT / "inventories" / "localhost.yml")
    quiet = kremove("--quiet", "detect", "-i", inventory, cwd=tmp_path)
    assert quiet.returncode == 0
    assert quiet.stdout.count("\n") == 1 and ": 1 hosts: 1 clean" in quiet.stdout
    loud = kremove("--verbose", "detect", "-i", inventory, cwd=tmp_path)
    assert "kremove: localhost clean" in loud.stderr


def test_colour_on_a_terminal_unless_no_color_is_set(tmp_path: Path) -> None:
    inventory = str(ROOT / "inventories" / "localhost.yml")

    def on_terminal(extra: dict[str, str]) -> str:
        env = {"COLUMNS": "120", "TERM": "xterm-256color", **extra}
        done = kremove(
            "detect", "-i", inventory, cwd=tmp_path, env=env, strip=ON_TERMINAL, terminal=True
        )
        return done.stdout

    green = "\x1b[32m"  # "clean" is shown in green
    assert green in on_terminal({})
    assert green not in on_terminal({"NO_COLOR": "1"})
    plain = kremove("detect", "-i", inventory, cwd=tmp_path)  # not a terminal: no colour at all
    assert "\x1b[" not in plain.stdout + plain.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the practice fleet needs root")
def test_lab_up_status_down_is_a_rehearsal_that_prints_no_secret(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    up = kremove(
        "lab", "up", "--dir", str(lab), "--kinds", "clean=1,one_product=1",
        "--windows-kinds", "kes_and_agent=1", cwd=tmp_path,
    )  # fmt: skip
    said = [up]
    try:
        assert up.returncode == 0, up.stderr
        assert "REHEARSAL ENVIRONMENT" in up.stderr and f"inventory: {lab}" in up.stdout
        assert f"windows inventory: {lab / 'windows.yml'}" in up.stdout
        assert "export " not in up.stdout  # the fleet's passwords are not printed
        windows = WinrmFleet.load(lab / "windows")
        secrets = windows.secrets + Fleet.load(lab).secrets
        SEEN.append((secrets, lab))  # the session's scan looks for them in what kremove wrote
        status = kremove("lab", "status", "--dir", str(lab), cwd=tmp_path)
        assert "kesl=12.1.0-1297" in status.stdout
        assert "Kaspersky Endpoint Security for Windows 12.4.0.467" in status.stdout
        # Nothing exported: the Windows inventory names a password file in the lab.
        found = kremove(
            "detect", "-i", str(lab / "inventory.yml"), "-i", str(lab / "windows.yml"), "--json",
            cwd=tmp_path,
        )  # fmt: skip
        said += [status, found]
        hosts = {h["host"]: h for h in json.loads(found.stdout)["hosts"]}
        assert sorted(h["status"] for h in hosts.values()) == ["clean", "found", "found"]
        installed = {f["product"] for f in hosts["w001-kes_and_agent"]["findings"]}
        assert {"kes-windows", "klnagent"} <= installed
    finally:
        down = kremove("lab", "down", "--dir", str(lab), cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert not _runs_winrm_server(windows.pid)  # lab down stopped the Windows hosts too
    for done in [*said, down]:
        assert not [s for s in secrets if s in done.stdout + done.stderr]


def _runs_winrm_server(pid: int) -> bool:
    try:
        return b"winrm_host.server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_lab_without_root_says_so_in_one_line(tmp_path: Path) -> None:
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root to drop to another user with setpriv")
    tmp_path.chmod(0o777)
    done = kremove(
        "lab", "up", "--dir", str(tmp_path / "lab"),
        wrap=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
        cwd=tmp_path, timeout=60, strip=("",),
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "kremove: error: the practice fleet needs root (it runs sshd in private namespaces); "
        "run: sudo kremove lab up"
    )


def test_forks_beyond_the_open_files_limit_are_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    inventory = str(ROOT / "inventories" / "localhost.yml")
    ledger = tmp_path / "ledger.db"
    # A hard limit of 200 open files fits (200 - 64) // 4 = 34 hosts at once, not 50.
    done = kremove(
        "detect", "-i", inventory, "--forks", "50", "--ledger", str(ledger),
        wrap=["prlimit", "--nofile=200:200"], timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "kremove: error: --forks 50 needs about 264 open files and this session allows 200 "
        "(ulimit -Hn); use --forks 34 or raise the limit"
    ]
    listed = kremove("runs", "list", "--json", "--ledger", str(ledger), cwd=tmp_path)
    assert json.loads(listed.stdout)["runs"] == []
    # A soft limit below the need is raised up to the hard limit, and the run goes ahead.
    code = (
        "import resource\n"
        "from orchestrator.engine.fanout import reserve_files\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (100, 4000))\n"
        "reserve_files(500)\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )
    raised = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert raised.stdout.strip() == "(2064, 4000)"


# L2: names from inventories and answers from hosts are data. On the operator's terminal they show
# as visible escapes (as Python writes them), never as control codes the terminal would obey.
HOSTILE = "web\x1b]0;pwned\x07-01\x1b[2J\u202egnp.exe\x9b31m"
SHOWN = "web\\x1b]0;pwned\\x07-01\\x1b[2J\\u202egnp.exe\\x9b31m"  # HOSTILE on a terminal, in CSV
FORMULA = '=HYPERLINK("http://127.0.0.1/")'
HOSTILE_INVENTORY = r"""hosts:
  "web\e]0;pwned\a-01\e[2J\u202egnp.exe\x9b31m":
    address: 127.0.0.1
    transport: local
    groups: ["dmz\e[5m"]
    vars: {note: "a\e[2Jb\u2066c\rd"}
  "=HYPERLINK(\"http://127.0.0.1/\")":
    address: 127.0.0.1
    transport: local
    groups: ["@evil", "-2+3"]
    vars: {mode: fail}
"""
# The detection script of a hostile host: a version and a path carrying escapes, and an error
# record (it becomes the host's reason) that is also a spreadsheet formula.
HOSTILE_DETECT = r"""printf 'manager\tdpkg\n'
{% if host.vars.get('mode') == 'fail' %}
printf 'error\t=HYPERLINK("http://127.0.0.1/") \033]0;pwned\007 \033[2J \342\200\256 \302\2331m\n'
{% else %}
printf 'dpkg\tkesl\t12.0\033[2J\342\200\256\tamd64\tinstall ok installed\n'
printf 'path\t/opt/kaspersky\033]0;pwned\007\n'
{% endif %}
exit 0
"""
# C0 but the line end, DEL, C1, and the bidi controls (embeddings, overrides, isolates, marks).
RAW_CONTROL = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _raw_controls(*done: subprocess.CompletedProcess[str]) -> list[str]:
    return sorted({c for d in done for c in RAW_CONTROL.findall(d.stdout + d.stderr)})


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, str, subprocess.CompletedProcess[str]]:
    """A ledger holding a detect run over hosts whose names and answers carry escapes."""
    (tmp_path / "hostile.yml").write_text(HOSTILE_INVENTORY)
    (tmp_path / "pb" / "linux").mkdir(parents=True)
    (tmp_path / "pb" / "linux" / "detect.sh.j2").write_text(HOSTILE_DETECT)
    done = kremove("-v", "detect", "-i", "hostile.yml", "--playbooks", "pb", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    runs = json.loads(kremove("runs", "list", "--json", cwd=tmp_path).stdout)["runs"]
    return tmp_path, runs[0]["id"], done


def test_inventory_text_shows_as_visible_escapes_not_control_codes(tmp_path: Path) -> None:
    (tmp_path / "hostile.yml").write_text(HOSTILE_INVENTORY)
    (tmp_path / "bad.yml").write_text(HOSTILE_INVENTORY.replace("transport: local", "transprt: x"))
    checked = kremove("inventory", "check", "-i", "hostile.yml", cwd=tmp_path)
    offline = kremove("plan", "-i", "hostile.yml", "--offline", cwd=tmp_path)
    refused = [
        kremove(command, "-i", "bad.yml", cwd=tmp_path) for command in ("detect", "plan", "run")
    ]
    assert checked.returncode == offline.returncode == 0, checked.stderr + offline.stderr
    assert _raw_controls(checked, offline, *refused) == []
    assert SHOWN in checked.stdout
    assert "dmz\\x1b[5m" in checked.stdout and "note=a\\x1b[2Jb\\u2066c\\rd" in checked.stdout
    assert "web\\x1b]0;pwned" in offline.stdout
    for done in refused:
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "web\\x1b]0;pwned" in done.stderr
    # JSON escapes every control and non-ASCII character itself; the names arrive intact.
    as_json = kremove("inventory", "check", "-i", "hostile.yml", "--json", cwd=tmp_path)
    assert _raw_controls(as_json) == []
    assert {h["name"] for h in json.loads(as_json.stdout)["hosts"]} == {HOSTILE, FORMULA}


def test_host_answers_show_as_visible_escapes_not_control_codes(
    hostile: tuple[Path, str, subprocess.CompletedProcess[str]],
) -> None:
    where, run_id, detected = hostile
    said = [
        detected,
        kremove("runs", "show", run_id, cwd=where),
        kremove("audit", "host", HOSTILE, cwd=where),
        kremove("audit", "host", FORMULA, cwd=where),
        kremove("report", run_id, cwd=where),
        kremove("report", "--fleet", cwd=where),
        kremove("report", run_id, "--format", "csv", cwd=where),
        kremove("report", run_id, "--format", "json", cwd=where),
        kremove("runs", "export", run_id, cwd=where),
        kremove("runs", "show", run_id, "--json", cwd=where),
    ]
    assert [d.returncode for d in said[1:]] == [0] * (len(said) - 1), [d.stderr for d in said]
    planned = kremove("plan", "-i", "hostile.yml", "--playbooks", "pb", cwd=where)
    assert planned.returncode == 1 and "found  kesl 12.0\\x1b[2J\\u202e" in planned.stdout
    assert _raw_controls(*said, planned) == []
    assert "kesl 12.0\\x1b[2J\\u202e" in said[1].stdout  # runs show
    assert "kesl 12.0\\x1b[2J\\u202e" in said[4].stdout  # report
    assert "/opt/kaspersky\\x1b]0;pwned\\x07" in said[2].stdout  # audit host
    reason = '=HYPERLINK("http://127.0.0.1/") \\x1b]0;pwned\\x07 \\x1b[2J \\u202e \\x9b1m'
    assert reason in said[3].stdout and reason in detected.stderr  # audit host, detect -v
    # The ledger keeps what the host said, unchanged: only the display is made safe.
    (host,) = [h for h in json.loads(said[7].stdout)["hosts"] if h["host"] == FORMULA]
    assert "\x1b]0;pwned\x07 \x1b[2J \u202e \x9b1m" in host["reason"]
    # HTML escapes its own way (docs/reports.md); it must not carry C0 or C1 controls either.
    html = kremove("report", run_id, "--format", "html", cwd=where)
    assert re.findall("[\x00-\x09\x0b-\x1f\x7f-\x9f]", html.stdout) == []


def test_on_a_terminal_host_text_drives_nothing_but_colour_is_kept(
    hostile: tuple[Path, str, subprocess.CompletedProcess[str]],
) -> None:
    where, run_id, _ = hostile
    env = {"COLUMNS": "200", "TERM": "xterm-256color"}
    for args in (
        "-v detect -i hostile.yml --playbooks pb",
        f"runs show {run_id}",
        f"report {run_id}",
    ):
        done = kremove(
            *args.split(), cwd=where, env=env, strip=ON_TERMINAL, timeout=120, terminal=True
        )
        seen = done.stdout
        assert "\x1b[" in seen  # kremove's own colours: this was a terminal
        for code in ("\x1b]", "\x1b[2J", "\x1b[5m", "\x07", "\x9b", "\u202e", "\u2066"):
            assert code not in seen, (args, code)


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_prefixed(
    hostile: tuple[Path, str, subprocess.CompletedProcess[str]],
) -> None:
    where, run_id, _ = hostile
    for scope in ([run_id], ["--fleet"]):
        done = kremove("report", *scope, "--format", "csv", "-o", "hosts.csv", cwd=where)
        assert done.returncode == 0, done.stderr
        with (where / "hosts.csv").open(newline="", encoding="utf-8") as fh:
            rows = {r["host"]: r for r in csv.DictReader(fh)}
        assert sorted(rows) == sorted(["'" + FORMULA, SHOWN])
        if scope == [run_id]:
            assert rows["'" + FORMULA]["groups"] == "'-2+3;@evil"
        assert rows["'" + FORMULA]["reason"].startswith("step 'packages': =HYPERLINK(")
        assert not [v for r in rows.values() for v in r.values() if v[:1] in ("=", "+", "-", "@")]


def test_files_written_for_the_user_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    inventory = str(ROOT / "inventories" / "localhost.yml")
    kremove("detect", "-i", inventory, cwd=tmp_path)
    run_id = json.loads(kremove("runs", "list", "--json", cwd=tmp_path).stdout)["runs"][0]["id"]
    (tmp_path / "old.html").write_text("an older report")
    (tmp_path / "old.html").chmod(0o644)
    old = os.umask(0o022)
    try:
        for fmt, name in (("csv", "new.csv"), ("html", "old.html"), ("json", "new.json")):
            done = kremove("report", run_id, "--format", fmt, "-o", name, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            assert oct((tmp_path / name).stat().st_mode & 0o777) == "0o600", name
        assert "an older report" not in (tmp_path / "old.html").read_text()
        (tmp_path / "kept.jsonl").write_text('{"type": "run", "id": "earlier"}\n')
        (tmp_path / "kept.jsonl").chmod(0o644)
        for archive in ("new.jsonl", "kept.jsonl"):
            kremove("detect", "-i", inventory, cwd=tmp_path)
            done = kremove("runs", "prune", "--before", "9999", "--archive", archive, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            assert oct((tmp_path / archive).stat().st_mode & 0o777) == "0o600", archive
        kept = (tmp_path / "kept.jsonl").read_text().splitlines()
        assert json.loads(kept[0])["id"] == "earlier" and len(kept) == 2  # appended, as before
    finally:
        os.umask(old)


def test_any_text_printed_has_its_controls_spelled_out() -> None:
    """The net under every print: text that no command made safe still drives nothing."""
    from rich.table import Table

    from orchestrator.cli import console

    table = Table()
    table.add_column("host")
    table.add_row("db\x1b[2J\u202e01")
    with console.out.capture() as captured:
        console.out.print("web\x1b]0;pwned-01\x9b31m")
        console.out.print(table)
    text = captured.get()
    assert RAW_CONTROL.findall(text) == []
    assert "web\\x1b]0;pwned-01\\x9b31m" in text and "db\\x1b[2J\\u202e01" in text


def test_error_lines_show_text_as_written(tmp_path: Path) -> None:
    (tmp_path / "range.ini").write_text("[web]\nweb[1] ansible_host=127.0.0.1\n")
    done = kremove("inventory", "check", "-i", "range.ini", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.rstrip().endswith("write it as [start:end] or [start:end:step]")
