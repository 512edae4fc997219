"""``python -m orchestrator``: the kremove command line, exactly as the ``kremove`` script runs it
(for a venv or pipx install whose scripts directory is not on PATH)."""

from orchestrator.cli import main

if __name__ == "__main__":
    main()
