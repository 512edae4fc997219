"""The command line: the app, its global options, and the error boundary.

Each command group is a thin module (parse, one engine call, render) that imports only typer and
its options at the top and the engine inside the command, as pip's command table does: so
`kremove --help` loads no engine, paramiko or jinja2. Rendering is in console.py.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

import orchestrator
from orchestrator.cli import audit, detect, inventory, lab, plan, rollback, run, runs
from orchestrator.cli import report as report_cmd
from orchestrator.cli.context import GlobalOptions, current, set_options
from orchestrator.errors import KremoveError

app = typer.Typer(
    name="kremove",
    help="Find and remove Kaspersky products across a fleet; keep a ledger of every host's result.",
    epilog="Example: kremove detect -i inventories/localhost.yml\n\n"
    "Environment: KREMOVE_LEDGER (the ledger's path), KREMOVE_SSH_CONFIG (another ssh config; "
    "Match exec is never run), KREMOVE_SECRETS_DIR (secret files an inventory names must lie "
    "inside it), KREMOVE_SIGN_KEY_ENV (see --sign-key-env).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help, as git's and ssh's: Typer's rich help imports rich's Markdown and markdown-it,
    # which doubled the time `kremove --help` takes (0.30 -> 0.16 s on the lab machine).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
# In the order `kremove --help` lists them: the commands, then the groups.
for commands in (detect.app, plan.app, run.app, report_cmd.app, rollback.app):
    app.add_typer(commands)
app.add_typer(audit.app, name="audit")
app.add_typer(lab.app, name="lab")
app.add_typer(inventory.app, name="inventory")
app.add_typer(runs.app, name="runs")


def _version(value: bool) -> None:
    if value:
        from orchestrator.cli.console import out

        out.print(f"kremove {orchestrator.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show a traceback with errors."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Only the summary lines: no progress, no host table."
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Also print each host's result on stderr as it finishes."
    ),
    sign_key_env: str | None = typer.Option(
        None,
        "--sign-key-env",
        envvar="KREMOVE_SIGN_KEY_ENV",
        metavar="VAR",
        help="Environment variable holding the ledger's signing key (HMAC-SHA-256 chain). A "
        "ledger created with a key must always be opened with it.",
    ),
) -> None:
    set_options(GlobalOptions(debug, quiet, verbose, sign_key_env))


def main(argv: Sequence[str] | None = None) -> None:
    """Console script: one red line and an exit code for every error a user can cause."""
    try:
        app(args=list(argv) if argv is not None else None, standalone_mode=True)
    except KremoveError as exc:
        _fail(exc.exit_code, "error:", exc.message)
    except KeyboardInterrupt:
        from orchestrator.engine.status import EXIT_INTERRUPTED

        _fail(EXIT_INTERRUPTED, "interrupted", traceback=False)
    except Exception as exc:  # a bug: say so in one line, traceback only on request
        _fail(
            1,
            "internal error:",
            f"{type(exc).__name__}: {exc}",
            "(run again with --debug for the traceback, and report it)",
        )


def _fail(
    code: int, label: str, text: str | None = None, hint: str = "", *, traceback: bool = True
) -> None:
    """Exit ``code`` after one red line on stderr (``text`` made safe), and the traceback before
    it when --debug asked for one. Called inside an except clause."""
    from orchestrator.cli.console import err, safe

    if traceback and current().debug:
        import traceback as tb

        tb.print_exc()
    shown = "" if text is None else f" {safe(text)}"
    err.print(f"[red]kremove: {label}[/]{shown}" + (f" {hint}" if hint else ""))
    sys.exit(code)
