"""A simulated Windows fleet for kremove's WinRM tests (see README.md beside this file)."""

from .fleet import WinrmFleet, WinrmFleetError, WinrmHost

__all__ = ["WinrmFleet", "WinrmFleetError", "WinrmHost"]
