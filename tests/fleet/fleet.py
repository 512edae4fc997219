"""The simulated fleet: real OpenSSH sshd processes on 127.0.0.1, one private host each.

See tests/fleet/README.md for the API and what each kind of host does. In short::

    fleet = Fleet.start(tmp_path, {"one_product": 3, "clean": 1})
    inventory = fleet.write_inventory(tmp_path / "inventory.yml",
                                      known_hosts=fleet.write_known_hosts(tmp_path / "kh"))
    ...  # run kremove with env={**os.environ, **fleet.env}
    assert fleet.dpkg_status("h001-one_product") == {}
    fleet.stop()
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import functools
import hashlib
import json
import os
import plistlib
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from . import layers, macos, procs, windows_openssh
from .kinds import (
    BEHIND_JUMP,
    CHANGED_HOSTKEY,
    DOAS_PASSWORD,
    JUMP,
    KINDS,
    PACKAGE_TEMPLATES,
    PASSWORD_ONLY,
    SILENT,
    SLOW,
    SU_PASSWORD,
    SUDO_PASSWORD,
    UNREACHABLE,
    WRONG_SUDO_PASSWORD,
)
from .system import SSHD, check_prerequisites

ADDRESS = "127.0.0.1"
USER = layers.USER
JUMP_DOMAIN = "fleet.invalid"
PASSWORD_ENV = "KREMOVE_FLEET_PASSWORD"  # kops's login password (password_only hosts)
SUDO_PASSWORD_ENV = "KREMOVE_FLEET_SUDO_PASSWORD"  # the right sudo password (= kops's password)
WRONG_SUDO_PASSWORD_ENV = "KREMOVE_FLEET_WRONG_SUDO_PASSWORD"  # what wrong_sudo_password uses
KEY_PASSPHRASE_ENV = "KREMOVE_FLEET_KEY_PASSPHRASE"  # passphrase of the encrypted client key
HOST_RUN = "/run/fleet-host"  # where a host sees its own directory
STATE_FILE = "state.json"
PORTKEEPER = Path(__file__).resolve().parent / "portkeeper.py"
PORT_RANGE = (20000, 32000)  # below Linux's ephemeral range, so outgoing connections never race
_PORTS_TAKEN: set[int] = set()
_PORTS_LOCK = threading.Lock()


class FleetError(RuntimeError):
    """The fleet could not do what was asked; the message says which host and why."""


@dataclass(frozen=True)
class FleetHost:
    """One host as an inventory (and a test) sees it."""

    name: str
    kind: str
    address: str
    port: int
    user: str
    key_file: Path | None  # None for password_only: the inventory gives a password instead
    password_env: str | None  # login password variable (password_only)
    sudo_password_env: str | None  # sudo password variable (wrong_sudo_password: a wrong one)
    host_key_fingerprint: str | None  # "SHA256:..." of the key sshd presents; None: no sshd
    jump: str | None  # name of the jump host (behind_jump)
    expected_packages: dict[str, str] = field(default_factory=dict)  # installed when (re)started
    expected_receipts: dict[str, str] = field(default_factory=dict)  # Kaspersky pkgutil receipts

    @property
    def has_system(self) -> bool:
        return KINDS[self.kind].has_system

    @property
    def platform(self) -> str:
        """linux, or macos for the kinds dressed as Macs with shims (tests/fleet/macos.py)."""
        return KINDS[self.kind].platform


@dataclass
class _Runtime:
    """What the fleet tracks about a running host (saved in state.json)."""

    sshd_port: int | None  # the port sshd listens on (the backend for slow hosts)
    hostname: str
    pid: int | None = None  # sshd listener = the process group leader
    mount_ns: str | None = None
    generation: int = 0  # number of the current upper dir


def parse_kinds(kinds: Sequence[str] | Mapping[str, int]) -> list[str]:
    """The kind of each host, in order: a list names one host per entry, a mapping gives counts."""
    if isinstance(kinds, str):
        raise TypeError("kinds is a sequence of kind names or a mapping kind -> count, not a str")
    if isinstance(kinds, Mapping):
        planned = [kind for kind, count in kinds.items() for _ in range(int(count))]
    else:
        planned = list(kinds)
    unknown = sorted({kind for kind in planned if kind not in KINDS})
    if unknown:
        raise ValueError(f"unknown host kinds {unknown}; known: {', '.join(KINDS)}")
    if BEHIND_JUMP in planned and JUMP not in planned:
        raise ValueError("behind_jump hosts need a jump host: add the kind 'jump'")
    return planned


def fingerprint(public_key_line: str) -> str:
    """SHA256:... exactly as ``ssh-keygen -l`` prints it."""
    blob = base64.b64decode(public_key_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def keygen(path: Path, comment: str, passphrase: str = "") -> str:
    """An ed25519 key pair at ``path`` (and .pub); the public key line."""
    path.unlink(missing_ok=True)
    path.with_suffix(".pub").unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return Path(f"{path}.pub").read_text().strip()


@functools.cache
def _sshd_version() -> tuple[int, int]:
    result = subprocess.run([SSHD, "-V"], capture_output=True, text=True, check=False)
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", result.stdout + result.stderr)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ADDRESS, port))
        except OSError:
            return False
    return True


def _allocate_ports(count: int) -> list[int]:
    """Ports that look free now; sshd binds them moments later (a lost race is retried)."""
    low, high = PORT_RANGE
    found: list[int] = []
    with _PORTS_LOCK:
        port = random.randrange(low, high)
        for _ in range(high - low):
            port = port + 1 if port + 1 < high else low
            if port not in _PORTS_TAKEN and _port_free(port):
                _PORTS_TAKEN.add(port)
                found.append(port)
                if len(found) == count:
                    return found
    raise FleetError(f"no {count} free ports on {ADDRESS} in {low}-{high}")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


class Fleet:
    """A running fleet. Create it with Fleet.start (or Fleet.load for one started by the CLI)."""

    def __init__(self, workdir: Path, slow_delay: float) -> None:
        self.workdir = workdir
        self.slow_delay = slow_delay
        self.hosts: list[FleetHost] = []
        self.env: dict[str, str] = {}
        self.secrets: list[str] = []
        self.client_key = workdir / "keys" / "client_ed25519"
        self.client_key_encrypted = workdir / "keys" / "client_ed25519_encrypted"
        self.windows = windows_openssh.WindowsFiles(workdir)  # the windows_openssh hosts' files
        self._runtime: dict[str, _Runtime] = {}
        self._wrong_keys: dict[str, str] = {}  # changed_hostkey host -> the key known_hosts gets
        self._host_keys: dict[str, str] = {}  # name -> public key line sshd presents
        self._children: dict[int, subprocess.Popen[bytes]] = {}  # the port keeper
        self._launched: set[int] = set()  # sshd pids this object started (safe to kill)
        self._uid: int | None = None  # kops's uid in the base layer
        self._log_offsets: dict[str, tuple[int, int]] = {}  # log sizes at the last launch
        self._portkeeper: int | None = None
        self._stopped = False
        self._lock = threading.RLock()

    # ----------------------------------------------------------------------------- starting

    @classmethod
    def start(
        cls,
        workdir: Path,
        kinds: Sequence[str] | Mapping[str, int],
        *,
        slow_delay: float = 3.0,
        keep_running: bool = False,
        timeout: float = 120.0,
    ) -> Fleet:
        """Start one host per entry of ``kinds`` (or count per kind); return when all answer.

        ``keep_running``: do not stop the fleet when this interpreter exits (the CLI's ``up``).
        """
        planned = parse_kinds(kinds)
        workdir = Path(workdir).resolve()
        check_prerequisites(workdir)
        fleet = cls(workdir, slow_delay)
        try:
            fleet._prepare(planned)
            fleet._launch([h.name for h in fleet.hosts if h.has_system])
            fleet._wait_ready([h.name for h in fleet.hosts if h.has_system], timeout, first=True)
            fleet._start_portkeeper()
            fleet._save_state()
        except BaseException:
            fleet.stop()
            raise
        if not keep_running:
            atexit.register(fleet.stop)
        return fleet

    def _prepare(self, planned: list[str]) -> None:
        for sub in ("keys", "layers", "debs", "hosts"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(15)
        passphrase = secrets.token_urlsafe(15)
        self.env = {
            PASSWORD_ENV: password,
            SUDO_PASSWORD_ENV: password,
            WRONG_SUDO_PASSWORD_ENV: "wrong-" + secrets.token_urlsafe(9),
            KEY_PASSPHRASE_ENV: passphrase,
            **windows_openssh.new_passwords(),
        }
        client_pub = keygen(self.client_key, "kremove-fleet-client")
        encrypted_pub = keygen(self.client_key_encrypted, "kremove-fleet-client-enc", passphrase)
        self.secrets = list(dict.fromkeys(self.env.values()))
        self.secrets += windows_openssh.hex_forms(self.env)
        for key in (self.client_key, self.client_key_encrypted):
            text = key.read_text()
            self.secrets.append(text)
            self.secrets += [line for line in text.splitlines() if line and "-----" not in line]

        # Layers: base, then every template the planned kinds need (in parallel).
        layers_dir = self.workdir / "layers"
        if not (layers_dir / "base" / ".done").exists():
            shutil.rmtree(layers_dir / "base", ignore_errors=True)
            layers.build_base(layers_dir / "base", uid=layers.free_id(), password=password)
            (layers_dir / "base" / ".done").write_text("")
        needed = sorted({layer for kind in planned for layer in KINDS[kind].layers})

        # Hosts: names, ports, keys, sshd configs.
        width = max(3, len(str(len(planned))))
        names = [f"h{i:0{width}d}-{kind}" for i, kind in enumerate(planned, 1)]
        with_sshd = [n for n, k in zip(names, planned, strict=True) if KINDS[k].has_system]
        ports = iter(_allocate_ports(len(with_sshd)))
        jumps = [n for n, k in zip(names, planned, strict=True) if k == JUMP]
        inner_names: dict[str, str] = {}
        for name, kind in zip(names, planned, strict=True):
            if kind == BEHIND_JUMP:
                inner_names[name] = f"inner-{len(inner_names) + 1:02d}.{JUMP_DOMAIN}"
        for name in with_sshd:
            self._runtime[name] = _Runtime(sshd_port=next(ports), hostname=name.replace("_", "-"))

        def make_keys(name: str) -> None:
            # A workdir an earlier fleet used (``up`` after ``down``) still holds its hosts'
            # changes in their upper dirs: each host starts from its kind's initial state.
            shutil.rmtree(self.workdir / "hosts" / name, ignore_errors=True)
            hostdir = self._hostdir(name)
            hostdir.mkdir(parents=True, exist_ok=True)
            self._host_keys[name] = keygen(hostdir / "ssh_host_ed25519_key", f"root@{name}")

        # Templates and host keys at once: both are mostly waiting for child processes.
        with ThreadPoolExecutor(max_workers=8) as pool:
            jobs: list[Future[object]] = [
                pool.submit(layers.build_layer, n, layers_dir, self.workdir / "debs")
                for n in needed
            ]
            jobs += [pool.submit(make_keys, name) for name in with_sshd]
            for job in jobs:
                job.result()
        for name, kind in zip(names, planned, strict=True):
            if kind == CHANGED_HOSTKEY:
                wrong = keygen(self.workdir / "keys" / f"wrong-{name}", f"root@{name}")
                self._wrong_keys[name] = wrong

        authorized = client_pub + "\n" + encrypted_pub + "\n"
        self._uid = uid = int(
            next(
                line.split(":")[2]
                for line in (layers_dir / "base" / "etc" / "passwd").read_text().splitlines()
                if line.startswith(f"{USER}:")
            )
        )
        jump_index = 0
        for name, kind in zip(names, planned, strict=True):
            jump = None
            if kind == BEHIND_JUMP:
                jump = jumps[jump_index % len(jumps)]
                jump_index += 1
            runtime = self._runtime.get(name)
            port = runtime.sshd_port if runtime and runtime.sshd_port else 0
            self.hosts.append(
                FleetHost(
                    name=name,
                    kind=kind,
                    address=inner_names.get(name, ADDRESS),
                    port=port,
                    user=USER,
                    key_file=None if kind == PASSWORD_ONLY else self.client_key,
                    password_env=PASSWORD_ENV if kind == PASSWORD_ONLY else None,
                    sudo_password_env={
                        WRONG_SUDO_PASSWORD: WRONG_SUDO_PASSWORD_ENV,
                        SUDO_PASSWORD: SUDO_PASSWORD_ENV,
                        SU_PASSWORD: SUDO_PASSWORD_ENV,  # root's password is kops's there
                        DOAS_PASSWORD: SUDO_PASSWORD_ENV,
                    }.get(kind),
                    host_key_fingerprint=fingerprint(self._host_keys[name])
                    if name in self._host_keys
                    else None,
                    jump=jump,
                    expected_packages=KINDS[kind].packages(),
                    expected_receipts=KINDS[kind].receipts(),
                )
            )
            if runtime is None:
                continue
            hostdir = self._hostdir(name)
            (hostdir / "authorized_keys").write_text(authorized)
            extra = [f"127.0.0.1\t{n}" for n in inner_names.values()] if kind == JUMP else []
            (hostdir / "hosts").write_text(
                "\n".join([f"127.0.1.1\t{runtime.hostname}", *extra]) + "\n"
            )
            log = hostdir / "commands.log"
            log.touch()
            os.chown(log, uid, uid)
            hostdir.chmod(0o755)
            self._write_sshd_config(name)
            if KINDS[kind].windows:
                windows_openssh.prepare_host(hostdir, name, KINDS[kind].windows, self.env)

    def _hostdir(self, name: str) -> Path:
        """The directory a host sees at /run/fleet-host (config, keys, logs)."""
        return self.workdir / "hosts" / name / "run"

    def _write_sshd_config(self, name: str) -> None:
        host = self.host(name)
        runtime = self._runtime[name]
        password_only = host.kind == PASSWORD_ONLY
        lines = [
            f"# kremove test fleet: {name} ({host.kind})",
            f"Port {runtime.sshd_port}",
            f"ListenAddress {ADDRESS}",
            f"HostKey {HOST_RUN}/ssh_host_ed25519_key",
            "PidFile /run/sshd.pid",
            "LogLevel VERBOSE",
            "UsePAM no",
            "PermitRootLogin no",
            "StrictModes no",
            f"AllowUsers {USER}",
            f"AuthorizedKeysFile {HOST_RUN}/authorized_keys",
            f"PubkeyAuthentication {'no' if password_only else 'yes'}",
            f"PasswordAuthentication {'yes' if password_only else 'no'}",
            "KbdInteractiveAuthentication no",
            "PermitEmptyPasswords no",
            "MaxSessions 32",
            "MaxStartups 200:30:400",
            "LoginGraceTime 60",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "AllowAgentForwarding no",
            f"AllowTcpForwarding {'yes' if host.kind == JUMP else 'no'}",
            "PermitTunnel no",
            "AcceptEnv LANG LC_*",
            "Subsystem sftp /usr/lib/openssh/sftp-server",
            f"ForceCommand {self._force_command(host.kind)}",
        ]
        if _sshd_version() >= (9, 8):
            lines.append("PerSourcePenalties no")
        (self._hostdir(name) / "sshd_config").write_text("\n".join(lines) + "\n")

    @staticmethod
    def _force_command(kind: str) -> str:
        """What sshd runs for every session: the command logged, then run by the login shell
        (a windows_openssh host's is the emulated cmd.exe)."""
        return windows_openssh.FORCE_COMMAND if KINDS[kind].windows else layers.LOG_COMMAND

    def _layers_of(self, kind: str) -> list[Path]:
        layers_dir = self.workdir / "layers"
        return [layers_dir / name for name in KINDS[kind].layers] + [layers_dir / "base"]

    def _launch(self, names: Iterable[str]) -> None:
        specs = []
        names = list(names)
        for name in names:
            host = self.host(name)
            runtime = self._runtime[name]
            base = self.workdir / "hosts" / name
            gen = runtime.generation
            sizes = [path.stat().st_size if path.exists() else 0 for path in self._logs(name)]
            self._log_offsets[name] = (sizes[0], sizes[1])
            sshd = [SSHD, "-D", "-f", f"{HOST_RUN}/sshd_config", "-E", f"{HOST_RUN}/sshd.log"]
            windows = KINDS[host.kind].windows
            specs.append(
                layers.host_spec(
                    self._layers_of(host.kind),
                    base / f"upper-{gen}",
                    base / f"work-{gen}",
                    base / "stage",
                    self._hostdir(name),
                    runtime.hostname,
                    windows_openssh.argv(sshd) if windows else sshd,
                    uid=self._uid,
                    log=base / "start.log",
                    mac=macos.launcher_spec(self.workdir / "layers", base)
                    if host.platform == "macos"
                    else None,
                )
            )
        result = layers.launch("spawn", specs)
        if result.returncode != 0:
            raise FleetError(f"the launcher failed: {result.stderr.strip()[-2000:]}")
        pids: list[int] = json.loads(result.stdout)["pids"]
        for name, pid in zip(names, pids, strict=True):
            self._runtime[name].pid = pid
            self._runtime[name].mount_ns = None
            self._launched.add(pid)

    def _exited(self, pid: int) -> bool:
        return not procs.alive(pid)

    def _wait_ready(self, names: list[str], timeout: float, *, first: bool = False) -> None:
        """Until each sshd listens on its port (and answers a banner); relaunch on a lost port."""
        with ThreadPoolExecutor(max_workers=16) as pool:
            banners = self._wait_listening(names, timeout, first, pool)
            problems = [p for p in (future.result() for future in banners) if p]
        if problems:
            raise FleetError("; ".join(problems))

    def _wait_listening(
        self, names: list[str], timeout: float, first: bool, pool: ThreadPoolExecutor
    ) -> list[Future[str | None]]:
        """Poll /proc until every sshd listens; each one's banner is checked as soon as it does."""
        deadline = time.monotonic() + timeout
        pending = set(names)
        retries = 0
        banners: list[Future[str | None]] = []
        while pending:
            listening = procs.listening()
            for name in sorted(pending):
                runtime = self._runtime[name]
                assert runtime.pid is not None and runtime.sshd_port is not None
                inode = listening.get(runtime.sshd_port)
                if inode is not None and inode in procs.socket_inodes(runtime.pid):
                    ns = procs.mount_ns(runtime.pid)
                    if ns in (None, procs.OWN_MOUNT_NS, procs.INIT_MOUNT_NS):
                        raise FleetError(f"{name}: sshd is not in a private mount namespace")
                    runtime.mount_ns = ns
                    pending.discard(name)
                    banners.append(pool.submit(self._banner, name))
                elif self._exited(runtime.pid):
                    logs = self._log_tail(name)
                    if "Address already in use" in logs and retries < 20:
                        # First start: someone took the port; pick another. Restart: the old
                        # listener's socket is still closing; try the same port again.
                        retries += 1
                        if first:
                            self._move_port(name)
                        else:
                            time.sleep(0.1)
                        self._launch([name])
                        continue
                    raise FleetError(f"{name}: sshd did not start: {logs}")
            if pending and time.monotonic() > deadline:
                raise FleetError(f"sshd not listening after {timeout:.0f}s: {sorted(pending)}")
            if pending:
                time.sleep(0.02)
        return banners

    def _move_port(self, name: str) -> None:
        runtime = self._runtime[name]
        runtime.sshd_port = _allocate_ports(1)[0]
        self._write_sshd_config(name)
        host = self.host(name)
        if host.kind != SLOW:
            self._replace_host(replace(host, port=runtime.sshd_port))

    def _banner(self, name: str) -> str | None:
        """None when the host's sshd sends an SSH banner, else what went wrong."""
        port = self._runtime[name].sshd_port
        assert port is not None
        try:
            with socket.create_connection((ADDRESS, port), timeout=10) as sock:
                data = b""
                while b"\n" not in data and len(data) < 512:
                    chunk = sock.recv(512)
                    if not chunk:
                        break
                    data += chunk
        except OSError as exc:
            return f"{name}: no SSH banner on port {port}: {exc}"
        if not data.startswith(b"SSH-2.0-"):
            return f"{name}: port {port} answered {data[:40]!r}, not an SSH banner"
        return None

    def _logs(self, name: str) -> list[Path]:
        base = self.workdir / "hosts" / name
        return [base / "start.log", base / "run" / "sshd.log"]

    def _log_tail(self, name: str) -> str:
        """What the host's logs got since its last launch, in the last few lines."""
        text = ""
        for path, offset in zip(self._logs(name), self._log_offsets.get(name, (0, 0)), strict=True):
            with contextlib.suppress(OSError), path.open("rb") as handle:
                handle.seek(offset)
                text += handle.read().decode(errors="replace")
        return " / ".join(text.strip().splitlines()[-6:]) or "(no log)"

    def _start_portkeeper(self) -> None:
        unreachable = [h for h in self.hosts if h.kind == UNREACHABLE]
        silent = [h for h in self.hosts if h.kind == SILENT]
        slow = [h for h in self.hosts if h.kind == SLOW]
        if not (unreachable or silent or slow):
            return
        request = {
            "unreachable": len(unreachable),
            "silent": len(silent),
            "slow": [self._runtime[h.name].sshd_port for h in slow],
            "delay": self.slow_delay,
        }
        with (self.workdir / "portkeeper.log").open("ab") as log:
            child = subprocess.Popen(
                [sys.executable, str(PORTKEEPER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                cwd="/",
            )
        self._portkeeper = child.pid
        self._children[child.pid] = child
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps(request).encode())
        child.stdin.close()
        line = child.stdout.readline()
        child.stdout.close()
        if not line:
            raise FleetError(f"the port keeper did not start: see {self.workdir}/portkeeper.log")
        ports = json.loads(line)
        for group in (unreachable, silent, slow):
            for host, port in zip(group, ports[group[0].kind] if group else [], strict=True):
                self._replace_host(replace(host, port=port))

    def _replace_host(self, new: FleetHost) -> None:
        self.hosts = [new if h.name == new.name else h for h in self.hosts]

    # ----------------------------------------------------------------------------- state file

    def _save_state(self) -> None:
        state = {
            "version": 1,
            "workdir": str(self.workdir),
            "slow_delay": self.slow_delay,
            "env": self.env,
            "secrets": self.secrets,
            "portkeeper": self._portkeeper,
            "uid": self._uid,
            "host_keys": self._host_keys,
            "wrong_keys": self._wrong_keys,
            "hosts": [
                {
                    **asdict(host),
                    "key_file": str(host.key_file) if host.key_file else None,
                    "runtime": asdict(self._runtime[host.name])
                    if host.name in self._runtime
                    else None,
                }
                for host in self.hosts
            ],
        }
        path = self.workdir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.touch(mode=0o600)
        tmp.write_text(json.dumps(state, indent=1))
        tmp.rename(path)

    @classmethod
    def load(cls, workdir: Path) -> Fleet:
        """The fleet a ``python -m tests.fleet up --dir`` started, from its state file."""
        workdir = Path(workdir).resolve()
        try:
            state: dict[str, Any] = json.loads((workdir / STATE_FILE).read_text())
        except FileNotFoundError:
            raise FleetError(f"no fleet in {workdir} (no {STATE_FILE})") from None
        fleet = cls(workdir, float(state["slow_delay"]))
        fleet.env = dict(state["env"])
        fleet.secrets = list(state["secrets"])
        fleet._portkeeper = state["portkeeper"]
        fleet._uid = state["uid"]
        fleet._host_keys = dict(state["host_keys"])
        fleet._wrong_keys = dict(state["wrong_keys"])
        for doc in state["hosts"]:
            runtime = doc.pop("runtime")
            doc["key_file"] = Path(doc["key_file"]) if doc["key_file"] else None
            fleet.hosts.append(FleetHost(**doc))
            if runtime is not None:
                fleet._runtime[doc["name"]] = _Runtime(**runtime)
        return fleet

    # ----------------------------------------------------------------------------- queries

    def host(self, name: str) -> FleetHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"no host {name!r} in the fleet")

    def by_kind(self, kind: str) -> list[FleetHost]:
        return [host for host in self.hosts if host.kind == kind]

    def running(self, name: str) -> bool:
        """True while the host's sshd (or the port keeper, for hosts without one) is alive."""
        runtime = self._runtime.get(name)
        if runtime is None:
            return self._portkeeper is not None and self._is_portkeeper(self._portkeeper)
        return runtime.pid is not None and self._is_ours(runtime)

    def status(self) -> list[dict[str, Any]]:
        """One JSON-ready row per host: name, kind, address, port, running, pid, mount_ns and
        the Kaspersky packages installed now (empty when the host has no system or is down)."""
        rows = []
        for host in self.hosts:
            running = self.running(host.name)
            runtime = self._runtime.get(host.name)
            rows.append(
                {
                    "name": host.name,
                    "kind": host.kind,
                    "address": host.address,
                    "port": host.port,
                    "running": running,
                    "pid": runtime.pid if runtime else self._portkeeper,
                    "mount_ns": runtime.mount_ns if runtime else None,
                    "packages": self.kaspersky_packages(host.name)
                    if running and host.has_system
                    else {},
                    "receipts": self.kaspersky_receipts(host.name)
                    if running and host.platform == "macos"
                    else {},
                    "products": self.windows.kaspersky_products(host.name)
                    if running and host.platform == "windows"
                    else {},
                }
            )
        return rows

    def namespaces(self) -> set[str]:
        """The private mount namespaces of the running hosts ('mnt:[...]')."""
        return {rt.mount_ns for rt in self._runtime.values() if rt.mount_ns and rt.pid}

    def pids(self) -> list[int]:
        """Processes the fleet started and tracks: each sshd listener and the port keeper."""
        found = [rt.pid for rt in self._runtime.values() if rt.pid is not None]
        return found + ([self._portkeeper] if self._portkeeper is not None else [])

    def signal(self, name: str, sig: int) -> None:
        """Send ``sig`` to every process of a host — its sshd, each connection's sshd and every
        command running there, whatever session they are in: all processes in its mount
        namespace (SIGSTOP: the host stops answering mid-command; SIGKILL: it dies)."""
        namespace = procs.mount_ns(self._pid(name))
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            if procs.mount_ns(int(entry.name)) == namespace:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(entry.name), sig)

    def _is_ours(self, runtime: _Runtime) -> bool:
        return runtime.pid is not None and (
            runtime.mount_ns is not None and procs.mount_ns(runtime.pid) == runtime.mount_ns
        )

    def _is_portkeeper(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return str(PORTKEEPER).encode() in cmdline and procs.alive(pid)

    def _pid(self, name: str) -> int:
        runtime = self._runtime.get(name)
        if runtime is None:
            raise FleetError(f"{name} ({self.host(name).kind}) has no system, only a port")
        if runtime.pid is None or not self._is_ours(runtime):
            raise FleetError(f"{name} is not running")
        return runtime.pid

    def dpkg_status(self, name: str) -> dict[str, str]:
        """name -> version of every package installed on that host now (dpkg status
        '* ok installed'), so the machine's own packages too; see kaspersky_packages.

        Asked of dpkg-query inside the host: dpkg keeps recent changes in its updates journal
        until it next rewrites the status file, so reading the file alone can be stale (a purge
        cut off half way is in the journal only)."""
        done = self.run_on_host(
            name, ["dpkg-query", "-W", "-f=${Package}\t${Version}\t${Status}\n"]
        )
        if done.returncode not in (0, 1):
            raise FleetError(f"{name}: dpkg-query failed: {done.stderr.strip()}")
        found: dict[str, str] = {}
        for line in done.stdout.splitlines():
            package, _, rest = line.partition("\t")
            version, _, status = rest.partition("\t")
            # The want flag is ignored: a purge whose prerm failed leaves "purge ok installed".
            if status.split()[1:] == ["ok", "installed"]:
                found[package] = version
        return found

    def kaspersky_packages(self, name: str) -> dict[str, str]:
        """dpkg_status limited to the packages the fleet's kinds install."""
        ours = {make().package for makers in PACKAGE_TEMPLATES.values() for make in makers}
        return {k: v for k, v in self.dpkg_status(name).items() if k in ours}

    def receipts(self, name: str) -> dict[str, str]:
        """pkgutil receipt id -> version on a macOS-kind host now, read from the receipt plists
        in its /var/db/receipts (not through the pkgutil shim)."""
        folder = Path(f"/proc/{self._pid(name)}/root/{macos.RECEIPTS}")
        found: dict[str, str] = {}
        for path in sorted(folder.glob("*.plist")) if folder.is_dir() else ():
            with path.open("rb") as handle:
                doc = plistlib.load(handle)
            found[str(doc["PackageIdentifier"])] = str(doc.get("PackageVersion", ""))
        return found

    def kaspersky_receipts(self, name: str) -> dict[str, str]:
        """receipts limited to Kaspersky's (com.kaspersky.*)."""
        return {k: v for k, v in self.receipts(name).items() if k.startswith("com.kaspersky.")}

    def launchd_jobs(self, name: str) -> dict[str, str]:
        """label -> domain ("system", "gui/501") of every job loaded on a macOS-kind host now,
        from the launchctl shim's state file."""
        path = Path(f"/proc/{self._pid(name)}/root/{macos.LAUNCHD_STATE}")
        if not path.exists():
            return {}
        jobs = json.loads(path.read_text())["jobs"]
        return {str(job["label"]): str(job["domain"]) for job in jobs}

    def run_on_host(
        self, name: str, argv: Sequence[str], *, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as root inside the host (its mount and UTS namespaces), not over SSH."""
        pid = self._pid(name)
        return subprocess.run(
            ["nsenter", f"--mount=/proc/{pid}/ns/mnt", f"--uts=/proc/{pid}/ns/uts", "--", *argv],
            input=input,
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": layers.PATH, "LANG": "C.UTF-8"},
        )

    def files_exist(self, name: str, path: str) -> bool:
        """True when ``path`` exists on that host (a dangling symlink counts)."""
        if not path.startswith("/"):
            raise ValueError(f"give an absolute path, not {path!r}")
        result = self.run_on_host(name, ["sh", "-c", '[ -e "$1" ] || [ -L "$1" ]', "sh", path])
        return result.returncode == 0

    def command_entries(self, name: str) -> list[tuple[float, str]]:
        """(epoch seconds, command) for every command the host received over SSH, oldest first."""
        path = self._hostdir(name) / "commands.log"
        entries: list[tuple[float, str]] = []
        with contextlib.suppress(FileNotFoundError):
            for line in path.read_text(errors="replace").split("\n"):
                if not line:
                    continue
                stamp, _, command = line.partition(" ")
                entries.append((float(stamp), _unescape(command)))
        return entries

    def commands_log(self, name: str) -> list[str]:
        """Every command the host received over SSH, oldest first ('' for a login shell)."""
        return [command for _, command in self.command_entries(name)]

    def sshd_log(self, name: str) -> str:
        path = self._hostdir(name) / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ----------------------------------------------------------------------------- client files

    def write_known_hosts(self, path: Path) -> Path:
        """known_hosts for every host with an sshd; the WRONG key for changed_hostkey hosts."""
        lines = []
        for host in self.hosts:
            key = self._wrong_keys.get(host.name) or self._host_keys.get(host.name)
            if key is None:
                continue
            key_type, blob = key.split()[:2]
            lines.append(f"[{host.address}]:{host.port} {key_type} {blob}")
        path = Path(path)
        path.write_text("\n".join(lines) + "\n")
        return path

    def write_inventory(
        self,
        path: Path,
        *,
        known_hosts: Path | None = None,
        include: Collection[str] | None = None,
        encrypted_key: bool = False,
    ) -> Path:
        """kremove's native YAML inventory of the fleet (or of the hosts/kinds in ``include``).

        A behind_jump host brings its jump host along. ``encrypted_key`` uses the client key
        with a passphrase (KREMOVE_FLEET_KEY_PASSPHRASE) instead of the unencrypted one.
        """
        chosen = [
            h for h in self.hosts if include is None or h.name in include or h.kind in include
        ]
        wanted = {h.name for h in chosen} | {h.jump for h in chosen if h.jump}
        chosen = [h for h in self.hosts if h.name in wanted]
        key = self.client_key_encrypted if encrypted_key else self.client_key
        defaults: dict[str, Any] = {
            "transport": "ssh",
            "platform": "linux",
            "user": USER,
        }
        if encrypted_key:
            defaults["key_passphrase_env"] = KEY_PASSPHRASE_ENV
        if known_hosts is not None:
            defaults["known_hosts"] = str(Path(known_hosts).resolve())
        defaults["become"] = True
        hosts: dict[str, Any] = {}
        groups: dict[str, Any] = {}
        for host in chosen:
            entry: dict[str, Any] = {"address": host.address, "port": host.port}
            if host.platform != defaults["platform"]:
                entry["platform"] = host.platform
            if host.key_file is not None:
                entry["key_file"] = str(key)
            if host.password_env:
                entry["password_env"] = host.password_env
            if host.sudo_password_env:
                entry["become"] = {"enabled": True, "password_env": host.sudo_password_env}
            method = KINDS[host.kind].become_method
            if method != "sudo":
                entry["become"] = {**entry.get("become", {"enabled": True}), "method": method}
            if host.jump:
                entry["jump"] = host.jump
            hosts[host.name] = entry
            groups.setdefault(host.kind, {"hosts": []})["hosts"].append(host.name)
        doc = {"version": 1, "defaults": defaults, "hosts": hosts, "groups": groups}
        referenced = sorted(
            {h.password_env for h in chosen if h.password_env}
            | {h.sudo_password_env for h in chosen if h.sudo_password_env}
            | ({KEY_PASSPHRASE_ENV} if encrypted_key else set())
        )
        header = (
            "# kremove inventory of the simulated SSH fleet in "
            f"{self.workdir} (written by tests/fleet)\n"
            f"# it references these variables (see fleet.env): {', '.join(referenced) or 'none'}\n"
        )
        path = Path(path)
        path.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=200))
        return path

    def write_ssh_config(self, path: Path, *, known_hosts: Path | None = None) -> Path:
        """An OpenSSH client config: ``ssh -F PATH h001-one_product`` reaches that host."""
        known = Path(known_hosts or self.write_known_hosts(self.workdir / "known_hosts")).resolve()
        lines = [
            "# OpenSSH client config for the kremove test fleet (tests/fleet)",
            "Host *",
            f"    User {USER}",
            f"    IdentityFile {self.client_key}",
            "    IdentitiesOnly yes",
            f"    UserKnownHostsFile {known}",
            "    GlobalKnownHostsFile /dev/null",
            "    StrictHostKeyChecking yes",
            "    BatchMode yes",
            "    ConnectTimeout 10",
            "    LogLevel ERROR",
        ]
        for host in self.hosts:
            lines += [
                "",
                f"Host {host.name}",
                f"    HostName {host.address}",
                f"    Port {host.port}",
            ]
            if host.jump:
                lines.append(f"    ProxyJump {host.jump}")
            if host.password_env:
                lines += ["    BatchMode no", "    PreferredAuthentications password"]
        path = Path(path)
        path.write_text("\n".join(lines) + "\n")
        return path

    # ----------------------------------------------------------------------------- reset, stop

    def reset(self, name: str | None = None) -> None:
        """Restore one host (or all) to its kind's initial state: a fresh upper dir, sshd
        restarted on the same port, an empty command log. Hosts without a system are untouched."""
        with self._lock:
            names = [
                h.name for h in self.hosts if h.has_system and (name is None or h.name == name)
            ]
            if name is not None and not names:
                self.host(name)  # KeyError for an unknown name
                return
            self._kill(names)
            # A killed sshd's listening socket closes a moment after its namespace is gone.
            ports = {self._runtime[n].sshd_port or 0 for n in names}
            deadline = time.monotonic() + 10
            while procs.listening(ports) and time.monotonic() < deadline:
                time.sleep(0.01)
            old: list[Path] = []
            for host_name in names:
                runtime = self._runtime[host_name]
                base = self.workdir / "hosts" / host_name
                old += [base / f"upper-{runtime.generation}", base / f"work-{runtime.generation}"]
                runtime.generation += 1
                (self._hostdir(host_name) / "commands.log").write_text("")
                windows = KINDS[self.host(host_name).kind].windows
                if windows:
                    windows_openssh.prepare_host(
                        self._hostdir(host_name), host_name, windows, self.env
                    )
            self._launch(names)
            self._wait_ready(names, timeout=120)
            self._save_state()
            for path in old:
                shutil.rmtree(path, ignore_errors=True)

    def _kill(self, names: Iterable[str]) -> None:
        namespaces: set[str] = set()
        for name in names:
            runtime = self._runtime[name]
            if runtime.pid is None:
                continue
            # A pid from the state file is only ours while it is still in the recorded namespace.
            if runtime.pid in self._launched or self._is_ours(runtime):
                procs.kill_group(runtime.pid)
            self._launched.discard(runtime.pid)
            if runtime.mount_ns:
                namespaces.add(runtime.mount_ns)
            runtime.pid = None
        left = procs.kill_namespaces(namespaces)
        if left:
            raise FleetError(f"processes left in the fleet's namespaces: {left}")

    def stop(self) -> None:
        """Kill every process of the fleet; namespaces (and their mounts) go with them."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            with contextlib.suppress(Exception):
                atexit.unregister(self.stop)
            if self._portkeeper is not None:
                child = self._children.pop(self._portkeeper, None)
                if child is not None or self._is_portkeeper(self._portkeeper):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self._portkeeper, signal.SIGKILL)
                if child is not None:
                    child.wait()
                self._portkeeper = None
            self._kill(list(self._runtime))
            with _PORTS_LOCK:
                for runtime in self._runtime.values():
                    _PORTS_TAKEN.discard(runtime.sshd_port or 0)
            with contextlib.suppress(OSError):
                (self.workdir / STATE_FILE).unlink()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Fleet({self.workdir}, {len(self.hosts)} hosts)"


__all__ = [
    "KEY_PASSPHRASE_ENV",
    "PASSWORD_ENV",
    "SUDO_PASSWORD_ENV",
    "WRONG_SUDO_PASSWORD_ENV",
    "Fleet",
    "FleetError",
    "FleetHost",
]
