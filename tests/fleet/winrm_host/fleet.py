"""The simulated Windows fleet: emulated WinRM hosts on 127.0.0.1 (see README.md beside this file).

fleet = WinrmFleet.start(tmp_path, {"kes_and_agent": 2, "clean": 1})
inventory = fleet.write_inventory(tmp_path / "inventory.yml")
...  # run kremove with env={**os.environ, **fleet.env}
assert fleet.state("w001-kes_and_agent")["products"] == {}
fleet.stop()

With ``keep_running=True`` the server outlives the process that started it (``python -m
tests.fleet up --windows-kinds``); ``WinrmFleet.load(workdir)`` finds it again and can stop it.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from .certs import Pki, make_pki, pki_files
from .kinds import KINDS
from .machine_files import MachineFiles

ADDRESS = "127.0.0.1"
USER = "kops"
PASSWORD_ENV = "KREMOVE_WINRM_PASSWORD"  # the hosts' login password
WRONG_PASSWORD_ENV = "KREMOVE_WINRM_WRONG_PASSWORD"  # a password every host rejects
UNINSTALL_PASSWORD_ENV = "KREMOVE_WINRM_UNINSTALL_PASSWORD"  # protected_kes's KLPASSWD
# cmd.exe and msiexec metacharacters on purpose: the playbooks must pass it through intact.
UNINSTALL_PASSWORD_SHAPE = "Kl&P%w^d!x 9)"
# The server runs as this package's ``server`` module, tests.fleet.winrm_host.server in the test
# suite or orchestrator._lab.winrm_host.server in an installed kremove (kremove lab), from the
# directory that holds the top-level package.
REPO = Path(__file__).absolute().parents[__name__.count(".")]
STATE_FILE = "state.json"  # what load() needs: hosts, ports, passwords, the server's pid
SERVER_MODULE = f"{__name__.rpartition('.')[0]}.server"


class WinrmFleetError(RuntimeError):
    pass


def write_secret_file(path: Path, value: str) -> Path:
    """``value`` in a file only its owner can read (what a ``password_file`` reference names)."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    return path


def _serves(pid: int, workdir: Path) -> bool:
    """True while ``pid`` is this fleet's server (not a zombie, not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return SERVER_MODULE.encode() in cmdline and str(workdir / "config.json").encode() in cmdline


@dataclass(frozen=True)
class WinrmHost:
    name: str
    kind: str
    address: str
    https_port: int
    http_port: int
    scheme: str  # what write_inventory gives it by default
    auth: str

    @property
    def port(self) -> int:
        return self.https_port if self.scheme == "https" else self.http_port


def parse_kinds(kinds: Sequence[str] | Mapping[str, int]) -> list[str]:
    if isinstance(kinds, str):
        raise TypeError("kinds is a sequence of kind names or a mapping kind -> count, not a str")
    if isinstance(kinds, Mapping):
        planned = [kind for kind, count in kinds.items() for _ in range(int(count))]
    else:
        planned = list(kinds)
    unknown = sorted({k for k in planned if k not in KINDS})
    if unknown:
        raise ValueError(f"unknown WinRM host kinds {unknown}; known: {', '.join(KINDS)}")
    return planned


def host_names(planned: Sequence[str]) -> list[str]:
    """The names ``start`` gives the hosts of ``parse_kinds(kinds)``: w001-<kind>, ..."""
    width = 4 if len(planned) >= 1000 else 3
    return [f"w{n:0{width}d}-{kind}" for n, kind in enumerate(planned, 1)]


def _hex(password: str) -> str:
    """A password as Network Agent's KLUNINSTPASSWD takes it: its UTF-16LE bytes in hex."""
    return password.encode("utf-16-le").hex().upper()


