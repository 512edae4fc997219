"""The wave loop in-process, over the fake fleet (tests/engine/fakes.py) and a real SQLite ledger:
the failure budget, pausing, the change window, resuming and Ctrl-C, each in milliseconds.

tests/integration/test_waves.py checks the same rules end to end on the simulated SSH fleet.
"""

from __future__ import annotations

import linecache
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from orchestrator.engine import runner
from orchestrator.engine.outcome import RunResult, Stop
from orchestrator.engine.waves import Window
from orchestrator.errors import WindowClosed
from orchestrator.ledger import Ledger
from orchestrator.playbook.loader import PlaybookSet
from tests.engine.fakes import DETECT, PROBE, WAIT, FakeFleet, FakeHost, clean, failing, installed
from tests.engine.fakes import unreachable as down

INFO = runner.RunInfo(
    operator="tester@example", command_line="kremove run", inventory_digest="0" * 64
)


def run(fleet: FakeFleet, ledger: Ledger, playbooks: PlaybookSet, **options: Any) -> RunResult:
    return runner.run(
        fleet.hosts(),
        playbooks=playbooks,
        ledger=ledger,
        info=INFO,
        connector=fleet,
        **options,
    )


def statuses(result: RunResult) -> dict[str, str]:
    return {o.host: o.status for o in result.outcomes}


def events(ledger: Ledger, run_id: str, kind: str) -> list[dict[str, object]]:
    return [e.detail for e in ledger.get_run(run_id).events if e.kind == kind]


def test_a_spent_budget_starts_no_new_host_and_names_who_spent_it(
    ledger: Ledger, playbooks: PlaybookSet
) -> None:
    fleet = FakeFleet(
        {"a": installed(), "b": down(), "c": installed(), "d": down(), "e": installed()}
        | {"f": installed()}
    )
    wave = runner.WaveSettings(batches="2,100%", max_fail="1")
    result = run(fleet, ledger, playbooks, wave=wave, forks=1)
    assert list(statuses(result).values()) == [
        *("removed", "unreachable", "removed", "unreachable"),
        *("skipped", "skipped"),
    ]
    assert result.stop == Stop.HALTED and result.stop == "halted"
    assert result.status == "halted" and ledger.get_run(result.run_id).status == "halted"
    assert result.spent_by == ("b", "d") and result.budget == 1
    assert events(ledger, result.run_id, "halted") == [{"budget": 1, "spent_by": ["b", "d"]}]
    assert "the failure budget (1) was spent by b, d" in (result.outcomes[4].reason or "")
    assert fleet.order == ["a", "b", "c", "d"]  # e and f were never contacted
    assert fleet.scripts["e"].commands == [] and fleet.scripts["f"].commands == []


def test_a_host_in_flight_when_the_budget_is_spent_finishes(
    ledger: Ledger, playbooks: PlaybookSet
) -> None:
    slow_connected, bad_done = threading.Event(), threading.Event()
    slow = installed()
    slow.on_connect, slow.hold = slow_connected.set, bad_done
    bad = down()
    bad.hold = slow_connected  # fails only once the slow host is in flight
    fleet = FakeFleet({"bad": bad, "slow": slow, "late": installed()})

    def on_event(event: runner.Event) -> None:
        if isinstance(event, runner.HostDone) and event.outcome.host == "bad":
            bad_done.set()

    wave = runner.WaveSettings(max_fail="0")
    result = run(fleet, ledger, playbooks, wave=wave, forks=2, on_event=on_event)
    assert statuses(result) == {"bad": "unreachable", "slow": "removed", "late": "skipped"}
    assert result.stop == "halted" and result.spent_by == ("bad",)
    assert "late" not in fleet.order


