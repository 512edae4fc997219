"""Host key verification: the user's known_hosts, an inventory's, and the keys kremove pinned.

Never trust on first use silently: an unknown key is refused unless the operator asked kremove to
pin new keys (``--accept-new-hostkeys``), and a key that differs from a recorded one is refused
always, naming both fingerprints. The key types a host is known by are offered first in the key
exchange, so that a host recorded with, say, an RSA key is not mistaken for an unknown one because
the server would have preferred Ed25519 (paramiko#350, #865).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from paramiko import PKey
from paramiko.hostkeys import HostKeyEntry, InvalidHostKey
from paramiko.ssh_exception import SSHException

from orchestrator.ledger.paths import check_private_dir, check_private_file

# What the user's own OpenSSH trusts; read when present.
SYSTEM_FILES = ("/etc/ssh/ssh_known_hosts",)
USER_FILES = ("~/.ssh/known_hosts",)

# A stored key of one type can be verified through these negotiated host-key algorithms.
_ALGORITHMS = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")}


def fingerprint(key: PKey) -> str:
    """OpenSSH's SHA256 fingerprint: ``SHA256:`` and unpadded base64 of the key blob's digest."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def known_hosts_name(address: str, port: int) -> str:
    """How known_hosts names a host: ``name`` on port 22, ``[name]:port`` otherwise."""
    return address if port == 22 else f"[{address}]:{port}"


@dataclass(frozen=True)
class _Entry:
    patterns: tuple[str, ...]
    key: PKey
    revoked: bool
    origin: str  # file:line, for messages


class _Table:
    """Entries in file order, with plain host names indexed: a lookup costs the same at 10 or
    10,000 recorded hosts. Hashed, wildcard and negated patterns are matched one by one, as
    OpenSSH does."""

    def __init__(self, entries: Iterable[_Entry] = ()) -> None:
        self._entries: list[_Entry] = []
        self._by_name: dict[str, list[int]] = {}
        self._scanned: list[int] = []  # entries with a pattern that is not a plain name
        for entry in entries:
            self.append(entry)

    def append(self, entry: _Entry) -> None:
        index = len(self._entries)
        self._entries.append(entry)
        if any(p.startswith(("!", "|")) or "*" in p or "?" in p for p in entry.patterns):
            self._scanned.append(index)
            return
        for pattern in dict.fromkeys(entry.patterns):
            self._by_name.setdefault(pattern, []).append(index)

    def lookup(self, name: str) -> list[_Entry]:
        hits = self._by_name.get(name, [])
        if self._scanned:
            scanned = [i for i in self._scanned if _matches(self._entries[i].patterns, name)]
            hits = sorted([*hits, *scanned])
        return [self._entries[i] for i in hits]


@dataclass(frozen=True)
class Verdict:
    """``known``: a recorded key matches; ``unknown``: nothing recorded; ``changed``: it differs."""

    state: str  # known | unknown | changed | revoked
    expected: tuple[str, ...] = ()  # "ssh-ed25519 SHA256:..." of the recorded keys (changed)
    origin: str = ""  # where the matching or contradicting record is


