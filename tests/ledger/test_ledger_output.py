"""Command output is stored bounded: head and tail kept, a marker between, whole characters only."""

from __future__ import annotations

import re
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.ledger import OUTPUT_LIMIT, Ledger, bound_output

StartRun = Callable[..., str]
MARKER = re.compile(r"\n\[\.\.\. kremove ledger: (\d+) bytes omitted \.\.\.\]\n")


def test_a_megabyte_of_stdout_is_stored_bounded(ledger: Ledger, start: StartRun) -> None:
    run_id = start(ledger, hosts=["web1"])
    key = ledger.step_started(
        run_id, "web1", step_id="d", kind="detect", readonly=True, command="c"
    )
    big = "HEAD" + "x" * 1_000_000 + "TAIL"
    ledger.step_finished(key, exit_code=0, stdout=big, stderr="short", timed_out=False)
    (step,) = ledger.get_run(run_id).steps
    assert len(step.stdout.encode("utf-8")) <= OUTPUT_LIMIT
    assert step.stdout.startswith("HEADxxx") and step.stdout.endswith("xxxTAIL")
    head, omitted, tail = MARKER.split(step.stdout)
    assert len(head) + int(omitted) + len(tail) == len(big)
    assert len(head) > 30_000 and len(tail) > 30_000  # both ends are worth reading
    assert step.stderr == "short"


def test_multibyte_characters_are_not_split() -> None:
    for char in ("é", "€", "😀"):  # 2, 3 and 4 UTF-8 bytes
        bounded = bound_output(char * 200_000)
        head, omitted, tail = MARKER.split(bounded)
        assert set(head) == {char} and set(tail) == {char}
        width = len(char.encode("utf-8"))
        assert int(omitted) == (200_000 - len(head) - len(tail)) * width
        assert len(bounded.encode("utf-8")) <= OUTPUT_LIMIT


def test_output_within_the_limit_is_untouched() -> None:
    exact = "y" * OUTPUT_LIMIT
    assert bound_output(exact) == exact
    assert bound_output("") == ""
    assert bound_output("y" * (OUTPUT_LIMIT + 1)) != "y" * (OUTPUT_LIMIT + 1)


@given(st.text(), st.integers(min_value=384, max_value=2048))
def test_bounded_output_always_fits_and_encodes(text: str, limit: int) -> None:
    bounded = bound_output(text, limit)
    assert len(bounded.encode("utf-8")) <= limit  # would raise on a lone surrogate
    if len(text.encode("utf-8", "surrogatepass")) <= limit and text.isascii():
        assert bounded == text
