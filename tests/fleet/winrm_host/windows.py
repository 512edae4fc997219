"""An emulated Windows host: registry, services, files and installed MSI products, from JSON state.

The programs kremove's playbooks call are emulated with their real output formats and exit codes:
``reg query``, ``sc query``, ``msiexec /x``, ``findstr``, ``find``, ``chcp``, plus ``cmd`` itself
(``cmdexe.py``), ``hostname``, ``whoami``, ``timeout`` and ``ping`` (to wait). The state is saved
after every command, so a test reads what the host looks like now.
"""

from __future__ import annotations

import base64
import copy
import datetime
import fnmatch
import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cmdexe import (
    NOT_RECOGNIZED,
    TERMINATED_EXIT,
    Cmd,
    Env,
    ExitCmd,
    Io,
    ProcSink,
    Terminated,
    split_args,
)

HIVES = {
    "HKLM": "HKEY_LOCAL_MACHINE",
    "HKCU": "HKEY_CURRENT_USER",
    "HKCR": "HKEY_CLASSES_ROOT",
    "HKU": "HKEY_USERS",
    "HKCC": "HKEY_CURRENT_CONFIG",
}
NOT_FOUND_KEY = "ERROR: The system was unable to find the specified registry key or value.\r\n"
SERVICES_KEY = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services"
SYSTEM_DIRS = ("c:\\windows\\system32", "c:\\windows\\syswow64", "c:\\windows")
SERVICE_TYPES = {
    1: "KERNEL_DRIVER",
    2: "FILE_SYSTEM_DRIVER",
    16: "WIN32_OWN_PROCESS",
    32: "WIN32_SHARE_PROCESS",
    48: "WIN32",
}
STATES = {"STOPPED": 1, "START_PENDING": 2, "STOP_PENDING": 3, "RUNNING": 4}
# Properties Windows Installer shows as stars in its log (MsiHiddenProperties).
HIDDEN_PROPERTIES = ("KLPASSWD", "KLUNINSTPASSWD")


def _key(path: str) -> str:
    return path.rstrip("\\").casefold()


