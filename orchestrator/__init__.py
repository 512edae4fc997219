"""kremove: fleet-wide removal of Kaspersky products, with a ledger of every host's result."""

__version__ = "0.1.0"
