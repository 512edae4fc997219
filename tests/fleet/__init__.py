"""A simulated fleet of real OpenSSH hosts on 127.0.0.1 for kremove's tests (see README.md)."""

from .fleet import (
    KEY_PASSPHRASE_ENV,
    PASSWORD_ENV,
    SUDO_PASSWORD_ENV,
    WRONG_SUDO_PASSWORD_ENV,
    Fleet,
    FleetError,
    FleetHost,
)
from .kinds import KINDS
from .system import FleetUnavailable

__all__ = [
    "KEY_PASSPHRASE_ENV",
    "KINDS",
    "PASSWORD_ENV",
    "SUDO_PASSWORD_ENV",
    "WRONG_SUDO_PASSWORD_ENV",
    "Fleet",
    "FleetError",
    "FleetHost",
    "FleetUnavailable",
]
