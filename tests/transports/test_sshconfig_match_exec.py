"""H1: nothing in ``~/.ssh/config`` runs a command on the controller, whatever the inventory says.

paramiko substitutes the looked-up name into ``Match exec`` and runs it in a shell. kremove refuses
such a lookup instead (one line naming the config file and line), and refuses names that are not
host-name or IP syntax before paramiko sees them.
"""

from __future__ import annotations

import socket
from pathlib import Path

from orchestrator.errors import InputError
from orchestrator.inventory.model import Host
from orchestrator.transports.sshconfig import SshConfig, route
from tests.cli_runner import kremove


def host(name: str, **kw: object) -> Host:
    kw.setdefault("address", name)
    return Host(name=name, **kw)  # type: ignore[arg-type]


def config(tmp_path: Path, text: str) -> SshConfig:
    path = tmp_path / "ssh_config"
    path.write_text(text)
    return SshConfig(path)


def attempt(target: Host, cfg: SshConfig, inventory: dict[str, Host] | None = None) -> str | None:
    """The one-line error the route gives, or None when it resolves."""
    try:
        route(target, inventory or {}, cfg)
    except InputError as exc:
        return str(exc)
    return None


def test_a_hostile_address_never_reaches_match_exec(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    cfg = config(tmp_path, "Match exec \"test '%h' = nothing\"\n  Port 2222\n")
    hostile = host("web1", address=f"x';touch {marker};'")
    error = attempt(hostile, cfg)
    assert not marker.exists(), "the inventory's address ran a command on the controller"
    assert error is not None and "\n" not in error
    assert "is not a host name or IP address" in error and "web1" in error


def test_a_benign_match_exec_never_runs_and_names_its_line(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    cfg = config(
        tmp_path,
        f'Host other\n  Port 2200\n\n# on the VPN?\nMatch exec "touch {marker}_%h"\n  Port 2222\n',
    )
    error = attempt(host("web1", address="127.0.0.1"), cfg)
    assert not list(tmp_path.glob("ran*")), "a Match exec command from the ssh config ran"
    assert error is not None and "\n" not in error
    assert error.startswith(f"{tmp_path / 'ssh_config'}:5: ")
    assert "Match exec" in error and "KREMOVE_SSH_CONFIG" in error and "'127.0.0.1'" in error


def test_a_match_exec_another_criterion_rules_out_is_not_in_the_way(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    cfg = config(
        tmp_path,
        f'Match host git.example.org exec "touch {marker}"\n  Port 2222\n'
        "Host web1\n  Port 2200\n  User ops\n",
    )
    target = route(host("web1"), {}, cfg).target
    assert (target.port, target.user) == (2200, "ops")
    assert attempt(host("git.example.org"), cfg) is not None
    assert not marker.exists()


def test_a_negated_or_final_match_exec_never_runs_either(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    cfg = config(tmp_path, f'Match final !exec "touch {marker}"\n  User ops\n')
    error = attempt(host("web1"), cfg)
    assert error is not None and ":1: " in error
    assert not marker.exists()


def test_a_proxyjump_spec_that_is_not_a_host_name_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    cfg = config(
        tmp_path,
        "Host web1\n  ProxyJump ops@bad$(id):2222\n"
        f'Match originalhost bad* exec "touch {marker}"\n  Port 2\n',
    )
    error = attempt(host("web1", address="web1"), cfg)
    assert error is not None and "ProxyJump" in error and "bad$(id)" in error
    assert not marker.exists()


def test_detect_refuses_before_anything_runs_or_connects(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text(f'Match exec "touch {marker}"\n  User ops\n')
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]  # nothing listens there once the probe is closed
    probe.close()
    inventory = tmp_path / "fleet.yml"
    inventory.write_text(f"hosts:\n  web1: {{address: 127.0.0.1, port: {port}}}\n")
    done = kremove(
        "detect", "-i", str(inventory),
        cwd=tmp_path, env={"KREMOVE_SSH_CONFIG": str(ssh_config)}, timeout=60,
    )  # fmt: skip
    assert not marker.exists(), "detect ran a Match exec command from the ssh config"
    assert done.returncode == 2, done
    (line,) = done.stderr.strip().splitlines()
    assert f"{ssh_config}:1: " in line and "KREMOVE_SSH_CONFIG" in line
