"""The market's ledger entries: canonical JSON objects (stores/ledger.canonical_json),
each with a `type` and the market CPU clock `t` (milliseconds of CPU the market had
spent when the entry was written: searches, proof checks and guest runs).

    joined       an agent enters: its key, board, ISA, discovered features, credits
    accepted     a proposal is accepted: the experiment, its identity, class, stake
    refused      a proposal is refused: why (same / covered / pending / credits), the
                 experiment that makes it redundant, and the alternative offered
    result       a finished experiment: outcome improvement (program, code, proof
                 artifact, features it uses, instructions and cycles before/after, when
                 in the search it was reached) or none (the best the search held: no
                 improvement below `bound` instructions); CPU used, refund
    counterexample  an input on which a candidate program was wrong (Z3's model), kept
                 so every search of that routine and ISA can test against it
    refuted      a claimed improvement whose proof did not check, or whose code the
                 board ran wrong: the claim is refused, the stake is lost
    adopted      a board takes another board's improvement after checking the proof
                 artifact itself and running the code on its own vectors; or, from a
                 board of another ISA (`translated_from`), that program lifted to the
                 semantic core and lowered for its own ISA (`features_used`, the CPU of
                 the translation `translate_ms`, the program it came from `from_text`),
                 checked the same way
    not-adopted  the same check failed on the adopting board: why; or a translation
                 was no shorter than what the board holds (its CPU is on the clock)
    payout       credits paid to an agent: for its improvement on its own board, or as
                 a royalty when another board adopts it (cycles saved x recorded use)

Entries of one settlement (a result with its payout, counterexamples and adoptions) are
appended in one transaction: a market killed mid-settlement leaves all or none of them.

The market also reads one kind of entry it does not write: the meta-motherboard's
payments (motherboard/credits.py writes them; the layers let the market read the format,
not import the writer),

    {"ledger": "metaos.motherboard", "type": "payment", "fingerprint": HEX, "credits": X, ...}

credits a board earned running tasks, for its hardware fingerprint (the hex digest of
stores/fingerprint.py): the market's agents on that fingerprint may spend them.
"""

from __future__ import annotations

JOINED = "joined"
ACCEPTED = "accepted"
REFUSED = "refused"
RESULT = "result"
COUNTEREXAMPLE = "counterexample"
REFUTED = "refuted"
ADOPTED = "adopted"
NOT_ADOPTED = "not-adopted"
PAYOUT = "payout"

KINDS = (JOINED, ACCEPTED, REFUSED, RESULT, COUNTEREXAMPLE, REFUTED, ADOPTED, NOT_ADOPTED,
         PAYOUT)
MARKET = "metaos.market"  # every market entry's `ledger` field: other writers share the log

# refusal reasons
SAME = "same"  # an experiment with this identity is active or done
COVERED = "covered"  # a finished experiment answers it (Experiment.covers, result usable)
PENDING = "pending"  # an active experiment will answer it: wait for its result
CREDITS = "credits"  # the agent cannot stake the budget

# outcomes of an experiment (a refuted claim's outcome is REFUTED)
IMPROVEMENT = "improvement"
NONE = "none"


MOTHERBOARD = "metaos.motherboard"  # the meta-motherboard's entries' `ledger` field
PAYMENT = "payment"  # its entry type for credits paid to a fingerprint
# what a raw entry holds if it may concern the market (a cheap test before parsing it)
TAGS = (b'"ledger":"' + MARKET.encode() + b'"', b'"ledger":"' + MOTHERBOARD.encode() + b'"')


def entry(kind: str, t: int, **fields) -> dict:
    if kind not in KINDS:
        raise ValueError(f"no market entry type {kind!r}; one of {', '.join(KINDS)}")
    return {"ledger": MARKET, "type": kind, "t": t, **fields}


def is_market(record: object) -> bool:
    return isinstance(record, dict) and record.get("ledger") == MARKET


def is_payment(record: object) -> bool:
    """A meta-motherboard payment to a fingerprint (motherboard/credits.py)."""
    return (isinstance(record, dict) and record.get("ledger") == MOTHERBOARD
            and record.get("type") == PAYMENT)


def concerns_market(record: object) -> bool:
    """What the market's state is rebuilt from: its own entries and the payments."""
    return is_market(record) or is_payment(record)
