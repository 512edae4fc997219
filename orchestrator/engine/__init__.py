"""The engine: the per-host state machine and fan-out. Reports through callbacks; never prints."""
