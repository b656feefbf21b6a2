"""Liars, for tests and the demo (`--liars N`): agents that cheat the market.

Three kinds, given out in turn:

  overstate   promises ten times the speed it has (its bid's time, energy and price
              are a tenth of what its history predicts)
  wrong       returns wrong outputs on 10% of its tasks, chosen at random: it skips
              the work and sends junk (every output of the task off by one bit),
              which is what a board saves effort by
  whitewash   does both, and when it has lost WHITEWASH_AFTER auctions in a row it
              leaves and joins again under a new identity, hoping for a fresh start

Any of them may be patient: it lies only in bids its history is calibrated for, so
its calibration is promised truly and it starts out trusted.

A liar is an honest agent (agent.py) whose messages it rewrites on the way out, so
it runs the same board, the same history and the same code; nothing on the
motherboard's side knows which boards lie.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from motherboard.agent import BoardAgent
from motherboard.batch import corrupt
from motherboard.messages import Award, Bid, BidRequest, Decline, Result

OVERSTATE, WRONG, WHITEWASH = "overstate", "wrong", "whitewash"
KINDS = (OVERSTATE, WRONG, WHITEWASH)
SPEEDUP_CLAIMED = 10.0
WRONG_RATE = 0.1
WHITEWASH_AFTER = 20


@dataclass
class Liar:
    """Rewrites an honest agent's bids and results."""

    kind: str
    rng: random.Random
    # lies only in bids its history is calibrated for: its calibration runs are promised
    # truly, so it starts out trusted with the record they made
    patient: bool = False
    lost_in_a_row: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown liar kind {self.kind!r}: choose one of {', '.join(KINDS)}")

    def bid(self, bid: Bid | Decline) -> Bid | Decline:
        if isinstance(bid, Decline) or self.kind == WRONG or (self.patient and not bid.calibrated):
            return bid
        self.lost_in_a_row += 1  # until an award says otherwise
        return replace(bid, seconds=bid.seconds / SPEEDUP_CLAIMED, run=bid.run / SPEEDUP_CLAIMED,
                       joules=bid.joules / SPEEDUP_CLAIMED, price=bid.price / SPEEDUP_CLAIMED)

    def awarded(self) -> None:
        self.lost_in_a_row = 0

    def result(self, result: Result, stride: int) -> Result:
        """`stride`: the size of one output record (batch.out_stride)."""
        if self.kind == OVERSTATE or result.outputs is None:
            return result
        if self.rng.random() >= WRONG_RATE:
            return result
        return replace(result, outputs=corrupt(result.outputs, stride))

    @property
    def wants_new_identity(self) -> bool:
        return self.kind == WHITEWASH and self.lost_in_a_row >= WHITEWASH_AFTER


@dataclass
class LyingAgent:
    """An agent and the liar that speaks for it."""

    agent: BoardAgent
    liar: Liar

    def on_request(self, request: BidRequest, now: float) -> Bid | Decline:
        return self.liar.bid(self.agent.on_request(request, now))

    def on_award(self, award: Award, now: float) -> None:
        self.liar.awarded()
        self.agent.on_award(award, now)

    def result(self, result: Result, stride: int) -> Result:
        return self.liar.result(result, stride)


def liar_kinds(count: int) -> list[str]:
    """The kinds `--liars count` gives out, in turn."""
    return [KINDS[i % len(KINDS)] for i in range(count)]