class WinrmFleet(MachineFiles):
    """A running WinRM test fleet; its hosts' state and logs are read as ``MachineFiles``."""

    def __init__(
        self,
        workdir: Path,
        hosts: list[WinrmHost],
        pki: Pki,
        env: dict[str, str],
        pid: int,
        control_port: int,
        proc: subprocess.Popen[bytes] | None = None,
        uninstall_passwords: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.workdir = workdir
        self.hosts = hosts
        self.pki = pki
        self.env = env
        self.pid = pid  # the server process
        self._proc = proc  # None for a fleet loaded from its state file
        self._control_port = control_port
        # Per host, its own uninstall passwords ("kes", "klnagent"); others use the fleet's.
        self.uninstall_passwords = {h: dict(p) for h, p in (uninstall_passwords or {}).items()}

    @property
    def ca(self) -> Path:
        return self.pki.ca

    @property
    def secrets(self) -> list[str]:
        """Every secret a test must never find in output, the ledger or what hosts printed."""
        values = list(self.env.values())
        values.append(_hex(self.env[UNINSTALL_PASSWORD_ENV]))
        for own in self.uninstall_passwords.values():
            values += [v for password in own.values() for v in (password, _hex(password))]
        return values

    @classmethod
    def start(
        cls,
        workdir: Path,
        kinds: Sequence[str] | Mapping[str, int],
        *,
        timeout: float = 30.0,
        keep_running: bool = False,
        uninstall_passwords: Mapping[str, Mapping[str, str]] | None = None,
    ) -> WinrmFleet:
        """Start the server for one host per entry of ``kinds``; return when all listen.

        Normally the server stops at interpreter exit or when its parent process dies.
        ``keep_running``: it runs in its own session until ``stop()`` (also from ``load()``).
        ``uninstall_passwords``: per protected_kes host name (``host_names``), its own KES and
        Network Agent passwords ({"kes": ..., "klnagent": ...}); a wrong one fails with 1603.
        """
        planned = parse_kinds(kinds)
        own = {name: dict(p) for name, p in (uninstall_passwords or {}).items()}
        protected = {
            n for n, k in zip(host_names(planned), planned, strict=True) if k == "protected_kes"
        }
        unknown = sorted(set(own) - protected)
        if unknown:
            raise ValueError(f"uninstall_passwords for hosts that are not protected_kes: {unknown}")
        workdir = Path(workdir).absolute()
        workdir.mkdir(parents=True, exist_ok=True)
        pki = make_pki(workdir / "tls")
        names = host_names(planned)
        env = {
            PASSWORD_ENV: "Pw-" + secrets.token_urlsafe(12),
            WRONG_PASSWORD_ENV: "Wrong-" + secrets.token_urlsafe(12),
            UNINSTALL_PASSWORD_ENV: UNINSTALL_PASSWORD_SHAPE + secrets.token_hex(4),
        }
        users = workdir / "ntlm_users"
        users.write_text(f":{USER}:{env[PASSWORD_ENV]}\n")
        users.chmod(0o600)
        config = {
            "workdir": str(workdir),
            "user": USER,
            "password": env[PASSWORD_ENV],
            "uninstall": env[UNINSTALL_PASSWORD_ENV],
            "tls": {
                "good": [str(pki.good.cert), str(pki.good.key)],
                "bad": [str(pki.bad.cert), str(pki.bad.key)],
                "client_ca": str(pki.ca),
            },
            "hosts": [
                {"name": n, "kind": k, **({"uninstall_passwords": own[n]} if n in own else {})}
                for n, k in zip(names, planned, strict=True)
            ],
            "keep_running": keep_running,
        }
        config_path = workdir / "config.json"
        config_path.write_text(json.dumps(config))
        config_path.chmod(0o600)
        ready_path = workdir / "ready.json"
        ready_path.unlink(missing_ok=True)
        log = (workdir / "server.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", SERVER_MODULE, str(config_path)],
            cwd=REPO,
            env={**os.environ, "NTLM_USER_FILE": str(users), "PYTHONPATH": str(REPO)},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=keep_running,  # no Ctrl-C or hangup from the starter's terminal
        )
        log.close()
        until = time.monotonic() + timeout
        while not ready_path.exists():
            if proc.poll() is not None or time.monotonic() > until:
                proc.kill()
                tail = (workdir / "server.log").read_text(errors="replace")[-2000:]
                raise WinrmFleetError(f"the WinRM test fleet did not start: {tail}")
            time.sleep(0.05)
        ready = json.loads(ready_path.read_text())
        hosts = []
        for name, kind in zip(names, planned, strict=True):
            ports = ready["hosts"][name]
            k = KINDS[kind]
            hosts.append(
                WinrmHost(
                    name, kind, ADDRESS, ports["https_port"], ports["http_port"], k.scheme, k.auth
                )
            )
        fleet = cls(workdir, hosts, pki, env, proc.pid, ready["control_port"], proc, own)
        fleet._save_state()
        if not keep_running:
            atexit.register(fleet.stop)
        return fleet

    def _save_state(self) -> None:
        state = {
            "pid": self.pid,
            "control_port": self._control_port,
            "env": self.env,
            "hosts": [asdict(h) for h in self.hosts],
            "uninstall_passwords": self.uninstall_passwords,
        }
        write_secret_file(self.workdir / STATE_FILE, json.dumps(state, indent=1))

    @classmethod
    def load(cls, workdir: Path) -> WinrmFleet:
        """The fleet started (with ``keep_running=True``) in ``workdir`` by another process."""
        workdir = Path(workdir).absolute()
        try:
            state: dict[str, Any] = json.loads((workdir / STATE_FILE).read_text())
        except FileNotFoundError:
            raise WinrmFleetError(f"no WinRM fleet in {workdir} (no {STATE_FILE})") from None
        hosts = [WinrmHost(**h) for h in state["hosts"]]
        return cls(
            workdir,
            hosts,
            pki_files(workdir / "tls"),
            dict(state["env"]),
            state["pid"],
            state["control_port"],
            uninstall_passwords=state.get("uninstall_passwords"),
        )

    # -- lookups ----------------------------------------------------------------------------------

    def host(self, name: str) -> WinrmHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def by_kind(self, kind: str) -> list[WinrmHost]:
        return [h for h in self.hosts if h.kind == kind]

    def _machine_dir(self, name: str) -> Path:
        return self.workdir / "hosts" / name

    def status(self) -> list[dict[str, Any]]:
        """One JSON-ready row per host: name, kind, address, port, running and the Kaspersky
        products installed now (none for a host that is down or never listens)."""
        up = self.running()
        return [
            {
                "name": h.name,
                "kind": h.kind,
                "address": h.address,
                "port": h.port,
                "running": up,
                "products": self.kaspersky_products(h.name) if up and KINDS[h.kind].listens else {},
            }
            for h in self.hosts
        ]

    # -- inventory --------------------------------------------------------------------------------

    def write_inventory(
        self,
        path: Path,
        *,
        include: Collection[str] | None = None,
        scheme: str | None = None,
        auth: str | None = None,
        ca_trust_path: Path | str | None = None,
        cert_validation: bool | None = None,
        password_env: str = PASSWORD_ENV,
        password_file: Path | None = None,
    ) -> Path:
        """kremove's native YAML for the hosts (names or kinds in ``include``; by default all but
        http_basic and client_certificate, whose login is the fleet's client certificate).

        Each host gets its kind's scheme and auth unless ``scheme``/``auth`` say otherwise, and
        the fleet's CA as ``ca_trust_path`` for HTTPS. ``password_file``: the login password is
        written there (mode 0600) and referenced instead of ``password_env``, so kremove needs
        nothing exported.
        """
        # kremove refuses an inventory with Basic over plain HTTP as a whole: an http_basic host
        # is written only when asked for by name or kind.
        chosen = [
            h
            for h in self.hosts
            if (include is None and h.kind not in ("http_basic", "client_certificate"))
            or (include is not None and (h.name in include or h.kind in include))
        ]
        hosts: dict[str, Any] = {}
        for h in chosen:
            s = scheme or h.scheme
            winrm: dict[str, Any] = {"auth": auth or h.auth, "scheme": s}
            if s == "https":
                winrm["ca_trust_path"] = str(ca_trust_path or self.pki.ca)
                if cert_validation is not None:
                    winrm["cert_validation"] = cert_validation
            if winrm["auth"] == "certificate":  # the client certificate is the login
                winrm.update(
                    cert_pem=str(self.pki.client.cert), cert_key_pem=str(self.pki.client.key)
                )
            hosts[h.name] = {
                "address": h.address,
                "port": h.https_port if s == "https" else h.http_port,
                "winrm": winrm,
            }
        groups: dict[str, Any] = {}
        for h in chosen:
            groups.setdefault(h.kind, {"hosts": []})["hosts"].append(h.name)
        if password_file is None:
            login = {"password_env": password_env}
        else:
            login = {"password_file": str(write_secret_file(password_file, self.env[PASSWORD_ENV]))}
        doc = {
            "version": 1,
            "defaults": {"transport": "winrm", "platform": "windows", "user": USER, **login},
            "hosts": hosts,
            "groups": groups,
        }
        Path(path).write_text(yaml.safe_dump(doc, sort_keys=False))
        return Path(path)

    # -- control ----------------------------------------------------------------------------------

    def _control(self, request: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self._control_port}/",
            data=json.dumps(request).encode(),
            method="POST",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=30) as resp:
            answer: dict[str, Any] = json.loads(resp.read())
        return answer

    def reset(self, name: str | None = None) -> None:
        """Back to the kind's initial state; shells closed, faults and the log cleared."""
        for h in self.hosts:
            if (name is None or h.name == name) and KINDS[h.kind].listens:
                self._control({"op": "reset", "host": h.name})

    def inject_fault(
        self,
        name: str,
        action: str,
        kind: str,
        count: int = 1,
        *,
        after: int = 0,
        seconds: float = 60,
        interval: float = 1.0,
        size: int | None = None,
    ) -> None:
        """After ``after`` requests of ``action`` (Create, Command, Send, Receive, Signal, Delete
        or *) that go through, the next ``count`` are answered with ``kind``:

        http500 (non-XML body), malformed (bad XML), hang (no answer for ``seconds``), drop (the
        connection closed, no answer), dtd (a DOCTYPE with a chain of ``size`` entities, 100,000 by
        default), oversize (a ``size``-byte body, 2 MiB by default), gzip (Content-Encoding: gzip,
        a body that inflates to ``size`` bytes, 1 GiB by default), trickle (the real answer, one
        byte every ``interval`` seconds for ``seconds``, then the rest at once)."""
        self._control(
            {
                "op": "fault",
                "host": name,
                "action": action,
                "kind": kind,
                "count": count,
                "after": after,
                "seconds": seconds,
                "interval": interval,
                "size": size,
            }
        )

    def clear_faults(self, name: str) -> None:
        """No more injected faults (a hanging or trickling answer stops); the state stays."""
        self._control({"op": "clear", "host": name})

    def running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return _serves(self.pid, self.workdir)

    def stop(self) -> None:
        """Stop the server (asked, then killed after 5 s); its state file goes with it."""
        if self.running():
            with contextlib.suppress(Exception):  # it may exit before it answers
                self._control({"op": "stop"})
            until = time.monotonic() + 5
            while self.running() and time.monotonic() < until:
                time.sleep(0.05)
            if self.running():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait()
        (self.workdir / STATE_FILE).unlink(missing_ok=True)
