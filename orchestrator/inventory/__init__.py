"""Inventories: native YAML, Ansible INI/YAML and CSV loaders, merged into one Inventory; --limit."""
