"""Making arbitrary text storable: valid UTF-8, and command output bounded to a fixed size."""

from __future__ import annotations

# Per stream, marker included. Enough for any parser's evidence; a runaway `find /` cannot bloat
# the ledger.
OUTPUT_LIMIT = 64 * 1024
_MARKER_RESERVE = 96  # bytes kept free for the marker; its longest form is well under this


def safe_text(value: str) -> str:
    """Text that encodes as UTF-8: lone surrogates (undecodable bytes) become ``\\udcXX``."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def bound_output(value: str, limit: int = OUTPUT_LIMIT) -> str:
    """``value`` made safe and cut to at most ``limit`` UTF-8 bytes: head, marker, tail.

    Cuts fall on character boundaries; the marker says how many bytes were left out.
    """
    if limit < 4 * _MARKER_RESERVE:
        raise ValueError(f"output limit {limit} is too small to hold a head, a marker and a tail")
    text = safe_text(value)
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    budget = limit - _MARKER_RESERVE
    # "ignore" only drops the partial character at the cut: the rest of ``data`` is valid UTF-8.
    head = data[: budget // 2].decode("utf-8", "ignore")
    tail = data[len(data) - (budget - budget // 2) :].decode("utf-8", "ignore")
    omitted = len(data) - len(head.encode("utf-8")) - len(tail.encode("utf-8"))
    return f"{head}\n[... kremove ledger: {omitted} bytes omitted ...]\n{tail}"
