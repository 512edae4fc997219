"""Private keys for SSH logins: read once per run, refused when others can read them."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import paramiko
from paramiko.ssh_exception import PasswordRequiredException, SSHException

from orchestrator.errors import InputError
from orchestrator.secrets import SecretStore
from orchestrator.transports.sshconfig import Endpoint


class UnsafeKey(Exception):
    """A key kremove found itself (ssh config, default identity) that others can read: skipped,
    as ssh skips it, and named in the authentication failure."""


class KeyRing:
    """The private keys of one run, each read (and its passphrase asked for) once."""

    def __init__(self, secrets: SecretStore) -> None:
        self._secrets = secrets
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str], paramiko.PKey | None] = {}

    def load(self, endpoint: Endpoint, path: str, *, required: bool) -> paramiko.PKey | None:
        """A private key; None for a missing optional one (ssh config), UnsafeKey for an
        optional one others can read, InputError for any problem with a required one."""
        host = endpoint.host
        full = str(Path(path).expanduser())
        cache_key = (full, repr(host.key_passphrase))
        with self._lock:
            if cache_key in self._keys:
                return self._keys[cache_key]
        what = f"host {host.name!r} key_file {full}"
        exposed = _exposed(full)
        if exposed is not None:
            if required:
                raise InputError(f"{what}: {exposed}")
            raise UnsafeKey(exposed)
        key = self._read(endpoint, full, what, required=required)
        with self._lock:
            self._keys[cache_key] = key
        return key

    def _read(
        self, endpoint: Endpoint, full: str, what: str, *, required: bool
    ) -> paramiko.PKey | None:
        host = endpoint.host
        passphrase = None
        if host.key_passphrase is not None:
            what_secret = f"host {host.name!r} key passphrase"
            secret = self._secrets.get(host.key_passphrase, what_secret, kind="key passphrase")
            passphrase = secret.reveal().encode()
        try:
            return paramiko.PKey.from_path(full, passphrase)
        except FileNotFoundError:
            if required:
                raise InputError(f"{what}: no such file; fix key_file in the inventory") from None
        except (PasswordRequiredException, TypeError) as exc:
            # cryptography says "password-protected" with a TypeError for OpenSSH-format keys.
            if isinstance(exc, TypeError) and "password" not in str(exc):
                raise
            if required:
                raise InputError(
                    f"{what}: the key is encrypted; reference its passphrase with "
                    "key_passphrase_env, key_passphrase_file or key_passphrase_prompt"
                ) from None
        except (SSHException, ValueError, OSError) as exc:
            if required and passphrase is not None:
                raise InputError(f"{what}: cannot be decrypted with the given passphrase") from None
            if required:
                raise InputError(f"{what}: not a usable private key ({short(exc)})") from None
        return None


def _exposed(path: str) -> str | None:
    """Why ssh would refuse this private key for its permissions ("bad permissions"), or None."""
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError:
        return None  # reading it says what is wrong
    if not mode & 0o077 or os.name == "nt":
        return None
    return f"other users can read or change it (mode {mode:04o}); chmod 600 {path}"


def short(exc: BaseException) -> str:
    """The first line of an exception's text, at most 200 characters, for an error message."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
