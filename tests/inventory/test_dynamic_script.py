"""Executable inventory scripts, run for real: --list (and --host per host without _meta) in the
script's directory with stdin closed, under a deadline; failures, garbage and loose permissions
are one line naming the script; the hosts are the ones ansible-inventory gets from the script."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.inventory import load_inventories
from orchestrator.inventory.dynamic import SCRIPT, detect_dynamic
from tests import cli_runner
from tests.inventory.ansible_compare import kremove_hosts, same_as_ansible
from tests.inventory.dynamic_tools import (
    calls,
    listing_script,
    no_process,
    refused,
    write_script,
)

LISTING = {
    "web": {"hosts": ["w1", "w2"], "vars": {"ansible_user": "deploy", "http_port": 80}},
    "db": {"hosts": ["d1"], "children": ["backup"]},
    "backup": {"hosts": ["b1"], "vars": {"ansible_become": True}},
    "all": {"vars": {"site": "hq"}},
    "_meta": {
        "hostvars": {
            "w1": {"ansible_host": "127.0.0.2", "ansible_port": 2222, "role": "front"},
            "d1": {"ansible_host": "127.0.0.3", "ansible_user": "pg"},
        }
    },
}
# Without _meta: the script answers --host H from this table.
PER_HOST = {"w1": {"ansible_host": "127.0.0.2", "ansible_port": 2222}, "w2": {}}


def test_script_with_meta_is_run_once_with_list(tmp_path: Path) -> None:
    script = listing_script(tmp_path / "inventory.py", LISTING)
    assert detect_dynamic(script) == SCRIPT
    inventory = load_inventories([script])
    assert calls(script) == ["--list"]
    same_as_ansible(inventory, tmp_path, "-i", str(script))
    assert inventory.hosts["w1"].port == 2222 and inventory.hosts["d1"].user == "pg"
    assert inventory.hosts["b1"].become.enabled
    assert set(inventory.hosts["b1"].groups) == {"db", "backup"}
    assert inventory.hosts["w2"].vars == {"site": "hq", "http_port": 80}
    assert inventory.sources == (f"{script} --list",)


def test_script_without_meta_is_asked_for_each_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = write_script(
        tmp_path / "inv",
        f"""
        with open({str(tmp_path / "inv.calls")!r}, "a") as log:
            log.write(" ".join(sys.argv[1:]) + "\\n")
        if sys.argv[1] == "--list":
            print(json.dumps({{"web": ["w1", "w2"], "db": {{"hosts": ["d1"]}}}}))
        elif sys.argv[2] == "d1" and os.environ.get("KREMOVE_TEST_SILENT"):
            pass  # printing nothing is no variables (what Ansible means; 2.18 fails on it)
        else:
            print(json.dumps({PER_HOST!r}.get(sys.argv[2], {{}})))
        """,
    )
    inventory = load_inventories([script])
    assert sorted(calls(script)) == ["--host d1", "--host w1", "--host w2", "--list"]
    same_as_ansible(inventory, tmp_path, "-i", str(script))
    assert inventory.hosts["w1"].address == "127.0.0.2" and inventory.hosts["w1"].port == 2222
    monkeypatch.setenv("KREMOVE_TEST_SILENT", "1")
    assert kremove_hosts(load_inventories([script])) == kremove_hosts(inventory)


def test_script_runs_in_its_directory_with_stdin_closed(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    script = write_script(
        tmp_path / "inv.py",
        """
        devnull = os.stat("/dev/null").st_rdev
        print(json.dumps({"web": {"hosts": ["w1"], "vars": {
            "cwd": os.getcwd(),
            "stdin_is_devnull": os.fstat(0).st_rdev == devnull,
            "stdin_text": sys.stdin.read(),
            "argv0": sys.argv[0],
        }}, "_meta": {"hostvars": {}}}))
        """,
    )
    os.chdir(tmp_path / "elsewhere")
    seen = load_inventories([Path("..") / "inv.py"]).hosts["w1"].vars
    assert seen == {
        "cwd": str(tmp_path),
        "stdin_is_devnull": True,
        "stdin_text": "",
        "argv0": str(script),
    }


def test_failing_script_is_one_line_with_its_stderr(tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "inv.py",
        """
        sys.stderr.write("Traceback (most recent call last):\\n  ...\\n")
        sys.stderr.write("KeyError: 'AWS_REGION' \\x1b[2J\\u202e\\n")
        sys.exit(3)
        """,
    )
    message = refused(script)
    assert message.startswith(f"{script} --list: inventory script exited with status 3; ")
    assert "it printed on stderr: Traceback (most recent call last): / ... / KeyError:" in message
    assert "\\x1b[2J\\u202e" in message and "\x1b" not in message and "\u202e" not in message


def test_failing_host_call_names_the_host(tmp_path: Path) -> None:
    script = write_script(
        tmp_path / "inv.py",
        """
        if sys.argv[1] == "--list":
            print('{"web": ["w1"]}')
        else:
            sys.exit("no such host " + sys.argv[2])
        """,
    )
    message = refused(script)
    assert message.startswith(f"{script} --host w1: inventory script exited with status 1; ")
    assert message.endswith("it printed on stderr: no such host w1")


def test_slow_script_is_killed_with_its_children_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KREMOVE_INVENTORY_TIMEOUT", "1")
    pids = tmp_path / "pids"
    script = write_script(
        tmp_path / "inv.py",
        f"""
        import subprocess, time
        child = subprocess.Popen(["sleep", "300"])
        with open({str(pids)!r}, "w") as f:
            f.write(f"{{os.getpid()}} {{child.pid}}")
        sys.stderr.write("asking the cloud...\\n")
        sys.stderr.flush()
        time.sleep(300)
        """,
    )
    message = refused(script)
    assert message == (
        f"{script} --list: inventory script did not finish within 1 s; killed it (set "
        "KREMOVE_INVENTORY_TIMEOUT=SECONDS to allow longer); it printed on stderr: "
        "asking the cloud..."
    )
    for pid in map(int, pids.read_text().split()):
        assert no_process(pid), pid


@pytest.mark.parametrize(
    ("printed", "expected"),
    [
        ("print('Usage: inv.py --list')", "is not JSON (line 1 column 1: Expecting value); it "
         "begins 'Usage: inv.py --list'"),
        ("pass", "is empty; an inventory is a JSON object"),
        ("sys.stdout.buffer.write(bytes([123, 34, 119, 255, 34, 58, 49, 125]))",
         "is not UTF-8 text (byte 4)"),
        ("print('{\"web\": {\"hosts\": \"w1\", \"children\": 1}, \"_meta\": {}}')",
         "group 'web': field 'hosts': must be a list of host names"),
        ("print('[1, 2]')", "is JSON list, not an object of groups"),
        ("print('\\x1b]0;pwned\\x07')", "begins '\\\\x1b]0;pwned\\\\x07'"),
    ],
)  # fmt: skip
def test_garbage_is_one_line_naming_the_script(tmp_path: Path, printed: str, expected: str) -> None:
    script = write_script(tmp_path / "inv.py", f"sys.stderr.write('oops\\n')\n{printed}\n")
    message = refused(script)
    assert message.startswith(f"{script} --list: ")
    assert expected in message and message.endswith("; it printed on stderr: oops")


def test_plaintext_password_from_a_script_is_refused_without_repeating_it(
    tmp_path: Path,
) -> None:
    script = listing_script(
        tmp_path / "inv.py",
        {"web": ["w1"], "_meta": {"hostvars": {"w1": {"ansible_become_pass": "Hunter2!"}}}},
    )
    message = refused(script)
    assert message.startswith(
        f"{script} --list: host 'w1': field 'ansible_become_pass': plaintext passwords are not"
    )
    assert "Hunter2" not in message


@pytest.mark.parametrize(
    ("where", "mode", "owner", "expected"),
    [
        ("script", 0o775, None, "the inventory script {script} can be changed by other users "
         "(mode 0775); kremove will not run it: chmod go-w {script}"),
        ("script", 0o757, None, "can be changed by other users (mode 0757)"),
        ("script", 0o755, 65534, "the inventory script {script} is owned by uid 65534, not by you"),
        ("dir", 0o770, None, "the directory of the inventory script {dir} can be changed by "
         "other users"),
        ("dir", 0o755, 65534, "the directory of the inventory script {dir} is owned by uid 65534"),
    ],
)  # fmt: skip
def test_a_script_others_can_change_is_never_run(
    tmp_path: Path, where: str, mode: int, owner: int | None, expected: str
) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    marker = tmp_path / "ran"
    script = write_script(folder / "inv.py", f"open({str(marker)!r}, 'w').close()\n")
    target = script if where == "script" else folder
    target.chmod(mode)
    if owner is not None:
        os.chown(target, owner, -1)
    message = refused(script)
    assert message.startswith(f"{script}: ")
    assert expected.format(script=script, dir=folder) in message
    assert not marker.exists()


def test_a_script_in_a_sticky_shared_directory_is_run(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o1777)  # as /tmp: others cannot replace a file they do not own
    script = listing_script(folder / "inv.py", LISTING)
    assert "w1" in load_inventories([script]).hosts


def test_a_script_without_the_execute_bit_is_an_error_not_a_static_file(tmp_path: Path) -> None:
    script = listing_script(tmp_path / "inv", LISTING, mode=0o644)
    assert refused(script) == (
        f"{script}: starts like an inventory script (#! or a program) but is not executable; "
        f"chmod u+x {script} to run it as one, or give a static inventory"
    )
    static = tmp_path / "hosts"
    static.write_text("[web]\nw1 ansible_host=127.0.0.1\n")
    static.chmod(0o755)  # an executable text file without #! stays a static inventory
    assert detect_dynamic(static) is None
    assert load_inventories([static]).hosts["w1"].address == "127.0.0.1"


def test_inventory_check_through_the_cli(tmp_path: Path) -> None:
    good = listing_script(tmp_path / "good.py", LISTING)
    done = cli_runner.kremove("inventory", "check", "-i", str(good), home=tmp_path)
    assert done.returncode == 0, done.stderr
    bad = write_script(tmp_path / "bad.py", "sys.exit('cannot reach the CMDB')\n")
    done = cli_runner.kremove("inventory", "check", "-i", str(bad), home=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        f"kremove: error: {bad} --list: inventory script exited with status 1; it printed on "
        "stderr: cannot reach the CMDB\n"
    )