class Machine:
    """One Windows host's state and the programs that read and change it."""

    def __init__(
        self,
        name: str,
        state: dict[str, Any],
        save_path: Path,
        log: Callable[..., None],
    ) -> None:
        self.name = name
        self.save_path = save_path
        self.log = log
        self.lock = threading.RLock()
        self.load(state)

    # -- state ------------------------------------------------------------------------------------

    def load(self, state: dict[str, Any]) -> None:
        with self.lock:
            self.state = copy.deepcopy(state)
            self.registry: dict[str, tuple[str, dict[str, list[Any]]]] = {}
            for path, values in self.state.pop("registry").items():
                self._add_key(path, values)
            self.files: dict[str, tuple[str, bytes]] = {}
            for path, b64 in self.state.pop("files").items():
                self.files[_key(path)] = (path, base64.b64decode(b64))
            self.dirs: dict[str, str] = {}
            for path in self.state.pop("dirs"):
                self.make_dir(path)
            self.services: dict[str, dict[str, Any]] = self.state.pop("services")
            for service, info in self.services.items():
                flag = {"DeleteFlag": ["REG_DWORD", 1]} if info.get("delete_flag") else {}
                self._add_key(f"{SERVICES_KEY}\\{service}", flag)
            self.save()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                **self.state,
                "registry": {path: values for path, values in self.registry.values()},
                "files": {p: base64.b64encode(d).decode() for p, d in self.files.values()},
                "dirs": sorted(self.dirs.values(), key=str.casefold),
                "services": self.services,
            }

    def save(self) -> None:
        data = json.dumps(self.snapshot(), indent=1, ensure_ascii=False, sort_keys=True)
        tmp = self.save_path.with_suffix(".tmp")
        tmp.write_text(data, encoding="utf-8")
        tmp.replace(self.save_path)

    def environment(self) -> Env:
        user = self.state["user"]
        arch = self.state["arch"]
        values = {
            "ALLUSERSPROFILE": "C:\\ProgramData",
            "APPDATA": f"C:\\Users\\{user}\\AppData\\Roaming",
            "COMPUTERNAME": self.state["computer_name"],
            "ComSpec": "C:\\Windows\\system32\\cmd.exe",
            "LOCALAPPDATA": f"C:\\Users\\{user}\\AppData\\Local",
            "NUMBER_OF_PROCESSORS": "2",
            "OS": "Windows_NT",
            "Path": "C:\\Windows\\system32;C:\\Windows;C:\\Windows\\System32\\Wbem",
            "PATHEXT": ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH;.MSC",
            "PROCESSOR_ARCHITECTURE": arch,
            "ProgramData": "C:\\ProgramData",
            "ProgramFiles": "C:\\Program Files",
            "PROMPT": "$P$G",
            "PUBLIC": "C:\\Users\\Public",
            "SystemDrive": "C:",
            "SystemRoot": "C:\\Windows",
            "TEMP": f"C:\\Users\\{user}\\AppData\\Local\\Temp",
            "TMP": f"C:\\Users\\{user}\\AppData\\Local\\Temp",
            "USERDOMAIN": self.state["computer_name"],
            "USERNAME": user,
            "USERPROFILE": f"C:\\Users\\{user}",
            "windir": "C:\\Windows",
        }
        if arch != "x86":
            values["ProgramFiles(x86)"] = "C:\\Program Files (x86)"
            values["ProgramW6432"] = "C:\\Program Files"
        return Env(values)

    # -- registry ---------------------------------------------------------------------------------

    def _add_key(self, path: str, values: dict[str, list[Any]]) -> None:
        parts = path.split("\\")
        for n in range(1, len(parts)):
            parent = "\\".join(parts[:n])
            self.registry.setdefault(_key(parent), (parent, {}))
        existing = self.registry.get(_key(path))
        if existing is None:
            self.registry[_key(path)] = (path, dict(values))
        else:
            existing[1].update(values)

    def delete_key(self, path: str) -> None:
        prefix = _key(path)
        for k in [k for k in self.registry if k == prefix or k.startswith(prefix + "\\")]:
            del self.registry[k]

    def subkeys(self, path: str) -> list[str]:
        prefix = _key(path) + "\\"
        names = [
            p.rpartition("\\")[2]
            for k, (p, _) in self.registry.items()
            if k.startswith(prefix) and "\\" not in k[len(prefix) :]
        ]
        return sorted(names, key=str.casefold)

    # -- file system ------------------------------------------------------------------------------

    def full_path(self, path: str) -> str:
        path = path.strip('"').replace("/", "\\")
        if not re.match(r"^[A-Za-z]:\\", path):
            path = "C:\\Windows\\system32\\" + path
        return path.rstrip("\\") if len(path) > 3 else path

    def make_dir(self, path: str) -> None:
        full = self.full_path(path)
        parts = full.split("\\")
        for n in range(1, len(parts) + 1):
            sub = "\\".join(parts[:n])
            self.dirs.setdefault(_key(sub), sub)

    def exists(self, path: str) -> bool:
        full = self.full_path(path)
        if full.endswith("\\nul") or full.lower() == "nul":
            return True
        with self.lock:
            return _key(full) in self.dirs or _key(full) in self.files

    def can_write(self, path: str) -> bool:
        full = self.full_path(path)
        parent = full.rpartition("\\")[0]
        with self.lock:
            return _key(parent) in self.dirs and _key(full) not in self.dirs

    def read_file(self, path: str) -> bytes | None:
        with self.lock:
            entry = self.files.get(_key(self.full_path(path)))
        return None if entry is None else entry[1]

    def write_file(self, path: str, data: bytes) -> None:
        full = self.full_path(path)
        with self.lock:
            self.files[_key(full)] = (full, data)
        if full.lower().endswith((".cmd", ".bat")) and data:
            self.log("script", path=full, text=data.decode("utf-8", errors="replace"))

    def delete_file(self, path: str) -> bool:
        """Delete the file, or every file its name's wildcards (* ?) match; False: none was."""
        full = self.full_path(path)
        directory, _, name = full.rpartition("\\")
        with self.lock:
            if "*" not in name and "?" not in name:
                return self.files.pop(_key(full), None) is not None
            pattern = re.compile(fnmatch.translate(_key(name)), re.DOTALL)
            prefix = _key(directory) + "\\"
            matched = [
                k
                for k in self.files
                if k.startswith(prefix)
                and "\\" not in k[len(prefix) :]
                and pattern.match(k[len(prefix) :])
            ]
            for k in matched:
                del self.files[k]
            return bool(matched)

    def resolve_file(self, program: str, exts: tuple[str, ...]) -> str | None:
        if "\\" not in program and ":" not in program:
            return None  # a bare name: a program on PATH, never a file in the current dir here
        for ext in exts:
            full = self.full_path(program + ext)
            if _key(full) in self.files:
                return full
        return None

    # -- processes --------------------------------------------------------------------------------

    def execute(self, proc: Any) -> int:
        """Run one WinRM command (a process started in the shell); its exit code."""
        env = self.environment()
        io = Io(ProcSink(proc, "stdout"), ProcSink(proc, "stderr"), None)
        name, _, rest = proc.command_line.partition(" ")
        cmd = Cmd(self, proc, env, proc.codepage, self.run_program)
        try:
            return self.run_program(cmd, name, rest, io)
        except Terminated:
            return TERMINATED_EXIT
        finally:
            with self.lock:
                self.save()

    def run_program(self, cmd: Cmd, program: str, args: str, io: Io) -> int:
        base = program.replace("/", "\\").rpartition("\\")
        directory, name = base[0].lower(), base[2].lower()
        stem = re.sub(r"\.(exe|com)$", "", name)
        handler = getattr(self, f"_p_{stem}", None)
        if handler is None or (directory and directory not in SYSTEM_DIRS):
            cmd.write(io.err, NOT_RECOGNIZED.format(program))
            return 9009
        result: int = handler(cmd, args, io)
        return result

    # cmd.exe itself (a new process: its own environment copy)
    def _p_cmd(self, parent: Cmd, args: str, io: Io) -> int:
        cmd = Cmd(self, parent.proc, parent.env.copy(), parent.codepage, self.run_program)
        rest = args
        switches: list[str] = []
        while True:
            rest = rest.lstrip(" \t")
            m = re.match(r"/[A-Za-z](:\w+)?", rest)
            if not m:
                break
            switch = m.group(0).lower()
            rest = rest[m.end() :]
            if switch in ("/c", "/k"):
                switches.append(switch)
                break
            switches.append(switch)
        if "/q" in switches:
            cmd.echo = False
        if "/c" not in switches and "/k" not in switches:
            return 0  # an interactive cmd would wait for input; none comes here
        line = rest.lstrip(" \t")
        if line.startswith('"') and (line.count('"') > 2 or "/s" in switches):
            first = line.index('"')
            last = line.rindex('"')
            line = line[:first] + line[first + 1 : last] + line[last + 1 :]
        try:
            return cmd.run_line(line, io)
        except ExitCmd as exc:
            return exc.code

    def _p_chcp(self, cmd: Cmd, args: str, io: Io) -> int:
        words = args.split()
        if words:
            try:
                cmd.codepage = int(words[0])
            except ValueError:
                cmd.write(io.err, "Parameter format not correct - " + words[0] + "\r\n")
                return 1
        cmd.write(io.out, f"Active code page: {cmd.codepage}\r\n")
        return 0

    def _p_hostname(self, cmd: Cmd, args: str, io: Io) -> int:
        cmd.write(io.out, self.state["computer_name"] + "\r\n")
        return 0

    def _p_whoami(self, cmd: Cmd, args: str, io: Io) -> int:
        words = [w.lower() for w in split_args(args)]
        if "/groups" not in words:
            cmd.write(io.out, f"{self.state['computer_name'].lower()}\\{self.state['user']}\r\n")
            return 0
        # /groups /fo csv [/nh]: the token's groups, as an administrator's elevated WinRM login
        # or a standard user's has them (the only output format emulated).
        rows = list(_GROUPS_ADMIN if self.state.get("administrator", True) else _GROUPS_USER)
        if "/nh" not in words:
            rows.insert(0, ("Group Name", "Type", "SID", "Attributes"))
        for row in rows:
            cmd.write(io.out, ",".join(f'"{field}"' for field in row) + "\r\n")
        return 0

    def _p_timeout(self, cmd: Cmd, args: str, io: Io) -> int:
        words = [w.lower() for w in split_args(args)]
        seconds = int(words[words.index("/t") + 1]) if "/t" in words else 0
        if not cmd.proc.sleep(seconds):
            raise Terminated()
        return 0

    def _p_ping(self, cmd: Cmd, args: str, io: Io) -> int:
        words = [w.lower() for w in split_args(args)]
        count = int(words[words.index("-n") + 1]) if "-n" in words else 4
        if not cmd.proc.sleep(max(0, count - 1)):
            raise Terminated()
        cmd.write(io.out, "\r\nPinging 127.0.0.1 with 32 bytes of data:\r\n")
        return 0

    # reg.exe
    def _p_reg(self, cmd: Cmd, args: str, io: Io) -> int:
        words = split_args(args)
        if len(words) < 2 or words[0].lower() != "query":
            cmd.write(io.err, 'ERROR: Invalid syntax.\r\nType "REG /?" for usage.\r\n')
            return 1
        hive, _, rest = words[1].partition("\\")
        root = HIVES.get(hive.upper(), hive.upper() if hive.upper() in HIVES.values() else "")
        if not root:
            cmd.write(io.err, 'ERROR: Invalid key name.\r\nType "REG QUERY /?" for usage.\r\n')
            return 1
        shown = f"{root}\\{rest}".rstrip("\\") if rest else root
        real = shown
        options = [w.lower() for w in words[2:]]
        if (
            "/reg:32" in options
            and re.match(r"(?i)HKEY_LOCAL_MACHINE\\SOFTWARE(\\|$)", real)
            and not re.match(r"(?i)HKEY_LOCAL_MACHINE\\SOFTWARE\\WOW6432Node(\\|$)", real)
        ):
            real = re.sub(
                r"(?i)^HKEY_LOCAL_MACHINE\\SOFTWARE",
                "HKEY_LOCAL_MACHINE\\\\SOFTWARE\\\\WOW6432Node",
                real,
            )
        value_name = None
        if "/v" in options:
            at = options.index("/v")
            value_name = words[2 + at + 1] if 2 + at + 1 < len(words) else ""
        with self.lock:
            entry = self.registry.get(_key(real))
            if entry is None or (self.state["arch"] == "x86" and "wow6432node" in _key(real)):
                cmd.write(io.err, NOT_FOUND_KEY)
                return 1
            out: list[str] = []
            if "/s" in options:
                self._reg_tree(real, shown, out, value_name)
            else:
                values = entry[1]
                if value_name is not None:
                    values = {k: v for k, v in values.items() if k.lower() == value_name.lower()}
                    if not values:
                        cmd.write(io.err, NOT_FOUND_KEY)
                        return 1
                if values:
                    out.append(f"\r\n{shown}\r\n")
                    out.extend(_value_line(k, v) for k, v in values.items())
                if value_name is None:
                    subs = self.subkeys(real)
                    if subs:
                        out.append("\r\n")
                        out.extend(f"{shown}\\{s}\r\n" for s in subs)
            if value_name is not None and "/s" in options and len(out) == 0:
                cmd.write(io.err, NOT_FOUND_KEY)
                return 1
        cmd.write(io.out, "".join(out))
        return 0

    def _reg_tree(self, real: str, shown: str, out: list[str], value_name: str | None) -> None:
        values = self.registry[_key(real)][1]
        if value_name is not None:
            values = {k: v for k, v in values.items() if k.lower() == value_name.lower()}
            if values:
                out.append(f"\r\n{shown}\r\n")
                out.extend(_value_line(k, v) for k, v in values.items())
        else:
            out.append(f"\r\n{shown}\r\n")
            out.extend(_value_line(k, v) for k, v in values.items())
        for sub in self.subkeys(real):
            self._reg_tree(f"{real}\\{sub}", f"{shown}\\{sub}", out, value_name)

    # sc.exe
    def _p_sc(self, cmd: Cmd, args: str, io: Io) -> int:
        words = split_args(args)
        if not words or words[0].lower() not in ("query", "queryex"):
            cmd.write(
                io.out,
                "DESCRIPTION:\r\n        SC is a command line program used for "
                "communicating with the\r\n        Service Control Manager and services.\r\n",
            )
            return 1
        options: dict[str, str] = {}
        name = None
        rest = words[1:]
        i = 0
        while i < len(rest):
            if rest[i].endswith("="):
                options[rest[i][:-1].lower()] = rest[i + 1].lower() if i + 1 < len(rest) else ""
                i += 2
            else:
                name = rest[i]
                i += 1
        with self.lock:
            services = dict(self.services)
        if name is not None:
            match = next((n for n in services if n.lower() == name.lower()), None)
            if match is None:
                cmd.write(
                    io.out,
                    "[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\n"
                    "The specified service does not exist as an installed service.\r\n\r\n",
                )
                return 1060
            cmd.write(io.out, _sc_entry(match, services[match]) + "\r\n")
            return 0
        kind = options.get("type", "service")
        state = options.get("state", "active")
        out = []
        for svc, info in sorted(services.items(), key=lambda kv: kv[0].casefold()):
            driver = info["type"] in (1, 2)
            if (kind == "service" and driver) or (kind == "driver" and not driver):
                continue
            running = info["state"] != "STOPPED"
            if (state == "active" and not running) or (state == "inactive" and running):
                continue
            out.append(_sc_entry(svc, info))
        cmd.write(io.out, "".join(out) + "\r\n")
        return 0

    # findstr.exe and find.exe
    def _p_findstr(self, cmd: Cmd, args: str, io: Io) -> int:
        words = split_args(args)
        flags: set[str] = set()
        literals: list[str] = []
        files: list[str] = []
        for w in words:
            if w.startswith("/") and len(w) > 1:
                if w[1:3].lower() == "c:":
                    literals.append(w[3:])
                else:
                    flags.update(ch.lower() for ch in w[1:] if ch.isalpha())
            elif not literals and "strings" not in flags:
                literals.extend(w.split(" "))
                flags.add("strings")
            else:
                files.append(w)
        if not literals:
            cmd.write(io.err, "FINDSTR: Bad command line\r\n")
            return 2
        use_regex = "r" in flags or ("strings" in flags and "l" not in flags)
        patterns = [_findstr_regex(s, flags, use_regex) for s in literals if s != ""]
        sources: list[tuple[str, bytes]] = []
        if files:
            for f in files:
                data = self.read_file(f)
                if data is None:
                    cmd.write(io.err, f"FINDSTR: Cannot open {f}\r\n")
                    continue
                sources.append((f, data))
        else:
            data = io.stdin if io.stdin is not None else cmd.proc.read_stdin()
            if data is None:
                raise Terminated()
            sources.append(("", data))
        found = False
        for fname, data in sources:
            text = data.decode("latin-1")
            lines = text.split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            for number, line in enumerate(lines, 1):
                bare = line[:-1] if line.endswith("\r") else line
                hit = any(p.search(bare) for p in patterns)
                if hit == ("v" in flags):
                    continue
                found = True
                prefix = f"{fname}:" if len(sources) > 1 else ""
                if "n" in flags:
                    prefix += f"{number}:"
                io.out.write((prefix + bare + "\r\n").encode("latin-1"))
        return 0 if found else 1

    def _p_find(self, cmd: Cmd, args: str, io: Io) -> int:
        words = split_args(args)
        flags = {w.lower() for w in words if w.startswith("/")}
        rest = [w for w in words if not w.startswith("/")]
        needle = rest[0] if rest else None
        if needle is None:
            cmd.write(io.err, "FIND: Parameter format not correct\r\n")
            return 2
        data = io.stdin if io.stdin is not None else cmd.proc.read_stdin()
        if data is None:
            raise Terminated()
        lines = data.decode("latin-1").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        hits = [ln for ln in lines if (needle != "" and needle in ln) != ("/v" in flags)]
        if "/c" in flags:
            cmd.write(io.out, f"{len(hits)}\r\n")
        else:
            io.out.write("".join(ln.rstrip("\r") + "\r\n" for ln in hits).encode("latin-1"))
        return 0 if hits else 1

    # msiexec.exe
    def _p_msiexec(self, cmd: Cmd, args: str, io: Io) -> int:
        words = split_args(args)
        code: str | None = None
        log_path: str | None = None
        props: dict[str, str] = {}
        i = 0
        while i < len(words):
            w = words[i]
            low = w.lower()
            if low in ("/x", "/uninstall"):
                code = words[i + 1] if i + 1 < len(words) else None
                i += 2
                continue
            if low.startswith("/x{"):
                code = w[2:]
            elif low.startswith("/l"):
                log_path = words[i + 1] if i + 1 < len(words) else None
                i += 2
                continue
            elif "=" in w and not w.startswith("/"):
                name, _, value = w.partition("=")
                props[name.upper()] = value
            i += 1
        if code is None:
            self.log("msiexec", args=args, exit_code=1639)
            return 1639
        result = self._uninstall(cmd, code.upper(), props, log_path)
        self.log("msiexec", product_code=code, properties=sorted(props), exit_code=result)
        return result

    def _uninstall(self, cmd: Cmd, code: str, props: dict[str, str], log_path: str | None) -> int:
        log = MsiLog(code, props)
        with self.lock:
            product = self.state["products"].get(code)
        if product is None or _key(product["key"]) not in self.registry:
            log.line(
                "MSI (c) (A4:3C) [{t}]: Product: {code} -- Error 1605. This action is only "
                "valid for products that are currently installed."
            )
            log.end(1605)
            self._write_log(log_path, log)
            return 1605
        log.product(product)
        required = product.get("password")
        if required and any(props.get(k) != v for k, v in required.items()):
            log.password_failure(product)
            log.end(1603)
            self._write_log(log_path, log)
            return 1603
        if product.get("behaviour") == "no_source":  # the cached MSI was deleted
            log.line(
                "MSI (c) (A4:3C) [{t}]: Product: {code} -- Error 1612. The installation source "
                "for this product is not available. Verify that the source exists and that you "
                "can access it."
            )
            log.end(1612)
            self._write_log(log_path, log)
            return 1612
        if product.get("behaviour") == "hang":
            log.line("MSI (s) (B8:2C) [{t}]: Executing op: ActionStart(Name=StopServices,,)")
            self._write_log(log_path, log)
            while not cmd.proc.cancelled.wait(0.2):
                pass
            raise Terminated()
        reboot = product.get("behaviour") == "reboot"
        with self.lock:
            self._remove_product(code, product, reboot)
        log.success(product, reboot)
        rc = 3010 if reboot else 0
        log.end(rc)
        self._write_log(log_path, log)
        return rc

    def _remove_product(self, code: str, product: dict[str, Any], reboot: bool) -> None:
        self.delete_key(product["key"])
        del self.state["products"][code]
        others: set[str] = set()
        for other in self.state["products"].values():
            owned = other.get("owns", {})
            others.update(
                _key(x) for kind in ("keys", "services", "dirs") for x in owned.get(kind, [])
            )
        owns = product.get("owns", {})
        kept = (
            {s.lower() for s in product.get("after_reboot", {}).get("services", [])}
            if reboot
            else set()
        )
        for key in owns.get("keys", []):
            if _key(key) not in others:
                self.delete_key(key)
        for service in owns.get("services", []):
            if _key(service) in others:
                continue
            if service.lower() in kept:  # deleted while it runs: marked, gone at the reboot
                self.services[service]["state"] = "STOP_PENDING"
                self.services[service]["delete_flag"] = True
                self._add_key(f"{SERVICES_KEY}\\{service}", {"DeleteFlag": ["REG_DWORD", 1]})
                continue
            self.services.pop(service, None)
            self.delete_key(f"{SERVICES_KEY}\\{service}")
        for directory in owns.get("dirs", []):
            if _key(directory) in others:
                continue
            prefix = _key(self.full_path(directory))
            for k in [k for k in self.dirs if k == prefix or k.startswith(prefix + "\\")]:
                del self.dirs[k]
            for k in [k for k in self.files if k.startswith(prefix + "\\")]:
                del self.files[k]

    def _write_log(self, path: str | None, log: MsiLog) -> None:
        if path and self.can_write(path):
            self.write_file(path, b"\xff\xfe" + log.text().encode("utf-16-le"))


