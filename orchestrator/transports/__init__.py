"""Transports: how kremove reaches a host.

kinds.py is the table of transports; connector.py makes a run's pools and each host's transport;
base.py the interface every transport implements; one module per kind (local.py, ssh.py,
winrm.py) with the concerns of the larger ones beside it (ssh_*.py, winrm_*.py). This package
imports nothing itself, so reading the table costs nothing.
"""
