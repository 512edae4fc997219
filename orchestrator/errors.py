"""Typed errors. Each carries a one-line message a user can act on; the CLI prints it and exits."""

from __future__ import annotations

from pathlib import Path


class KremoveError(Exception):
    """Base of every error kremove reports to a user. ``exit_code`` is the CLI's exit status."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(KremoveError):
    """Bad input from the user: a file, an option, a pattern. Exit 2."""

    exit_code = 2


def _where(file: str | Path | None, line: int | None) -> str:
    if file is None:
        return ""
    return f"{file}:{line}: " if line is not None else f"{file}: "


class InventoryError(InputError):
    """An inventory file or a --limit pattern that cannot be used, located as precisely as known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        host: str | None = None,
        field: str | None = None,
    ) -> None:
        subject = ""
        if host is not None:
            subject += f"host {host!r}: "
        if field is not None:
            subject += f"field {field!r}: "
        super().__init__(f"{_where(file, line)}{subject}{message}")
        self.file = None if file is None else str(file)
        self.line = line
        self.host = host
        self.field = field


class PlaybookError(InputError):
    """A playbook, catalog entry or template that cannot be loaded or rendered."""

    def __init__(self, message: str, *, file: str | Path | None = None, line: int | None = None):
        super().__init__(f"{_where(file, line)}{message}")
        self.file = None if file is None else str(file)
        self.line = line


class WindowClosed(KremoveError):
    """Outside the change window: nothing started. Exit 4."""

    exit_code = 4


class LedgerError(KremoveError):
    """The run ledger cannot be opened, read or written."""


class TransportError(KremoveError):
    """A host could not be reached or driven. ``status`` is the host status it leads to."""

    status = "failed"


class UnreachableError(TransportError):
    status = "unreachable"


class AuthError(TransportError):
    status = "auth_failed"


class HostKeyError(TransportError):
    status = "hostkey_rejected"


class CommandTimeout(TransportError):
    status = "timeout"