def _value_line(name: str, value: list[Any]) -> str:
    kind, data = value
    if kind in ("REG_DWORD", "REG_QWORD"):
        text = f"0x{int(data):x}"
    elif kind == "REG_MULTI_SZ":
        text = "\\0".join(data)
    elif kind == "REG_BINARY":
        text = str(data).upper()
    else:
        text = str(data)
    return f"    {name or '(Default)'}    {kind}    {text}\r\n"


def _sc_entry(name: str, info: dict[str, Any]) -> str:
    kind = info["type"]
    state = info["state"]
    code = STATES[state]
    if state == "RUNNING":
        flags = "(STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)"
    else:
        flags = "(NOT_STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)"
    return (
        f"\r\nSERVICE_NAME: {name}\r\n"
        f"DISPLAY_NAME: {info.get('display', name)}\r\n"
        f"        TYPE               : {kind:x}  {SERVICE_TYPES.get(kind, 'UNKNOWN')}  \r\n"
        f"        STATE              : {code}  {state} \r\n"
        f"                                {flags}\r\n"
        "        WIN32_EXIT_CODE    : 0  (0x0)\r\n"
        "        SERVICE_EXIT_CODE  : 0  (0x0)\r\n"
        "        CHECKPOINT         : 0x0\r\n"
        "        WAIT_HINT          : 0x0\r\n"
    )


