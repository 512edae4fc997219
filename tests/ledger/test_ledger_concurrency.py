"""The engine writes from many worker threads at once through one Ledger."""

from __future__ import annotations

import threading
from collections.abc import Callable

from orchestrator.ledger import Ledger

StartRun = Callable[..., str]
THREADS, STEPS = 16, 50


def test_sixteen_threads_fifty_steps_each_all_recorded(ledger: Ledger, start: StartRun) -> None:
    hosts = [f"host{i:02d}" for i in range(THREADS)]
    run_id = start(ledger, hosts=hosts)
    barrier = threading.Barrier(THREADS + 1)
    errors: list[BaseException] = []

    def worker(host: str) -> None:
        try:
            barrier.wait()
            for n in range(STEPS):
                key = ledger.step_started(
                    run_id, host, step_id=f"s{n}", kind="detect", readonly=True, command=f"echo {n}"
                )
                ledger.step_finished(
                    key, exit_code=0, stdout=f"{host} {n}", stderr="", timed_out=False
                )
            ledger.host_finished(run_id, host, status="clean", reason=None, findings=[])
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)

    def reader() -> None:
        try:
            barrier.wait()
            for _ in range(20):
                ledger.list_runs()
                ledger.get_run(run_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(h,)) for h in hosts]
    threads.append(threading.Thread(target=reader))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []

    run = ledger.get_run(run_id)
    assert len(run.steps) == THREADS * STEPS
    assert len({s.key for s in run.steps}) == THREADS * STEPS
    for host in hosts:
        mine = [s for s in run.steps if s.host == host]
        assert [s.seq for s in mine] == list(range(1, STEPS + 1))
        assert [s.stdout for s in mine] == [f"{host} {n}" for n in range(STEPS)]
        assert all(s.finished is not None for s in mine)
    assert run.counts == {"clean": THREADS}
