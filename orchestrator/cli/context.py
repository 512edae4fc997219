"""The global options (before the command name), typed and set once per invocation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GlobalOptions:
    """What `kremove [--debug] [--quiet] [--verbose] [--sign-key-env VAR]` asked for."""

    debug: bool = False
    quiet: bool = False
    verbose: bool = False
    sign_key_env: str | None = None


# One slot, not a class of mutable attributes: the callback replaces it whole, and the error
# boundary in main() reads it after the command has returned or raised (click's context is gone).
_current = GlobalOptions()


def set_options(options: GlobalOptions) -> None:
    global _current
    _current = options


def current() -> GlobalOptions:
    return _current
