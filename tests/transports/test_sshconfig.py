"""Routes to SSH hosts: inventory values, ~/.ssh/config, inventory jumps and ProxyJump."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InputError
from orchestrator.inventory.model import Host
from orchestrator.transports.sshconfig import SshConfig, route


def host(name: str, **kw: object) -> Host:
    kw.setdefault("address", name)
    return Host(name=name, **kw)  # type: ignore[arg-type]


def config(tmp_path: Path, text: str) -> SshConfig:
    path = tmp_path / "config"
    path.write_text(text)
    return SshConfig(path)


def test_ssh_config_fills_what_the_inventory_left_default(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        "Host web1\n  HostName 10.1.1.1\n  Port 2200\n  User ops\n  IdentityFile ~/.ssh/web\n",
    )
    target = route(host("web1"), {}, cfg).target
    assert (target.address, target.port, target.user) == ("10.1.1.1", 2200, "ops")
    assert target.key_files == (str(Path("~/.ssh/web").expanduser()),)
    explicit = host("web1", address="10.9.9.9", port=22022, user="root", key_file="/k")
    target = route(explicit, {}, cfg).target
    assert (target.address, target.port, target.user, target.key_files) == (
        "10.9.9.9",
        22022,
        "root",
        ("/k",),
    )


def test_inventory_jumps_chain_nearest_first(tmp_path: Path) -> None:
    inv = {
        "outer": host("outer", address="192.0.2.1"),
        "inner": host("inner", address="10.0.0.1", jump="outer"),
        "db": host("db", address="10.0.1.5", jump="inner"),
    }
    r = route(inv["db"], inv, SshConfig(None))
    assert [h.label for h in r.hops] == ["outer", "inner"]
    assert r.target.address == "10.0.1.5"


def test_proxyjump_from_ssh_config(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        "Host 10.0.*\n  ProxyJump jumper@bastion.example:2222,gw\nHost gw\n  HostName 10.0.0.254\n",
    )
    inv = {"gw": host("gw", user="gwuser")}
    r = route(host("app", address="10.0.3.3", user="kops", key_file="/k"), inv, cfg)
    bastion, gw = r.hops
    assert (bastion.address, bastion.port, bastion.user) == ("bastion.example", 2222, "jumper")
    assert bastion.key_files == ("/k",)  # an ad-hoc hop borrows the target's key
    assert (gw.label, gw.address, gw.user) == ("gw", "10.0.0.254", "gwuser")


def test_jump_errors_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="jump host 'nowhere' is not in inventory"):
        route(host("a", jump="nowhere"), {}, SshConfig(None))
    cfg = config(tmp_path, "Host *\n  ProxyJump bastion:99999\n")
    with pytest.raises(InputError, match="port '99999'"):
        route(host("a"), {}, cfg)
    loop = {"a": host("a", jump="b"), "b": host("b", jump="a")}
    with pytest.raises(InputError, match="loop"):
        route(loop["a"], loop, SshConfig(None))


def test_unreadable_ssh_config_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"{tmp_path / 'config'}: cannot be used"):
        config(tmp_path, "Host x\n  Port\n")