class KnownHosts:
    """Every known_hosts file of a run, read once, shared by all hosts; pins go to ``pin_file``."""

    def __init__(self, files: Sequence[str | Path], pin_file: Path | None) -> None:
        if pin_file is not None:
            _check_pin_file(pin_file)
        self._lock = threading.Lock()
        self._pin_file = pin_file
        self._base = _Table(
            entry
            for f in (*files, *([pin_file] if pin_file else []))
            for entry in _read(Path(f).expanduser())
        )
        self._extra: dict[Path, _Table] = {}

    @classmethod
    def default(cls, pin_file: Path | None) -> KnownHosts:
        return cls([*SYSTEM_FILES, *USER_FILES], pin_file)

    @property
    def pin_file(self) -> Path | None:
        return self._pin_file

    def _for(self, name: str, extra: str | None) -> list[_Entry]:
        """The entries for ``name``: the host's own known_hosts file first, then the run's."""
        with self._lock:
            found = self._base.lookup(name)
            if extra is None:
                return found
            path = Path(extra).expanduser()
            if path not in self._extra:
                self._extra[path] = _Table(_read(path))
            return self._extra[path].lookup(name) + found

    def preferred_algorithms(
        self, name: str, extra: str | None, offered: Iterable[str]
    ) -> list[str]:
        """``offered`` reordered so that the key types recorded for ``name`` come first."""
        offered = list(offered)
        first: list[str] = []
        for entry in self._for(name, extra):
            if entry.revoked:
                continue
            for algorithm in _ALGORITHMS.get(entry.key.get_name(), (entry.key.get_name(),)):
                if algorithm in offered and algorithm not in first:
                    first.append(algorithm)
        return first + [a for a in offered if a not in first]

    def check(self, name: str, key: PKey, extra: str | None) -> Verdict:
        entries = self._for(name, extra)
        blob = key.asbytes()
        for entry in entries:
            if entry.revoked and hmac.compare_digest(entry.key.asbytes(), blob):
                return Verdict("revoked", origin=entry.origin)
        for entry in entries:
            if not entry.revoked and hmac.compare_digest(entry.key.asbytes(), blob):
                return Verdict("known", origin=entry.origin)
        recorded = [e for e in entries if not e.revoked]
        if not recorded:
            return Verdict("unknown")
        return Verdict(
            "changed",
            tuple(f"{e.key.get_name()} {fingerprint(e.key)}" for e in recorded),
            recorded[0].origin,
        )

    def pin(self, name: str, key: PKey) -> None:
        """Append ``name``'s key to the pin file (0600) and trust it for the rest of the run."""
        if self._pin_file is None:
            raise OSError("no file to pin host keys in")
        line = f"{name} {key.get_name()} {key.get_base64()}\n"
        with self._lock:
            self._pin_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self._pin_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("ascii"))
            finally:
                os.close(fd)
            self._base.append(_Entry((name,), key, False, f"{self._pin_file} (pinned)"))


def _check_pin_file(pin_file: Path) -> None:
    """Keys pinned beside the ledger are trusted like the user's own known_hosts: refuse the file
    (and its directory) when someone else could have added a key (issue 15, L4). Others may read
    it: host keys are public."""
    if pin_file.parent.is_dir():
        check_private_dir(pin_file.parent)
    check_private_file(
        pin_file,
        "pinned host key file",
        "a key could have been added to it",
        "check the keys in it",
    )


def _read(path: Path) -> list[_Entry]:
    """Entries of one known_hosts file; lines kremove cannot use are skipped, as OpenSSH does."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError:
        return []
    entries = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        revoked = False
        if line.startswith("@"):
            marker, _, line = line.partition(" ")
            if marker != "@revoked":
                continue  # @cert-authority: certificates are not used by kremove
            revoked = True
            line = line.strip()
        try:
            entry = HostKeyEntry.from_line(line, lineno)
        except (InvalidHostKey, SSHException, ValueError, binascii.Error):
            continue
        if entry is None or entry.key is None:
            continue
        entries.append(_Entry(tuple(entry.hostnames), entry.key, revoked, f"{path}:{lineno}"))
    return entries


def _matches(patterns: Sequence[str], name: str) -> bool:
    """OpenSSH host matching: hashed names, wildcards, and ``!negation`` (which wins)."""
    hit = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern[1:] if negated else pattern
        if pattern.startswith("|1|"):
            matched = _hashed_match(pattern, name)
        elif "*" in pattern or "?" in pattern:
            matched = fnmatch.fnmatchcase(name, pattern)
        else:
            matched = pattern == name
        if matched and negated:
            return False
        hit = hit or matched
    return hit


def _hashed_match(pattern: str, name: str) -> bool:
    try:
        _, _, salt64, digest64 = pattern.split("|", 3)
        salt = base64.b64decode(salt64)
        expected = base64.b64decode(digest64)
    except (ValueError, binascii.Error):
        return False
    actual = hmac.new(salt, name.encode("utf-8"), hashlib.sha1).digest()
    return hmac.compare_digest(actual, expected)
