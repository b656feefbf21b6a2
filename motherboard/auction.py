"""The trust-weighted second-price sealed-bid (Vickrey) auction, a procurement one.

Each bidder i asks a price b_i; the motherboard weighs it by its trust in i, w_i in
(0, 1] (trust.BoardTrust.weight: fixed before the auction, not something the bid
can move), and the lowest weighted cost b_i / w_i wins.  The winner is paid the
highest price it could have asked and still won: w_i times the runner-up's
weighted cost.  So what a bidder asks decides only *whether* it wins, never what it
is paid, and asking its true cost is a weakly dominant strategy (Vickrey 1961; with
weights this is a scoring auction, and the same argument holds: the payment is the
threshold price).  Ties go to the bidder listed first.  A lone bidder is paid
`reserve` when given (the most the motherboard would pay), else its own price.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Sealed:
    bidder: str
    price: float  # credits asked
    weight: float  # the motherboard's trust weight for this bidder, 0 < weight <= 1

    @property
    def cost(self) -> float:
        """What the motherboard expects this bid to cost it, trust taken into account."""
        return self.price / self.weight


@dataclass(frozen=True)
class AuctionOutcome:
    winner: Sealed
    payment: float  # credits the winner is paid
    runner_up: Sealed | None


def vickrey(bids: Sequence[Sealed], reserve: float | None = None) -> AuctionOutcome | None:
    """The winner and its payment; None without bids."""
    if not bids:
        return None
    for b in bids:
        if not 0 < b.weight <= 1:
            raise ValueError(f"bidder {b.bidder}: weight {b.weight} must be in (0, 1]")
        if b.price < 0:
            raise ValueError(f"bidder {b.bidder}: a price is never negative, not {b.price}")
    ranked = sorted(range(len(bids)), key=lambda i: (bids[i].cost, i))
    winner = bids[ranked[0]]
    if len(bids) == 1:
        paid = winner.price if reserve is None else max(reserve, winner.price)
        return AuctionOutcome(winner, paid, None)
    runner_up = bids[ranked[1]]
    return AuctionOutcome(winner, winner.weight * runner_up.cost, runner_up)


def utility(true_cost: float, bidder: str, outcome: AuctionOutcome | None) -> float:
    """What the auction is worth to `bidder` whose real cost is `true_cost`: payment minus
    cost if it won, nothing otherwise."""
    if outcome is None or outcome.winner.bidder != bidder:
        return 0.0
    return outcome.payment - true_cost
