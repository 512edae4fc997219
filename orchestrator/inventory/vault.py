"""Ansible Vault values and files, opened with `cryptography` (formats 1.1 and 1.2, AES256).

The format, as Ansible documents it: a header ``$ANSIBLE_VAULT;1.1;AES256`` (1.2 adds ``;LABEL``,
the vault id), then lines of hex that decode to ``hex(salt) \\n hex(hmac) \\n hex(ciphertext)``.
PBKDF2-HMAC-SHA256 (10,000 rounds) over the password and salt gives 80 bytes: the AES-256 key, the
HMAC-SHA256 key and the CTR counter block. The HMAC of the ciphertext is checked in constant time
before anything is decrypted; the plaintext carries PKCS#7 padding. Written from that description;
ansible-core (GPL-3.0) is never imported.

Vault passwords come from the command line (``--vault-password-file``, ``--vault-id``,
``--ask-vault-pass``); the CLI registers them here once, and a vaulted value is decrypted only when
kremove needs it.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import InputError
from orchestrator.inventory.model import VaultText
from orchestrator.secrets import Secret, in_template

HEADER = "$ANSIBLE_VAULT"
VERSIONS = ("1.1", "1.2")
DEFAULT_ID = "default"
ROUNDS = 10_000
OPTIONS = "--vault-password-file FILE, --vault-id LABEL@FILE or --ask-vault-pass"
CLIENT_UNKNOWN_ID = 2  # what a *-client script exits with when it has no password for the id


@dataclass(frozen=True)
class _Envelope:
    vault_id: str | None
    salt: bytes
    mac: bytes
    ciphertext: bytes


def is_vaulted(text: str) -> bool:
    """Whether ``text`` is Ansible Vault text (as Ansible tells: by its first bytes)."""
    return text.startswith(HEADER)


def vault_text(text: str, origin: str) -> VaultText:
    """A vaulted value as written, with the vault id its 1.2 header names (not yet checked)."""
    fields = text.strip().split("\n", 1)[0].split(";")
    label = fields[3].strip() if len(fields) > 3 else ""
    return VaultText(text, label or None, origin)


def problem(vault: VaultText) -> str | None:
    """What makes ``vault`` unreadable as Ansible Vault text, without decrypting it."""
    try:
        _envelope(vault.text)
    except ValueError as exc:
        return str(exc)
    return None


def _envelope(text: str) -> _Envelope:
    lines = text.strip().splitlines()
    fields = [part.strip() for part in lines[0].split(";")] if lines else []
    if len(fields) < 3 or fields[0] != HEADER:
        raise ValueError("it does not start with $ANSIBLE_VAULT;1.1;AES256")
    if fields[1] not in VERSIONS:
        raise ValueError(f"vault format {fields[1][:10]!r} is not 1.1 or 1.2")
    if fields[2] != "AES256":
        raise ValueError(f"cipher {fields[2][:20]!r} is not AES256")
    try:
        inner = bytes.fromhex("".join("".join(lines[1:]).split()))
        salt, mac, data = inner.split(b"\n", 2)
        envelope = _Envelope(
            fields[3] if len(fields) > 3 and fields[3] else None,
            bytes.fromhex(salt.decode("ascii")),
            bytes.fromhex(mac.decode("ascii")),
            bytes.fromhex(data.decode("ascii")),
        )
    except ValueError:  # also UnicodeDecodeError, and too few parts to unpack
        raise ValueError("its hex body is damaged or cut short") from None
    if not envelope.salt or not envelope.ciphertext or len(envelope.mac) != 32:
        raise ValueError("its hex body is damaged or cut short")
    return envelope


def _decrypt(envelope: _Envelope, password: bytes) -> bytes | None:
    """The plaintext, or None when the HMAC shows the password is not the one used."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, hmac, padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=80, salt=envelope.salt, iterations=ROUNDS)
    keys = kdf.derive(password)
    check = hmac.HMAC(keys[32:64], hashes.SHA256())
    check.update(envelope.ciphertext)
    try:
        check.verify(envelope.mac)  # constant time
    except InvalidSignature:
        return None
    decryptor = Cipher(algorithms.AES(keys[:32]), modes.CTR(keys[64:80])).decryptor()
    padded = decryptor.update(envelope.ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise ValueError("its padding is damaged") from None


@dataclass(frozen=True)
class VaultPassword:
    """One vault password and the vault id it is for; ``source`` names the option it came from."""

    label: str
    source: str
    secret: Secret


class Keyring:
    """The vault passwords of one command. Which ones are tried, in order: those whose label is
    the value's vault id, then the others (as Ansible does unless told to match ids strictly)."""

    def __init__(self, passwords: Sequence[VaultPassword] = ()) -> None:
        self.passwords = tuple(passwords)

    def decrypt(self, vault: VaultText, what: str) -> bytes:
        """The plaintext of ``vault``, or an InputError of one line naming where it was written
        (``vault.origin``), ``what`` it is and its vault id."""
        try:
            return self.open(vault)
        except VaultError as exc:
            where = f"{vault.origin}: " if vault.origin else ""
            raise InputError(f"{where}{what}: {exc}") from None

    def decrypt_text(self, vault: VaultText, what: str) -> str:
        try:
            return self.decrypt(vault, what).decode("utf-8-sig")
        except UnicodeDecodeError:
            where = f"{vault.origin}: " if vault.origin else ""
            raise InputError(f"{where}{what}: decrypted, the vault value is not UTF-8") from None

    def open(self, vault: VaultText) -> bytes:
        """The plaintext, or a VaultError saying what is wrong (not where)."""
        try:
            envelope = _envelope(vault.text)
        except ValueError as exc:
            raise VaultError(
                f"not usable Ansible Vault text ({exc}); encrypt it again with ansible-vault"
            ) from None
        label = envelope.vault_id or DEFAULT_ID
        if not self.passwords:
            raise VaultError(
                f"encrypted with Ansible Vault (vault id {label!r}), and no vault password was "
                f"given; pass {OPTIONS}"
            )
        ranked = sorted(self.passwords, key=lambda p: p.label != label)
        for password in ranked:
            try:
                plain = _decrypt(envelope, password.secret.reveal().encode("utf-8"))
            except ValueError as exc:
                raise VaultError(f"the vault value is damaged ({exc})") from None
            if plain is not None:
                return plain
        tried = ", ".join(dict.fromkeys(p.source for p in ranked))
        raise VaultError(
            f"the vault password from {tried} does not decrypt it (vault id {label!r}); "
            f"give the password of that vault id, e.g. --vault-id {label}@FILE"
        )


class VaultError(Exception):
    """Why a vault value cannot be opened; the caller says where it was written."""


_keyring = Keyring()


def register(keyring: Keyring) -> None:
    """The vault passwords every later decryption uses (the CLI calls this once per command)."""
    global _keyring
    _keyring = keyring


def keyring() -> Keyring:
    return _keyring


class VaultedVar:
    """A free var whose value is vaulted. Never decrypted: kremove decrypts vault values only for
    the settings it uses. It shows as ``!vault``; a template that reads it is refused."""

    __slots__ = ("name", "vault")

    def __init__(self, vault: VaultText, name: str = "") -> None:
        self.vault = vault
        self.name = name

    def __str__(self) -> str:
        if in_template():
            name = f"var {self.name!r}" if self.name else "a var"
            raise VaultedVarRead(
                f"{name} ({self.vault.origin}) is an Ansible Vault value, which kremove "
                "decrypts only for passwords and connection settings; give it unencrypted"
            )
        return "!vault"

    def __repr__(self) -> str:
        return "!vault"

    def __format__(self, spec: str) -> str:
        return str(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VaultedVar) and other.vault == self.vault

    def __hash__(self) -> int:
        return hash(self.vault)


class VaultedVarRead(InputError, TypeError):
    """A template read a vaulted free var (a TypeError, so that a template's render refuses it)."""


# The passwords themselves: from files, scripts and prompts named on the command line.

Prompt = Callable[[str], str]


def build_keyring(
    files: Sequence[Path], ask: bool, vault_ids: Sequence[str], prompt: Prompt | None
) -> Keyring:
    """Every password the options name, read now (scripts are run, prompts asked), in order."""
    passwords: list[VaultPassword] = []
    if ask:
        passwords.append(_asked(DEFAULT_ID, "--ask-vault-pass", prompt))
    for path in files:
        passwords.append(_from_file(DEFAULT_ID, path, f"--vault-password-file {path}"))
    for spec in vault_ids:
        # LABEL@SOURCE; without a label (or an @) the id is "default", as in Ansible
        label, _, source = spec.partition("@") if "@" in spec else ("", "", spec)
        label = label or DEFAULT_ID
        option = f"--vault-id {spec}"
        if source == "prompt":
            passwords.append(_asked(label, option, prompt))
        elif not source:
            raise InputError(f"{option}: name a password file or 'prompt' after the @")
        else:
            passwords.append(_from_file(label, Path(source), option))
    return Keyring(passwords)


def _asked(label: str, option: str, prompt: Prompt | None) -> VaultPassword:
    if prompt is None:
        raise InputError(
            f"{option}: there is no terminal to ask for the vault password on (stdin is not a "
            "terminal, or CI is set); use --vault-password-file FILE or --vault-id LABEL@FILE"
        )
    text = "Vault password: " if label == DEFAULT_ID else f"Vault password ({label}): "
    return VaultPassword(label, option, _non_empty(prompt(text), option))


def _from_file(label: str, path: Path, option: str) -> VaultPassword:
    path = path.expanduser()
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise InputError(f"{option}: cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise InputError(f"{option}: {path} is not a file")
    if mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
        # As Ansible: an executable password file is a script; its output is the password.
        if mode & 0o022 and os.name != "nt":
            raise InputError(
                f"{option}: the vault password script {path} can be changed by other users "
                f"(mode {mode & 0o777:04o}); chmod go-w {path}"
            )
        return VaultPassword(label, option, _non_empty(_run(path, label, option), option))
    if mode & 0o077 and os.name != "nt":
        raise InputError(
            f"{option}: {path} can be read or changed by other users (mode {mode & 0o777:04o}); "
            f"chmod 600 {path}"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{option}: cannot read {path}: {exc.strerror}") from None
    return VaultPassword(label, option, _non_empty(_decoded(data.strip(), option), option))


def _run(path: Path, label: str, option: str) -> str:
    """A password script's output; a ``*-client`` script is told the vault id, as Ansible does."""
    client = os.path.splitext(path.name)[0].endswith("-client")
    command = [str(path), "--vault-id", label] if client else [str(path)]
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError as exc:
        raise InputError(f"{option}: cannot run the password script: {exc.strerror}") from None
    if client and done.returncode == CLIENT_UNKNOWN_ID:
        raise InputError(f"{option}: the password script {path} has no password for {label!r}")
    if done.returncode != 0:
        raise InputError(
            f"{option}: the vault password script {path} failed (exit {done.returncode})"
        )
    return _decoded(done.stdout.strip(b"\r\n"), option)


def _decoded(data: bytes, option: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{option}: the vault password is not UTF-8 text") from None


def _non_empty(password: str, option: str) -> Secret:
    if not password:
        raise InputError(f"{option}: the vault password is empty")
    return Secret(password, "vault password")
