"""ansible.cfg and the ANSIBLE_* variables, found and read as Ansible does, for what kremove
takes from them (docs/inventory.md, "ansible.cfg").

Found as ansible-core's config/manager.py finds it: the first readable of $ANSIBLE_CONFIG (a
directory: its ansible.cfg), ./ansible.cfg (passed over, with a note, in a world-writable
directory), ~/.ansible.cfg, /etc/ansible/ansible.cfg; only that one file is read. An ANSIBLE_*
variable wins over the file, and of several keys for one setting the last given wins. Relative
paths in the file are relative to its directory, in a variable to the current one.

kremove takes the inventory, the login defaults (remote_user, private_key_file, become,
become_user) and the vault password settings; host-key settings that would weaken its checks
are never followed, each named in a warning with kremove's safe equivalent.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import InputError
from orchestrator.inventory.overrides import ConnectionDefaults
from orchestrator.inventory.ssh_args import hostkey_warning

SYSTEM_CONFIG = Path("/etc/ansible/ansible.cfg")
DEFAULT_INVENTORY = Path("/etc/ansible/hosts")  # Ansible's when nothing names one
TRUE = frozenset({"y", "yes", "on", "1", "true", "t"})
FALSE = frozenset({"n", "no", "off", "0", "false", "f"})
# kremove's name → (environment variables, [section] keys), each list in Ansible's order.
SETTINGS: Mapping[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "inventory": (("ANSIBLE_INVENTORY",), (("defaults", "inventory"),)),
    "remote_user": (("ANSIBLE_REMOTE_USER",), (("defaults", "remote_user"),)),
    "private_key_file": (("ANSIBLE_PRIVATE_KEY_FILE",), (("defaults", "private_key_file"),)),
    "become": (("ANSIBLE_BECOME",), (("privilege_escalation", "become"),)),
    "become_user": (("ANSIBLE_BECOME_USER",), (("privilege_escalation", "become_user"),)),
    "host_key_checking": (
        ("ANSIBLE_HOST_KEY_CHECKING", "ANSIBLE_SSH_HOST_KEY_CHECKING"),
        (("defaults", "host_key_checking"), ("ssh_connection", "host_key_checking")),
    ),
    "ssh_args": (("ANSIBLE_SSH_ARGS",), (("ssh_connection", "ssh_args"),)),
    "ssh_common_args": (("ANSIBLE_SSH_COMMON_ARGS",), (("ssh_connection", "ssh_common_args"),)),
    "ssh_extra_args": (("ANSIBLE_SSH_EXTRA_ARGS",), (("ssh_connection", "ssh_extra_args"),)),
    "vault_password_file": (
        ("ANSIBLE_VAULT_PASSWORD_FILE",),
        (("defaults", "vault_password_file"),),
    ),
    "vault_identity_list": (
        ("ANSIBLE_VAULT_IDENTITY_LIST",),
        (("defaults", "vault_identity_list"),),
    ),
}
SSH_ARGS = ("ssh_args", "ssh_common_args", "ssh_extra_args")
PARSE_ERRORS = {
    "DuplicateOptionError": "a key given twice in one section; keep one",
    "DuplicateSectionError": "a [section] given twice; merge them",
    "MissingSectionHeaderError": "a key before any [section]; put it under [defaults]",
    "ParsingError": "a line that is not [section], key = value or an indented continuation",
}
KEY_LINE = re.compile(r"([^=:\s;#\[][^=:]*?)\s*[=:]")
SECTION_LINE = re.compile(r"\[([^\]]+)\]")


@dataclass(frozen=True)
class Setting:
    """One value, where it was given (``ansible.cfg:7`` or ``environment``) and as what
    (``[defaults] remote_user``, ``ANSIBLE_REMOTE_USER``); ``base``: the directory a relative
    path in it is relative to (the file's; the current directory's for a variable)."""

    value: str
    where: str
    name: str
    base: Path | None = None

    @property
    def label(self) -> str:
        return f"{self.where}: {self.name}"

    def path(self) -> Path:
        """As Ansible's type ``path``: ``~`` and ``$VARS`` expanded, relative to ``base``."""
        return _path(self.value, self.base)

    def paths(self) -> list[Path]:
        """As type ``pathlist``: comma separated paths (empty parts left out)."""
        parts = [part.strip() for part in self.value.split(",")]
        return [_path(part, self.base) for part in parts if part]

    def flag(self) -> bool:
        word = self.value.strip().lower()
        if word in TRUE or word in FALSE:
            return word in TRUE
        raise InputError(f"{self.label}: expected true or false (yes/no, on/off, 1/0)")


