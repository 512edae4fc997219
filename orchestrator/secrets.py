"""Secret values: resolved from references, shown as ******** everywhere but the command sent.

A secret is opaque to templates: it renders as a placeholder that only the text sent to the host
replaces with its value (orchestrator/playbook/render.py); ``reveal()`` is for the transports.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import InputError

if TYPE_CHECKING:  # the inventory's vault module uses Secret: no import cycle at run time
    from orchestrator.inventory.model import Host, SecretRef

MASK = "********"

# While a template renders: the names of secrets turned into text by str() (joined, formatted,
# passed to a filter that reads text). Such text holds the mask, not a placeholder, so the
# command would differ from what was meant; the render is refused.
_turned_into_text: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "turned_into_text", default=None
)


class Secret:
    """A secret's value. ``str()``, ``repr()`` and formatting give the mask; ``reveal()`` does not.

    ``quoted`` records that the value passed through a quoting filter, so it may reach a shell.
    """

    __slots__ = ("_value", "name", "quoted")

    def __init__(self, value: str, name: str, *, quoted: bool = False) -> None:
        self._value = value
        self.name = name
        self.quoted = quoted

    def reveal(self) -> str:
        return self._value

    def derive(self, transform: Callable[[str], str], *, quoted: bool | None = None) -> Secret:
        """A new secret holding ``transform(value)``: what comes from a secret stays secret."""
        return Secret(
            transform(self._value), self.name, quoted=self.quoted if quoted is None else quoted
        )

    def __str__(self) -> str:
        misuse = _turned_into_text.get()
        if misuse is not None:
            misuse.append(self.name)
        return MASK

    def __repr__(self) -> str:
        return f"Secret({self.name}={MASK})"

    def __format__(self, spec: str) -> str:
        return str(self)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("secrets are not serialisable")


def in_template() -> bool:
    """Whether a template is being rendered or a condition evaluated (in this context)."""
    return _turned_into_text.get() is not None


def resolve(ref: SecretRef, what: str, prompt: Callable[[str], str] | None = None) -> Secret:
    """Fetch a secret from its reference; ``what`` names it in messages ("host 'db1' password").

    An Ansible Vault value is decrypted here, with the vault passwords the command registered."""
    if ref.vault:
        from orchestrator.inventory import vault

        return Secret(vault.keyring().decrypt_text(ref.vault, what), what)
    if ref.env:
        value = os.environ.get(ref.env)
        if value is None:
            raise InputError(f"{what}: environment variable {ref.env} is not set; export it first")
        return Secret(value, what)
    if ref.file:
        path = _confined(Path(ref.file).expanduser(), what)
        try:
            with path.open("rb") as stream:
                # As ssh refuses a private key others can read: such a secret is no longer one,
                # and one others can write may have been swapped. The mode of what was opened.
                mode = os.fstat(stream.fileno()).st_mode & 0o777
                if mode & 0o077 and os.name != "nt":
                    raise InputError(
                        f"{what}: {path} can be read or changed by other users "
                        f"(mode {mode:04o}); chmod 600 {path}"
                    )
                value = stream.read().decode("utf-8").rstrip("\r\n")
        except OSError as exc:
            raise InputError(f"{what}: cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise InputError(f"{what}: {path} is not UTF-8 text") from None
        return Secret(value, what)
    if ref.prompt:
        if prompt is None:
            raise InputError(
                f"{what}: would be prompted for, but there is no terminal (CI or --yes); "
                "use password_env or password_file instead"
            )
        return Secret(prompt(f"{what}: "), what)
    raise InputError(f"{what}: no source given; set password_env, password_file or password_prompt")


def _confined(path: Path, what: str) -> Path:
    """The file to read; inside ``KREMOVE_SECRETS_DIR`` when the operator named one.

    An inventory names the file and the host its content is sent to, so whoever writes the
    inventory could have any file the operator can read sent to a host of their choosing. The
    real path is what is checked and what is opened, so a symbolic link cannot lead outside.
    """
    root = os.environ.get("KREMOVE_SECRETS_DIR")
    if not root:
        return path
    base = Path(root).expanduser().resolve()
    real = path.resolve()
    if not real.is_relative_to(base):
        raise InputError(
            f"{what}: {path} is outside KREMOVE_SECRETS_DIR ({base}); "
            "move the file there or point the inventory at one that is"
        )
    return real


class Redactor:
    """Replaces every known secret value in text before it is shown or stored."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, secret: Secret) -> None:
        value = secret.reveal()
        if (
            len(value) >= 3
        ):  # shorter values would mask innocent text and reveal more than they hide
            self._values.add(value)

    def scrub(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text


class text_watch:
    """While active, every secret turned into text is named in the list it gives."""

    def __enter__(self) -> list[str]:
        misuse: list[str] = []
        self._token = _turned_into_text.set(misuse)
        return misuse

    def __exit__(self, *exc: object) -> None:
        _turned_into_text.reset(self._token)


class SecretStore:
    """Every secret of a run, fetched once from its reference and known to the run's redactor.

    ``preload`` fetches them all before anything connects, so a missing variable or file is an
    input error at the start of a run, not a failed host in the middle of one.
    """

    def __init__(self, prompt: Callable[[str], str] | None = None) -> None:
        self._prompt = prompt
        self._cache: dict[tuple[SecretRef, str], Secret] = {}
        self._lock = threading.Lock()
        self.redactor = Redactor()

    def get(self, ref: SecretRef, what: str, *, kind: str = "password") -> Secret:
        """The secret behind ``ref``. A prompted one is asked once per ``kind`` and run."""
        key = (ref, kind if ref.prompt else "")
        with self._lock:
            secret = self._cache.get(key)
            if secret is None:
                secret = resolve(ref, kind if ref.prompt else what, self._prompt)
                self._cache[key] = secret
                self.redactor.add(secret)
            return secret

    def preload(self, hosts: Iterable[Host]) -> None:
        for host in hosts:
            for ref, kind in _host_refs(host):
                self.get(ref, f"host {host.name!r} {kind}", kind=kind)


def _host_refs(host: Host) -> list[tuple[SecretRef, str]]:
    refs = []
    if host.password is not None:
        refs.append((host.password, "password"))
    if host.key_passphrase is not None:
        refs.append((host.key_passphrase, "key passphrase"))
    if host.become.enabled and host.become.password is not None:
        refs.append((host.become.password, "sudo password"))
    return refs
