"""Inventories: native YAML, Ansible INI/YAML and CSV loaders merged into one Inventory; --limit."""

from orchestrator.inventory.limit import select
from orchestrator.inventory.loader import load_inventories
from orchestrator.inventory.model import Become, Group, Host, Inventory, SecretRef, WinrmSettings

__all__ = [
    "Become",
    "Group",
    "Host",
    "Inventory",
    "SecretRef",
    "WinrmSettings",
    "load_inventories",
    "select",
]