def _path(text: str, base: Path | None) -> Path:
    expanded = Path(os.path.expanduser(os.path.expandvars(text)))
    return expanded if expanded.is_absolute() else (base or Path.cwd()) / expanded


@dataclass(frozen=True)
class AnsibleConfig:
    """The settings kremove reads, from the environment and the one ansible.cfg found."""

    file: Path | None = None
    settings: Mapping[str, Setting] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what finding the file said

    def get(self, name: str) -> Setting | None:
        return self.settings.get(name)

    def inventory(self) -> tuple[list[Path], str] | None:
        """The configured inventory and where it was configured; Ansible's default
        /etc/ansible/hosts where nothing names one and it exists."""
        setting = self.get("inventory")
        if setting is not None and setting.paths():
            return setting.paths(), setting.label
        if DEFAULT_INVENTORY.exists():
            return [DEFAULT_INVENTORY], "Ansible's default inventory"
        return None

    def text(self, name: str) -> str | None:
        setting = self.get(name)
        value = setting.value.strip() if setting else ""
        return value or None

    def path(self, name: str) -> Path | None:
        setting = self.get(name)
        return setting.path() if setting and setting.value.strip() else None

    def flag(self, name: str) -> bool | None:
        setting = self.get(name)
        return setting.flag() if setting and setting.value.strip() else None

    def connection_defaults(self) -> ConnectionDefaults:
        """remote_user, private_key_file, become and become_user as defaults below the command
        line's -u, --private-key, -b and --become-user (``become = false`` is no default: as
        when nothing is said, kremove becomes root where it must and can)."""
        return ConnectionDefaults(
            user=self.text("remote_user"),
            private_key=self.path("private_key_file"),
            become=bool(self.flag("become")),
            become_user=self.text("become_user"),
        )

    def vault_ids(self) -> list[str]:
        setting = self.get("vault_identity_list")
        if setting is None:
            return []
        return [_unquoted(part.strip()) for part in setting.value.split(",") if part.strip()]

    def warnings(self) -> list[str]:
        """One line for each setting kremove does not follow though it would change how hosts
        are reached: weakened host key checks, jump hosts given in ssh arguments."""
        said = list(self.notes)
        checking = self.get("host_key_checking")
        if checking is not None and checking.flag() is False:
            shown = f"{checking.name} = {checking.value.strip()}"
            said.append(hostkey_warning(shown, checking.where))
        for name in SSH_ARGS:
            setting = self.get(name)
            if setting is not None:
                said += _ssh_arg_warnings(setting)
        return said


def _ssh_arg_warnings(setting: Setting) -> list[str]:
    try:
        words = shlex.split(setting.value)
    except ValueError:
        return [f"{setting.label}: cannot be split as a shell would; kremove ignores it"]
    said = []
    for at, word in enumerate(words):
        if word.startswith("-J"):
            said.append(_jump_warning(word, setting.label))
            continue
        option = word[2:] if word.startswith("-o") else None
        if word == "-o":
            option = words[at + 1] if at + 1 < len(words) else ""
        name, _, value = (option or "").replace("=", " ", 1).partition(" ")
        key, value = name.strip().lower(), value.strip()
        if _weakens(key, value):
            said.append(hostkey_warning(f"{setting.name} -o {option}", setting.where))
        elif key in ("proxyjump", "proxycommand"):
            said.append(_jump_warning(f"-o {option}", setting.label))
    return said


def _weakens(key: str, value: str) -> bool:
    """An ssh option that turns host key checks off (or accepts new keys unrecorded)."""
    if key == "stricthostkeychecking":
        return value.lower() in ("no", "off", "accept-new")
    return key in ("userknownhostsfile", "globalknownhostsfile") and value == "/dev/null"


def _jump_warning(argument: str, where: str) -> str:
    return (
        f"{where}: {argument} is not followed (kremove takes jump hosts from the inventory, not "
        "from ansible.cfg): the hosts would be dialled directly; write it as "
        "ansible_ssh_common_args in group_vars/all.yml"
    )