def _findstr_regex(text: str, flags: set[str], regex: bool) -> re.Pattern[str]:
    if regex:
        out = []
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "\\" and i + 1 < len(text):
                nxt = text[i + 1]
                out.append({"<": r"\b", ">": r"\b"}.get(nxt, re.escape(nxt)))
                i += 2
                continue
            if ch == "[":
                end = text.find("]", i + 1)
                if end > 0:
                    out.append(text[i : end + 1])
                    i = end + 1
                    continue
            out.append({"^": "^", "$": "$", ".": ".", "*": "*"}.get(ch, re.escape(ch)))
            i += 1
        body = "".join(out)
    else:
        body = re.escape(text)
    if "x" in flags:
        body = f"^(?:{body})$"
    else:
        if "b" in flags:
            body = f"^(?:{body})"
        if "e" in flags:
            body = f"(?:{body})$"
    return re.compile(body, re.IGNORECASE if "i" in flags else 0)


class MsiLog:
    """A Windows Installer verbose log, in its layout (hidden properties shown as stars)."""

    def __init__(self, code: str, props: dict[str, str]) -> None:
        self.code = code
        self.lines: list[str] = []
        now = datetime.datetime.now()
        self.stamp = now.strftime("%H:%M:%S")
        day = f"{now.month}/{now.day}/{now.year}"
        shown = " ".join(
            f"{k}={'**********' if k in HIDDEN_PROPERTIES else v}" for k, v in props.items()
        )
        self.lines += [
            f"=== Verbose logging started: {day}  {self.stamp}  Build type: SHIP UNICODE "
            "5.00.10011.00  Calling process: C:\\Windows\\System32\\msiexec.exe ===",
            "MSI (c) (A4:3C) [{t}]: Resetting cached policy values",
            "MSI (c) (A4:3C) [{t}]: Machine policy value 'Debug' is 0",
            "MSI (c) (A4:3C) [{t}]: ******* RunEngine:",
            f"           ******* Product: {code}",
            "           ******* Action: ",
            "           ******* CommandLine: **********",
            "MSI (s) (B8:2C) [{t}]: Command Line: REMOVE=ALL "
            + shown
            + " CURRENTDIRECTORY=C:\\Windows\\system32 CLIENTUILEVEL=3 CLIENTPROCESSID=4260 ",
        ]

    def line(self, text: str) -> None:
        self.lines.append(text)

    def product(self, product: dict[str, Any]) -> None:
        self.lines += [
            "MSI (s) (B8:2C) [{t}]: Product Code passed to Engine.Initialize:           '"
            + self.code
            + "'",
            "Action start {t}: INSTALL.",
            "Action start {t}: CostInitialize.",
            "Action ended {t}: CostInitialize. Return value 1.",
        ]

    def password_failure(self, product: dict[str, Any]) -> None:
        self.lines += [
            "Action start {t}: CheckUninstallPassword.",
            "MSI (s) (B8:2C) [{t}]: Invoking remote custom action. DLL: "
            "C:\\Windows\\Installer\\MSI5A1.tmp, Entrypoint: CheckUninstallPassword",
            "CheckUninstallPassword: uninstall protection is on; the password properties "
            "are missing or wrong",
            "CustomAction CheckUninstallPassword returned actual error code 1603 (note this may "
            "not be 100% accurate if translation happened inside sandbox)",
            "Action ended {t}: CheckUninstallPassword. Return value 3.",
            "Action ended {t}: INSTALL. Return value 3.",
            f"MSI (s) (B8:2C) [{{t}}]: Product: {product['name']} -- Removal failed.",
            "MSI (s) (B8:2C) [{t}]: Windows Installer removed the product. Product Name: "
            f"{product['name']}. Product Version: {product['version']}. Product Language: 1033. "
            f"Manufacturer: {product['manufacturer']}. Removal success or error status: 1603.",
        ]

    def success(self, product: dict[str, Any], reboot: bool) -> None:
        self.lines += [
            "Action start {t}: InstallValidate.",
            "Action ended {t}: InstallValidate. Return value 1.",
            "Action start {t}: RemoveFiles.",
            "Action ended {t}: RemoveFiles. Return value 1.",
            "Action ended {t}: INSTALL. Return value 1.",
            f"MSI (s) (B8:2C) [{{t}}]: Product: {product['name']} -- Removal completed "
            "successfully.",
            "MSI (s) (B8:2C) [{t}]: Windows Installer removed the product. Product Name: "
            f"{product['name']}. Product Version: {product['version']}. Product Language: 1033. "
            f"Manufacturer: {product['manufacturer']}. Removal success or error status: 0.",
        ]
        if reboot:
            self.lines.append(
                "MSI (s) (B8:2C) [{t}]: Windows Installer requires a system restart. Product "
                f"Name: {product['name']}. Type of System Restart: 2. Reason for Restart: 1."
            )

    def end(self, rc: int) -> None:
        self.lines += [
            f"MSI (c) (A4:3C) [{{t}}]: MainEngineThread is returning {rc}",
            "=== Verbose logging stopped: {d}  {s} ===",
        ]

    def text(self) -> str:
        now = datetime.datetime.now()
        t = now.strftime("%H:%M:%S:") + f"{now.microsecond // 1000:03d}"
        d = f"{now.month}/{now.day}/{now.year}"
        return "".join(
            ln.replace("{t}", t).replace("{d}", d).replace("{s}", self.stamp) + "\r\n"
            for ln in self.lines
        )


_ENABLED = "Mandatory group, Enabled by default, Enabled group"
_GROUPS_USER = (
    ("Everyone", "Well-known group", "S-1-1-0", _ENABLED),
    ("BUILTIN\\Users", "Alias", "S-1-5-32-545", _ENABLED),
    ("NT AUTHORITY\\NETWORK", "Well-known group", "S-1-5-2", _ENABLED),
    ("NT AUTHORITY\\Authenticated Users", "Well-known group", "S-1-5-11", _ENABLED),
    ("NT AUTHORITY\\NTLM Authentication", "Well-known group", "S-1-5-64-10", _ENABLED),
    ("Mandatory Label\\Medium Mandatory Level", "Label", "S-1-16-8192", ""),
)
_GROUPS_ADMIN = (
    *_GROUPS_USER[:1],
    ("BUILTIN\\Administrators", "Alias", "S-1-5-32-544", f"{_ENABLED}, Group owner"),
    *_GROUPS_USER[1:-1],
    ("Mandatory Label\\High Mandatory Level", "Label", "S-1-16-12288", ""),
)