def test_pause_after_a_batch_then_resume_works_only_the_hosts_left(
    ledger: Ledger, playbooks: PlaybookSet
) -> None:
    fleet = FakeFleet({f"h{i}": installed() for i in range(4)})
    wave = runner.WaveSettings(batches="1", pause_after=2)
    first = run(fleet, ledger, playbooks, wave=wave)
    assert list(statuses(first).values()) == ["removed", "removed", "skipped", "skipped"]
    assert first.stop == Stop.PAUSED and first.status == "paused"
    assert f"continue with kremove run --resume {first.run_id}" in (first.outcomes[2].reason or "")
    assert [len(e["hosts"]) for e in events(ledger, first.run_id, "batch_started")] == [1, 1]

    done_before = {n: list(fleet.scripts[n].commands) for n in ("h0", "h1")}
    second = run(fleet, ledger, playbooks, wave=wave, resume=first.run_id)
    assert second.run_id == first.run_id
    assert set(statuses(second).values()) == {"removed"} and second.stop is None
    assert ledger.get_run(first.run_id).status == "completed"
    assert events(ledger, first.run_id, "resumed") == [{"by": INFO.operator, "hosts": 2}]
    for name in ("h0", "h1"):  # finished before: not contacted again
        assert fleet.scripts[name].commands == done_before[name]
    for name in ("h2", "h3"):  # each resumed host starts with detection (who logs in, then what)
        assert PROBE in fleet.scripts[name].commands[0]
        assert DETECT in fleet.scripts[name].commands[1]


def test_resume_leaves_hosts_with_a_final_result_alone(
    ledger: Ledger, playbooks: PlaybookSet
) -> None:
    fleet = FakeFleet({"a": failing(), "b": installed(), "c": installed()})
    first = run(fleet, ledger, playbooks, wave=runner.WaveSettings(max_fail="0"), forks=1)
    assert list(statuses(first).values()) == ["failed", "skipped", "skipped"]
    sent = list(fleet.scripts["a"].commands)
    second = run(fleet, ledger, playbooks, resume=first.run_id)
    assert statuses(second) == {"a": "failed", "b": "removed", "c": "removed"}
    assert fleet.scripts["a"].commands == sent
    assert fleet.order == ["a", "b", "c"]
    assert PROBE in fleet.scripts["b"].commands[0] and DETECT in fleet.scripts["b"].commands[1]


def test_a_no_at_confirm_pauses_between_batches(ledger: Ledger, playbooks: PlaybookSet) -> None:
    asked: list[tuple[int, int]] = []

    def confirm(done: int, total: int) -> bool:
        asked.append((done, total))
        return False

    fleet = FakeFleet({"a": installed(), "b": installed()})
    result = run(fleet, ledger, playbooks, wave=runner.WaveSettings(batches="1", confirm=confirm))
    assert asked == [(1, 2)]
    assert statuses(result) == {"a": "removed", "b": "skipped"} and result.stop == "paused"