def _unquoted(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def find(
    env: Mapping[str, str], cwd: Path, home: Path | None
) -> tuple[Path | None, tuple[str, ...]]:
    """The ansible.cfg Ansible would read, and a note when one in a world-writable current
    directory was passed over (Ansible warns alike)."""
    candidates: list[Path] = []
    from_env = env.get("ANSIBLE_CONFIG")
    if from_env is not None:
        path = Path(os.path.expanduser(os.path.expandvars(from_env)))
        path = path if path.is_absolute() else cwd / path
        candidates.append(path / "ansible.cfg" if path.is_dir() else path)
    notes: tuple[str, ...] = ()
    here = cwd / "ansible.cfg"
    try:
        public = bool(cwd.stat().st_mode & stat.S_IWOTH)
    except OSError:
        public = True  # an unreadable directory is passed over, as in Ansible
    if not public:
        candidates.append(here)
    elif here.exists():
        notes = (
            f"{here} is not read: the current directory is world-writable (anyone could have "
            "put it there), as Ansible also refuses; move it, or name it with ANSIBLE_CONFIG",
        )
    if home is not None:
        candidates.append(home / ".ansible.cfg")
    candidates.append(SYSTEM_CONFIG)
    for path in candidates:
        if path.is_file() and os.access(path, os.R_OK):
            return path, (() if from_env is not None and path == candidates[0] else notes)
    return None, notes


def load(
    env: Mapping[str, str] | None = None, cwd: Path | None = None, home: Path | None = None
) -> AnsibleConfig:
    """The configuration Ansible would use here (``env``, ``cwd`` and ``home`` default to this
    process's); a file that cannot be read is one InputError naming it."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    if home is None and env.get("HOME"):
        home = Path(env["HOME"])
    file, notes = find(env, cwd, home)
    parser, lines = _parse(file) if file is not None else (None, {})
    settings: dict[str, Setting] = {}
    for name, (variables, keys) in SETTINGS.items():
        for section, key in keys:
            value = _get(parser, section, key)
            if value is not None and file is not None:
                line = lines.get((section, key)) or lines.get(("DEFAULT", key))
                where = f"{file}:{line}" if line else str(file)
                settings[name] = Setting(value, where, f"[{section}] {key}", file.parent)
        for variable in variables:
            if variable in env:
                settings[name] = Setting(env[variable], "environment", variable, cwd)
    return AnsibleConfig(file, settings, notes)


def _get(parser: configparser.ConfigParser | None, section: str, key: str) -> str | None:
    if parser is None:
        return None
    try:
        value = parser.get(section, key, raw=True)
    except (configparser.NoSectionError, configparser.NoOptionError):
        return None
    return _unquoted(value.strip()) if value is not None else None


def _parse(file: Path) -> tuple[configparser.ConfigParser, dict[tuple[str, str], int]]:
    """The file as Ansible's ConfigParser reads it (``;`` inline comments, no interpolation on
    read), and the line of each key, for messages."""
    if file.suffix not in (".cfg", ".ini"):
        raise InputError(f"{file}: Ansible reads only .cfg or .ini configuration files")
    try:
        text = file.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(f"{file}: cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{file}: is not UTF-8 text; save it as UTF-8") from None
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    try:
        parser.read_string(text, source=str(file))
    except configparser.Error as exc:
        line = getattr(exc, "lineno", None) or _first_error_line(exc)
        where = f"{file}:{line}" if line else str(file)
        problem = PARSE_ERRORS.get(type(exc).__name__, "it cannot be read")
        raise InputError(f"{where}: Ansible cannot read this configuration: {problem}") from None
    return parser, _key_lines(text)


def _first_error_line(exc: configparser.Error) -> int | None:
    errors = getattr(exc, "errors", None)
    return int(errors[0][0]) if errors else None


def _key_lines(text: str) -> dict[tuple[str, str], int]:
    lines: dict[tuple[str, str], int] = {}
    section = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line or line[0].isspace():
            continue  # a continuation line
        header = SECTION_LINE.match(line)
        if header:
            section = header.group(1).strip()
            continue
        key = KEY_LINE.match(line)
        if key:
            lines.setdefault((section, key.group(1).strip().lower()), number)
    return lines
