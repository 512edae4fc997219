"""A simulated Windows fleet for kremove's WinRM tests (see README.md beside this file)."""

from tests.fleet.winrm_host.fleet import WinrmFleet, WinrmFleetError, WinrmHost

__all__ = ["WinrmFleet", "WinrmFleetError", "WinrmHost"]
