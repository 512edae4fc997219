"""The simulated Windows fleet: emulated WinRM hosts on 127.0.0.1 (see README.md beside this file).

fleet = WinrmFleet.start(tmp_path, {"kes_and_agent": 2, "clean": 1})
inventory = fleet.write_inventory(tmp_path / "inventory.yml")
...  # run kremove with env={**os.environ, **fleet.env}
assert fleet.state("w001-kes_and_agent")["products"] == {}
fleet.stop()
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.fleet.winrm_host.certs import Pki, make_pki
from tests.fleet.winrm_host.kinds import KINDS

ADDRESS = "127.0.0.1"
USER = "kops"
PASSWORD_ENV = "KREMOVE_WINRM_PASSWORD"  # the hosts' login password
WRONG_PASSWORD_ENV = "KREMOVE_WINRM_WRONG_PASSWORD"  # a password every host rejects
UNINSTALL_PASSWORD_ENV = "KREMOVE_WINRM_UNINSTALL_PASSWORD"  # protected_kes's KLPASSWD
# cmd.exe and msiexec metacharacters on purpose: the playbooks must pass it through intact.
UNINSTALL_PASSWORD_SHAPE = "Kl&P%w^d!x 9)"
REPO = Path(__file__).resolve().parents[3]


class WinrmFleetError(RuntimeError):
    pass


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


class WinrmFleet:
    def __init__(
        self,
        workdir: Path,
        hosts: list[WinrmHost],
        pki: Pki,
        env: dict[str, str],
        proc: subprocess.Popen[bytes],
        control_port: int,
    ) -> None:
        self.workdir = workdir
        self.hosts = hosts
        self.pki = pki
        self.env = env
        self._proc = proc
        self._control_port = control_port

    @property
    def ca(self) -> Path:
        return self.pki.ca

    @property
    def secrets(self) -> list[str]:
        """Every secret a test must never find in output, the ledger or what hosts printed."""
        values = list(self.env.values())
        uninstall = self.env[UNINSTALL_PASSWORD_ENV]
        values.append(uninstall.encode("utf-16-le").hex().upper())
        return values

    @classmethod
    def start(
        cls,
        workdir: Path,
        kinds: Sequence[str] | Mapping[str, int],
        *,
        timeout: float = 30.0,
    ) -> WinrmFleet:
        planned = parse_kinds(kinds)
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        pki = make_pki(workdir / "tls")
        width = 4 if len(planned) >= 1000 else 3
        names = [f"w{n:0{width}d}-{kind}" for n, kind in enumerate(planned, 1)]
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
            },
            "hosts": [{"name": n, "kind": k} for n, k in zip(names, planned, strict=True)],
        }
        config_path = workdir / "config.json"
        config_path.write_text(json.dumps(config))
        config_path.chmod(0o600)
        ready_path = workdir / "ready.json"
        ready_path.unlink(missing_ok=True)
        log = (workdir / "server.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fleet.winrm_host.server", str(config_path)],
            cwd=REPO,
            env={**os.environ, "NTLM_USER_FILE": str(users), "PYTHONPATH": str(REPO)},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
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
        fleet = cls(workdir, hosts, pki, env, proc, ready["control_port"])
        atexit.register(fleet.stop)
        return fleet

    # -- lookups ----------------------------------------------------------------------------------

    def host(self, name: str) -> WinrmHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def by_kind(self, kind: str) -> list[WinrmHost]:
        return [h for h in self.hosts if h.kind == kind]

    def state(self, name: str) -> dict[str, Any]:
        """The host's state as saved after its last command (registry, services, files...)."""
        data: dict[str, Any] = json.loads(
            (self.workdir / "hosts" / name / "state.json").read_text(encoding="utf-8")
        )
        return data

    def products(self, name: str) -> dict[str, str]:
        """Installed Uninstall entries: display name -> registry key (both views)."""
        found = {}
        for path, values in self.state(name)["registry"].items():
            if "\\Uninstall\\" in path and "DisplayName" in values:
                found[values["DisplayName"][1]] = path
        return found

    def log(self, name: str) -> list[dict[str, Any]]:
        path = self.workdir / "hosts" / name / "commands.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]

    def commands_log(self, name: str) -> list[str]:
        """Command lines the host received over WinRM, oldest first."""
        return [e["command_line"] for e in self.log(name) if e["event"] == "command"]

    def scripts(self, name: str) -> list[str]:
        """Batch scripts written to the host (the text of each temporary .cmd file)."""
        return [e["text"] for e in self.log(name) if e["event"] == "script"]

    def printed(self, name: str) -> str:
        """Everything the host's commands printed (stdout and stderr), for leak checks."""
        return "".join(e["stdout"] + e["stderr"] for e in self.log(name) if e["event"] == "output")

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
    ) -> Path:
        """kremove's native YAML for the hosts (names or kinds in ``include``; by default all but
        http_basic).

        Each host gets its kind's scheme and auth unless ``scheme``/``auth`` say otherwise, and
        the fleet's CA as ``ca_trust_path`` for HTTPS.
        """
        # kremove refuses an inventory with Basic over plain HTTP as a whole: an http_basic host
        # is written only when asked for by name or kind.
        chosen = [
            h
            for h in self.hosts
            if (include is None and h.kind != "http_basic")
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
            hosts[h.name] = {
                "address": h.address,
                "port": h.https_port if s == "https" else h.http_port,
                "winrm": winrm,
            }
        groups: dict[str, Any] = {}
        for h in chosen:
            groups.setdefault(h.kind, {"hosts": []})["hosts"].append(h.name)
        doc = {
            "version": 1,
            "defaults": {
                "transport": "winrm",
                "platform": "windows",
                "user": USER,
                "password_env": password_env,
            },
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

    def inject_fault(self, name: str, action: str, kind: str, count: int = 1) -> None:
        """The next ``count`` requests of ``action`` (Create, Command, Send, Receive, Signal,
        Delete or *) are answered with ``kind``: http500 (non-XML body) or malformed (bad XML)."""
        self._control({"op": "fault", "host": name, "action": action, "kind": kind, "count": count})

    def running(self) -> bool:
        return self._proc.poll() is None

    def stop(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(Exception):  # it may exit before it answers
                self._control({"op": "stop"})
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
