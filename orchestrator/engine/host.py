"""One host, start to finish: connect → detect → plan → remove → verify → one final status.

Every step is journaled in the ledger before its command is sent and completed after. A step's
output is scrubbed of secrets as it comes back, before any parser, reason or record reads it.
Detection's findings are the host's pre-state; verification's its post-state. The plan is made
from the findings and the catalog (products in removal order) and rendered in full before the
first changing command is sent (engine/steps.py renders it): a template error changes nothing.

Idempotent by construction: a host on which detection finds nothing installed ends ``clean``
after detection alone, so a second run over a cleaned fleet sends no changing command.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from orchestrator.engine import preflight, privilege, stuck
from orchestrator.engine import status as st
from orchestrator.engine.events import Event, ignore
from orchestrator.engine.journal import StepJournal
from orchestrator.engine.outcome import HostOutcome, Kind, StepOutcome
from orchestrator.engine.steps import (
    HostJob,
    PreparedStep,
    Restore,
    Reviewed,
    drift,
    failure,
    finding_key,
    package_residue,
    plan_steps,
    planned,
)
from orchestrator.errors import PlaybookError, TransportError
from orchestrator.ledger import Ledger
from orchestrator.playbook.loader import PlaybookSet
from orchestrator.playbook.model import Finding
from orchestrator.playbook.parsers import PARSERS, PROBES, ParseError
from orchestrator.secrets import Redactor
from orchestrator.transports.base import CommandResult, Deadline, Transport
from orchestrator.transports.connector import Connector

CONNECT_TIMEOUT = 30.0
VERIFY_RESERVE = 60.0  # seconds kept for verification when a removal step times out

# The steps and plans a host is sent live in engine/steps.py; these names stay importable from
# here, where the CLI and the tests have always found them.
__all__ = [
    "HostDriver",
    "HostJob",
    "HostRun",
    "PreparedStep",
    "Restore",
    "Reviewed",
    "finding_key",
    "plan_steps",
]


@dataclass
class HostRun:
    """What every host of a run shares."""

    run_id: str
    ledger: Ledger
    playbooks: PlaybookSet
    redactor: Redactor
    connector: Connector
    host_timeout: float
    mode: Kind = "detect"
    reviewed: Mapping[str, Reviewed] | None = None  # run --plan: what was reviewed, per host
    allow_drift: bool = False
    allow_encrypted: bool = False  # --allow-encrypted-data-loss (engine/preflight.py)
    restore: Mapping[str, Restore] | None = None  # rollback: per host, what to reinstall
    lock: Callable[[str], str | None] | None = None  # take a host; the holder's run id if taken
    unlock: Callable[[str], None] | None = None
    on_event: Callable[[Event], None] = ignore  # the run's event stream: steps sent and exited


class _Stop(Exception):
    """Ends a host early with a status and reason."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class HostDriver:
    def __init__(self, job: HostJob, run: HostRun) -> None:
        self.job = job
        self.run = run
        self.name = job.host.name
        self.steps: list[StepOutcome] = []
        self.findings: list[Finding] = []
        self.post: list[Finding] | None = None
        self.plan: list[PreparedStep] | None = None
        self.verdict: privilege.Verdict | None = None  # from the privilege probe, once it ran

    # -- the state machine ----------------------------------------------------------------------

    def drive(self) -> HostOutcome:
        started = time.monotonic()
        status, reason = self._drive(Deadline.after(self.run.host_timeout))
        outcome = HostOutcome(
            self.name,
            status,
            reason,
            tuple(self.findings),
            tuple(self.steps),
            time.monotonic() - started,
        )
        self.run.ledger.host_finished(
            self.run.run_id,
            self.name,
            status=status,
            reason=reason,
            findings=[f.to_dict() for f in self.findings],
            post_findings=None if self.post is None else [f.to_dict() for f in self.post],
            plan=None if self.plan is None else [planned(p) for p in self.plan],
        )
        return outcome

    def _drive(self, deadline: Deadline) -> tuple[str, str | None]:
        if self.job.skip_reason:
            return st.SKIPPED, self.job.skip_reason
        if self.run.lock is not None:
            holder = self.run.lock(self.name)
            if holder is not None:
                return st.SKIPPED, f"locked by run {holder}, which is working on this host"
        try:
            return self._work(deadline)
        finally:
            if self.run.unlock is not None:
                self.run.unlock(self.name)

    def _work(self, deadline: Deadline) -> tuple[str, str | None]:
        if self.run.mode == "rollback":
            return self._rollback(deadline)
        reviewed = None
        if self.run.reviewed is not None:
            reviewed = self.run.reviewed.get(self.name)
            if not self.run.allow_drift:
                if reviewed is None:
                    return st.SKIPPED, "drifted: not in the reviewed plan"
                if reviewed.status not in (st.PLANNED, st.CLEAN):
                    return (
                        st.SKIPPED,
                        f"not reviewed: the plan found it {reviewed.status}; plan it again",
                    )
        transport = self.run.connector.for_host(self.job.host)
        try:
            transport.connect(deadline.sooner(CONNECT_TIMEOUT))
            self.findings = self._observe(transport, self.job.steps, deadline)
            installed = [f for f in self.findings if f.kind == "installed"]
            why = drift(reviewed, installed) if reviewed and not self.run.allow_drift else None
            if why:
                raise _Stop(st.SKIPPED, why)
            # A package removed but not purged (dpkg "config-files", e.g. a purge cut off) is not
            # installed, but a removal finishes the job.
            leftovers = [f for f in self.findings if package_residue(f)]
            if not installed and (self.run.mode == "detect" or not leftovers):
                return st.CLEAN, None
            if self.run.mode == "detect":
                return st.FOUND, None
            self._require_privilege()
            refusal = preflight.encryption_refusal(self.findings, self.run.allow_encrypted)
            if refusal:
                raise _Stop(st.SKIPPED, refusal)
            plan = self._plan(installed + leftovers)
            if self.run.mode == "plan":
                self.plan = plan
                products = ", ".join(f.label() for f in installed)
                return st.PLANNED, f"would remove {products} in {len(plan)} steps"
            if reviewed is not None and not self.run.allow_drift:
                shown = tuple(p.command.shown for p in plan)
                if shown != reviewed.steps:
                    raise _Stop(
                        st.SKIPPED,
                        "drifted: the steps rendered now differ from the reviewed plan "
                        "(playbooks or catalog changed); plan again or pass --allow-drift",
                    )
            reboot = self._remove(transport, plan, deadline)
            return self._verify(transport, deadline, reboot)
        except _Stop as stop:
            return stop.status, stop.reason
        except TransportError as exc:
            return exc.status, self.run.redactor.scrub(str(exc))
        finally:
            transport.close()

    def _rollback(self, deadline: Deadline) -> tuple[str, str | None]:
        """Reinstall what a run removed, then detect: every removed finding must be back."""
        restore = (self.run.restore or {}).get(self.name)
        if restore is None or not restore.steps:
            return st.SKIPPED, "nothing of this host's was removed by that run"
        transport = self.run.connector.for_host(self.job.host)
        try:
            transport.connect(deadline.sooner(CONNECT_TIMEOUT))
            probes = [p for p in self.job.steps if p.step.parser in PROBES]
            self._observe(transport, probes, deadline)
            self._require_privilege()
            self._remove(transport, list(restore.steps), deadline)
            self.post = self._observe(transport, self.job.steps, deadline)
            now = {finding_key(f.to_dict()) for f in self.post if f.kind == "installed"}
            missing = [k for k in restore.expected if k not in now]
            if missing:
                shown = ", ".join(f"{k[2] or k[0]} {k[1]}" for k in missing)
                return st.FAILED, f"after reinstalling, detection does not find {shown}"
            return st.RESTORED, None
        except _Stop as stop:
            return stop.status, stop.reason
        except TransportError as exc:
            return exc.status, self.run.redactor.scrub(str(exc))
        finally:
            transport.close()

    def _observe(
        self, transport: Transport, steps: Sequence[PreparedStep], deadline: Deadline
    ) -> list[Finding]:
        """Run read-only steps and parse what they print into findings."""
        found: list[Finding] = []
        for prepared in steps:
            result, masked = self._execute(transport, prepared, deadline)
            if result.timed_out:
                raise _Stop(st.TIMEOUT, f"step {prepared.ledger_id!r} passed its deadline")
            if result.exit_code != 0:
                raise _Stop(st.FAILED, failure(prepared, result))
            if prepared.step.parser in PROBES:
                self._learn(prepared, result)
            elif prepared.step.parser:
                if masked:  # a masked line may have named a product: never a false clean
                    raise _Stop(
                        st.FAILED,
                        f"step {prepared.ledger_id!r}: the output held a secret kremove knows "
                        "(now masked), so what it says cannot be trusted; check the host",
                    )
                try:
                    found.extend(PARSERS[prepared.step.parser](result, self.run.playbooks.catalog))
                except ParseError as exc:
                    raise _Stop(st.FAILED, f"step {prepared.ledger_id!r}: {exc}") from None
        return found

    def _learn(self, prepared: PreparedStep, result: CommandResult) -> None:
        """The privilege probe's answer: the host's verdict, recorded once per host and run."""
        try:
            fact = PROBES[str(prepared.step.parser)](result)
        except ParseError as exc:
            raise _Stop(st.FAILED, f"step {prepared.ledger_id!r}: {exc}") from None
        if self.verdict is None:
            self.verdict = privilege.decide(self.job.host, fact)
            detail = {**fact.to_dict(), **self.verdict.to_dict()}
            self.run.ledger.record_event(self.run.run_id, self.name, privilege.EVENT, detail)

    def _require_privilege(self) -> None:
        """Refuse, before any change, a host whose removal would fail for lack of privilege."""
        verdict = self.verdict or privilege.unprobed(self.job.host)
        if not verdict.ok:
            raise _Stop(st.SKIPPED, verdict.refusal)

    def _plan(self, installed: Sequence[Finding]) -> list[PreparedStep]:
        """The removal steps for what was found, in catalog order, rendered in full."""
        playbooks = self.run.playbooks
        catalog = playbooks.catalog
        unknown = sorted({f.product for f in installed if f.product not in catalog.products})
        if unknown:
            names = ", ".join(f.name for f in installed if f.product in unknown)
            raise _Stop(
                st.FAILED,
                f"found {names}, which no catalog entry describes; add one with --playbooks DIR "
                "or remove it by hand",
            )
        playbook = playbooks.playbook_for(self.job.platform, "remove")
        if playbook is None:
            raise _Stop(st.FAILED, f"no removal playbook for platform {self.job.platform}")
        products = catalog.ordered(f.product for f in installed)
        try:
            return plan_steps(playbook.steps, products, installed, self.job.context, playbooks)
        except PlaybookError as exc:
            raise _Stop(st.FAILED, f"cannot plan the removal: {exc}") from None

    def _remove(
        self, transport: Transport, plan: Sequence[PreparedStep], deadline: Deadline
    ) -> bool:
        """Run the removal steps in order; stop at the first failure. True: a reboot is due."""
        catalog = self.run.playbooks.catalog
        reboot = False
        for prepared in plan:
            step = prepared.step
            for attempt in range(step.retries + 1):
                result, _ = self._execute(transport, prepared, deadline)
                if result.timed_out:
                    self._verify_after_failure(transport, deadline)
                    raise _Stop(st.TIMEOUT, f"step {prepared.ledger_id!r} passed its deadline")
                meaning = catalog.exit_meaning(step.exit_codes, result.exit_code)
                if meaning != "retry":
                    break
                if attempt < step.retries and deadline.remaining() > step.retry_delay + 1:
                    time.sleep(step.retry_delay)
                    continue
                meaning = "failed"
                break
            if meaning == "failed":
                reason = failure(prepared, result)
                hint = stuck.next_step(step, result.exit_code, prepared.command.shown)
                reason = f"{reason}; {hint}" if hint else reason
                self._verify_after_failure(transport, deadline)
                raise _Stop(st.FAILED, reason)
            reboot = reboot or meaning == "reboot"
        return reboot

    def _verify(
        self, transport: Transport, deadline: Deadline, reboot: bool
    ) -> tuple[str, str | None]:
        self.post = self._observe(transport, self._verify_steps(), deadline)
        left = [f for f in self.post if f.kind == "installed" or package_residue(f)]
        if left:
            return st.FAILED, "verify still finds " + ", ".join(f.label() for f in left)
        if reboot:
            return st.REBOOT_PENDING, "the uninstaller asked for a reboot; verify again after it"
        return st.REMOVED, None

    def _verify_after_failure(self, transport: Transport, deadline: Deadline) -> None:
        """Record the post-state of a host whose removal failed, when there is time for it."""
        if deadline.remaining() < 1:
            return
        try:
            self.post = self._observe(transport, self._verify_steps(), deadline)
        except (_Stop, TransportError):
            self.post = None

    def _verify_steps(self) -> list[PreparedStep]:
        playbooks = self.run.playbooks
        playbook = playbooks.playbook_for(self.job.platform, "verify")
        if playbook is None:
            raise _Stop(st.FAILED, f"no verify playbook for platform {self.job.platform}")
        try:
            return [
                PreparedStep(step, playbooks.renderer.render(step.template, self.job.context))
                for step in playbook.steps
            ]
        except PlaybookError as exc:
            raise _Stop(st.FAILED, f"cannot render verification: {exc}") from None

    # -- one step ---------------------------------------------------------------------------------

    def _execute(
        self, transport: Transport, prepared: PreparedStep, deadline: Deadline
    ) -> tuple[CommandResult, bool]:
        """Run one step, journaled; its result scrubbed of secrets, and whether any was there."""
        step = prepared.step
        journal = StepJournal(self.run.ledger, self.run.run_id, self.name, self.run.on_event)
        key = journal.sent(prepared)
        try:
            # The one place a command's secrets are put in: what was shown is what is sent.
            become = step.become and (self.verdict or privilege.unprobed(self.job.host)).become
            result = transport.run(
                prepared.command.text, deadline.sooner(step.timeout), become=become
            )
        except TransportError as exc:
            journal.failed(key, prepared, self.run.redactor.scrub(str(exc)))
            raise
        result, masked = self._scrubbed(result)
        journal.exited(key, prepared, result)
        self.steps.append(
            StepOutcome(
                prepared.ledger_id,
                step.kind,
                prepared.command.shown,
                result.exit_code,
                result.timed_out,
                result.duration,
            )
        )
        return result, masked

    def _scrubbed(self, result: CommandResult) -> tuple[CommandResult, bool]:
        """The result with every secret the run knows masked (a host may echo one back)."""
        scrub = self.run.redactor.scrub
        stdout, stderr = scrub(result.stdout), scrub(result.stderr)
        if stdout == result.stdout and stderr == result.stderr:
            return result, False
        return dataclasses.replace(result, stdout=stdout, stderr=stderr), True