def test_a_window_closing_mid_run_pauses_it(
    ledger: Ledger, playbooks: PlaybookSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    is_open = True

    def close() -> None:
        nonlocal is_open
        is_open = False

    monkeypatch.setattr(Window, "is_open", lambda self, at=None: is_open)
    first = installed()
    first.on_connect = close  # the window closes while the first host is in flight
    fleet = FakeFleet({"a": first, "b": installed(), "c": clean()})
    wave = runner.WaveSettings(window=Window.parse("22:00-04:00", "UTC"))
    result = run(fleet, ledger, playbooks, wave=wave, forks=1)
    assert statuses(result) == {"a": "removed", "b": "skipped", "c": "skipped"}
    assert result.stop == Stop.WINDOW and result.status == "paused"
    assert ledger.get_run(result.run_id).status == "paused"
    assert events(ledger, result.run_id, "window_closed") == [{"window": "22:00-04:00 (UTC)"}]
    assert "the change window closed" in (result.outcomes[1].reason or "")
    assert fleet.order == ["a"]


def test_outside_the_window_nothing_starts_and_nothing_is_recorded(
    ledger: Ledger, playbooks: PlaybookSet
) -> None:
    now = datetime.now().astimezone()
    shut = f"{(now.hour + 2) % 24:02d}:00-{(now.hour + 3) % 24:02d}:00"
    fleet = FakeFleet({"a": installed()})
    with pytest.raises(WindowClosed, match="outside the change window"):
        run(fleet, ledger, playbooks, wave=runner.WaveSettings(window=Window.parse(shut, None)))
    assert ledger.list_runs() == [] and fleet.order == []


def _interrupt_main() -> None:
    """Ctrl-C, as a terminal sends it: SIGINT to the main thread, once it waits for host results.

    Waiting for that keeps the signal inside the fan-out's handler, where a real Ctrl-C lands
    (its thread is blocked there nearly all the time); a slow machine cannot move it elsewhere.
    """
    main = threading.main_thread().ident
    assert main is not None
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(main)
        if frame is not None and "self._results.get()" in linecache.getline(
            frame.f_code.co_filename, frame.f_lineno
        ):
            break
        time.sleep(0.001)
    signal.pthread_kill(main, signal.SIGINT)


def interrupting() -> FakeHost:
    """kesl installed; Ctrl-C comes as the engine connects, and the host stays in flight (up to
    WAIT) until its ``hold`` is set."""
    host = installed()
    host.on_connect, host.hold = _interrupt_main, threading.Event()
    return host


def at_stopping(
    action: Callable[[], object], seen: list[runner.Event] | None = None
) -> Callable[[runner.Event], None]:
    """A progress callback that does ``action`` at the first Ctrl-C's Stopping event."""

    def on_event(event: runner.Event) -> None:
        if seen is not None:
            seen.append(event)
        if isinstance(event, runner.Stopping):
            action()

    return on_event


def run_interrupted(
    fleet: FakeFleet, ledger: Ledger, playbooks: PlaybookSet, **options: Any
) -> RunResult:
    """``run`` where a Ctrl-C that escaped the engine fails the test instead of ending pytest."""
    try:
        return run(fleet, ledger, playbooks, **options)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the engine")


needs_main_thread = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread()
    or signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="Ctrl-C reaches only the main thread, through Python's own SIGINT handler",
)


@needs_main_thread
def test_a_first_ctrl_c_lets_the_host_in_flight_finish_and_starts_no_other(
    ledger: Ledger, playbooks: PlaybookSet
) -> None:
    first = interrupting()
    fleet = FakeFleet({"a": first, "b": installed(), "c": installed()})
    seen: list[runner.Event] = []
    on_event = at_stopping(first.hold.set, seen)  # a is still in flight: let it finish now
    result = run_interrupted(fleet, ledger, playbooks, forks=1, on_event=on_event)
    assert statuses(result) == {"a": "removed", "b": "skipped", "c": "skipped"}
    assert result.interrupted and result.stop == Stop.INTERRUPTED
    assert result.status == "interrupted" and ledger.get_run(result.run_id).status == "interrupted"
    assert result.outcomes[1].reason == "run interrupted before this host started"
    assert runner.Stopping(1) in seen
    assert fleet.order == ["a"]


@needs_main_thread
def test_a_second_ctrl_c_abandons_the_hosts_in_flight(
    ledger: Ledger, playbooks: PlaybookSet
) -> None:
    stuck = interrupting()
    fleet = FakeFleet({"a": stuck, "b": installed()})
    # The second Ctrl-C, once the first is handled (from another thread: the first one's
    # handler must return to waiting for results).
    on_event = at_stopping(threading.Thread(target=_interrupt_main, daemon=True).start)
    try:
        result = run_interrupted(fleet, ledger, playbooks, forks=1, on_event=on_event)
    finally:  # let the abandoned worker go, and finish while the ledger is still open
        stuck.hold.set()
        for worker in threading.enumerate():
            if worker.name.startswith("kremove-host-"):
                worker.join(WAIT)
    assert statuses(result) == {"a": "skipped", "b": "skipped"}
    assert result.outcomes[0].reason == (
        "interrupted while in flight; its last step may not have finished"
    )
    assert result.stop == "interrupted"
