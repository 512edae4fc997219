"""Transports: how kremove reaches a host. ``for_host`` picks the one an inventory entry names."""

from __future__ import annotations

from orchestrator.errors import InputError
from orchestrator.inventory.model import Host
from orchestrator.transports.base import CommandResult, Deadline, Transport
from orchestrator.transports.local import LocalTransport

__all__ = ["CommandResult", "Deadline", "Transport", "available", "for_host"]

_TRANSPORTS: dict[str, type[Transport]] = {"local": LocalTransport}


def available() -> tuple[str, ...]:
    return tuple(_TRANSPORTS)


def for_host(host: Host) -> Transport:
    try:
        cls = _TRANSPORTS[host.transport]
    except KeyError:
        raise InputError(
            f"host {host.name!r} ({host.source}): transport {host.transport!r} is not supported by "
            f"this kremove yet (supported: {', '.join(_TRANSPORTS)}); --limit it out for now"
        ) from None
    return cls(host)
