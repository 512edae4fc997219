"""Shared pytest configuration: the simulated SSH fleet's fixtures (tests/fleet/README.md)."""

pytest_plugins = ["tests.fleet.pytest_plugin", "tests.fleet.winrm_host.pytest_plugin"]
