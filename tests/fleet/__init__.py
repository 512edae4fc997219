"""A simulated fleet of real OpenSSH hosts on 127.0.0.1 for kremove's tests (see README.md)."""

from tests.fleet.fleet import (
    KEY_PASSPHRASE_ENV,
    PASSWORD_ENV,
    SUDO_PASSWORD_ENV,
    WRONG_SUDO_PASSWORD_ENV,
    Fleet,
    FleetError,
    FleetHost,
)
from tests.fleet.kinds import KINDS
from tests.fleet.system import FleetUnavailable

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
