"""The benchmark: kremove vs ansible-core vs plain OpenSSH on the simulated fleet (README.md)."""
