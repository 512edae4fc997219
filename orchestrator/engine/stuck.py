"""What a host stuck on its uninstaller should try next: the reason it ends with names the next
step, not only the exit code (docs/runbook.md describes each route and its sources).

kremove takes none of these routes itself: kavremover is interactive (a CAPTCHA) and its silent
switches are unconfirmed, the KSC policy lives on the Administration Server, and Safe Mode needs
a reboot and a console. The reason sends the operator to the runbook instead.
"""

from __future__ import annotations

from orchestrator.playbook.model import Step
from orchestrator.secrets import MASK

RUNBOOK = "docs/runbook.md"

# msiexec 1612: "The installation source for this product is not available" [MS error-codes
# page]: the cached MSI under %WINDIR%\Installer is gone, so /x cannot run.
CACHED_MSI = (
    "next: the cached MSI is missing — give msiexec the product's original MSI of the same "
    "version, or run the vendor's removal tool kavremover on the host"
    f" ({RUNBOOK}#cached-msi-missing-1612)"
)
# msiexec 1603 although kremove passed an uninstall password: the password was refused, or
# uninstall protection wants a permission the account lacks [vendor KESWin 123303].
PROTECTED = (
    "next: the uninstall password was refused — reset or turn off the password in the KSC policy "
    "for this host's group (or grant the removal account the Remove permission, or use a "
    "temporary password), then run again; if the host is out of KSC's reach: kavremover in Safe "
    f"Mode ({RUNBOOK}#protected-by-a-password-1603)"
)


def next_step(step: Step, exit_code: int | None, shown: str) -> str | None:
    """The next step for a failed msiexec step, or None where the runbook has nothing to add.
    ``shown`` is the command as rendered with secrets masked: a mask means a password was
    passed."""
    if step.exit_codes != "msiexec":
        return None
    if exit_code == 1612:
        return CACHED_MSI
    if exit_code == 1603 and MASK in shown:
        return PROTECTED
    return None
