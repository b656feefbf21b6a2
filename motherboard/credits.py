"""Credits paid to boards, in the shared ledger, for the mutation market to spend.

The motherboard pays each accepted task's Vickrey payment to the board that ran it.
The account is the board's full hardware fingerprint (hex of its BLAKE2b-256 digest,
stores/fingerprint.py): credits belong to the kind of hardware that earned them, and
that is what the mutation market (market/) keys its work by.  Payments are entries
of the shared tamper-evident ledger (stores/ledger.py), one per accepted task:

    {"ledger": "metaos.motherboard", "type": "payment", "fingerprint": HEX, "board": ID,
     "task": ID, "credits": X, "t": seconds}

so the market reads them as it reads its own entries (by replaying the ledger), and
anyone can audit who was paid what.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from motherboard.entries import Payment
from stores.ledger import Ledger

LEDGER = "metaos.motherboard"
PAYMENT = "payment"


def record(payment: Payment) -> dict:
    return {"ledger": LEDGER, "type": PAYMENT, "fingerprint": payment.fingerprint,
            "board": payment.board, "task": payment.task,
            "credits": round(payment.credits, 9), "t": round(payment.at, 6)}


def pay(ledger: Ledger, payments: Iterable[Payment]) -> range:
    """Append every payment to the ledger, in one transaction, and sign a head over them:
    a run's payments are a batch of work, and entries after the last signed head are
    protected by their stored hashes only (stores/ledger.py)."""
    written = ledger.append_records([record(p) for p in payments])
    if written:
        ledger.sign_head()
    return written


@dataclass(frozen=True)
class Account:
    fingerprint: str
    credits: float
    payments: int


def accounts(ledger: Ledger) -> dict[str, Account]:
    """Every fingerprint's balance from the ledger's entries (others' entries skipped)."""
    totals: dict[str, tuple[float, int]] = {}
    for _, raw in ledger.entries():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("ledger") != LEDGER:
            continue
        if entry.get("type") == PAYMENT:
            credits, count = totals.get(entry["fingerprint"], (0.0, 0))
            totals[entry["fingerprint"]] = (credits + entry["credits"], count + 1)
    return {fp: Account(fp, c, n) for fp, (c, n) in totals.items()}
