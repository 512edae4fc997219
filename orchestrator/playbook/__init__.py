"""Playbooks and the catalog as data, the rendering of their templates, and their output parsers."""
