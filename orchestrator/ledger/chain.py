"""The ledger's hash chain: canonical JSON and the digest that links each entry to the last."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

# A signed ledger's chain starts with this entry, hashed with the key: whether a ledger is signed is
# part of what the chain protects, so it cannot be dropped without the key (issue 15, M1).
SIGNED_OP = "ledger_signed"
SIGNING_ALGORITHM = "hmac-sha256"


def canonical(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, non-ASCII escaped (so that any text,
    even with lone surrogates, has one)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def chain_hash(
    key: bytes | None, prev: str, seq: int, at: str, run_id: str, op: str, body: str
) -> str:
    """SHA-256 of the previous hash and this entry; HMAC-SHA-256 with ``key`` when signed."""
    message = "\n".join((prev, str(seq), at, run_id, op, body)).encode("utf-8")
    if key is not None:
        return hmac.new(key, message, hashlib.sha256).hexdigest()
    return hashlib.sha256(message).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One journal entry as stored: what was written (``body``), linked to ``prev`` by ``hash``."""

    seq: int
    at: str
    run_id: str
    op: str
    body: str
    prev: str
    hash: str

    def hashed(self, key: bytes | None, prev: str) -> str:
        """This entry's hash were it to follow ``prev``, signed with ``key`` (None: plain)."""
        return chain_hash(key, prev, self.seq, self.at, self.run_id, self.op, self.body)
