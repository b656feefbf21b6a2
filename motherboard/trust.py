"""Trust: Beta reputation (Josang and Ismail 2002), one view per observer.

After r good and s bad outcomes the opinion about a board is Beta(r+1, s+1): expected
trust (r+1)/(r+s+2), 0.5 for a newcomer, with r+s the evidence.  Ratings may be
fractional (a late answer is partly good) and weighted (a wrong answer counts as
WRONG_WEIGHT bad outcomes: cheating is worse than being slow).

Each motherboard keeps its own TrustView (subjective: what *it* saw), with two
opinions per board: correctness (verified answers) and timeliness (promised versus
measured time: on time or late).  What the market weighs bids by is a low quantile
(TRUST_QUANTILE) of the correctness Beta times the expected timeliness: with no
evidence, Beta(1, 1) is uniform and its 5% quantile 0.05, so a newcomer -- or a liar
back under a new identity (Douceur 2002: identities are free) -- pays a forty-fold
handicap (0.05 x 0.5) until its own measured results say otherwise, while a board
with a long clean record is weighed close to 1 (0.05^(1/(n+1)) after n right
answers).  That makes the view asymmetric and
observer-based, as Cheng and Friedman (2005) require for sybil-proofness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

TRUST_QUANTILE = 0.05
WRONG_WEIGHT = 10.0


def _continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 3e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """P(X <= x) for X ~ Beta(a, b): the regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _continued_fraction(a, b, x) / a
    return 1.0 - front * _continued_fraction(b, a, 1.0 - x) / b


@lru_cache(maxsize=4096)  # a pure function, asked again and again about the same opinions
def beta_quantile(p: float, a: float, b: float) -> float:
    """The x with beta_cdf(x, a, b) = p (bisection: the CDF is monotone)."""
    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        if beta_cdf(mid, a, b) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def record_shortfall(recorded: float, transit: float, promised: float,
                     record_tolerance: float) -> float:
    """How far a promise falls short of an observer's record of the board: the record's
    time for the run (`recorded`, the messages' round trip `transit` included, which is
    not the board's to promise) over `record_tolerance` times the promise.  Above 1 the
    record shows the promise cannot be kept."""
    return (recorded - transit) / max(record_tolerance * promised, 1e-12)


@dataclass
class Opinion:
    """Beta reputation state: r good and s bad outcomes (possibly fractional)."""

    r: float = 0.0
    s: float = 0.0

    def rate(self, good: float, weight: float = 1.0) -> None:
        """One outcome, `good` in [0, 1] (1: wholly good), counted `weight` times."""
        good = min(1.0, max(0.0, good))
        self.r += weight * good
        self.s += weight * (1.0 - good)

    @property
    def evidence(self) -> float:
        return self.r + self.s

    @property
    def expected(self) -> float:
        return (self.r + 1.0) / (self.r + self.s + 2.0)

    def lower(self, q: float = TRUST_QUANTILE) -> float:
        return beta_quantile(q, self.r + 1.0, self.s + 1.0)


@dataclass
class BoardTrust:
    correct: Opinion = field(default_factory=Opinion)
    timely: Opinion = field(default_factory=Opinion)
    wrong: int = 0  # wrong answers caught

    @property
    def expected(self) -> float:
        """What the table, the JSON and the plot show as trust: the Beta expectation over
        every outcome rated, answers (a wrong one counted WRONG_WEIGHT times) and promises
        alike, so 0.5 for a board with no evidence, the neutral start.  (The product of
        the two opinions' expectations, shown before, started a newcomer at 0.25.)"""
        good = self.correct.r + self.timely.r
        return (good + 1.0) / (good + self.correct.s + self.timely.s + 2.0)

    @property
    def weight(self) -> float:
        """What bids are weighed by: the chance the answer is right, pessimistically (the
        5% quantile: a newcomer's is 0.05), times the share of promises kept (expected)."""
        return self.correct.lower() * self.timely.expected

    @property
    def evidence(self) -> float:
        return self.correct.evidence


@dataclass
class TrustView:
    """One observer's view of every board it has dealt with (history kept after exits)."""

    observer: str
    boards: dict[str, BoardTrust] = field(default_factory=dict)
    # (time, board, expected trust, evidence) after every rating: trust over time
    series: list[tuple[float, str, float, float]] = field(default_factory=list)

    def of(self, board: str) -> BoardTrust:
        return self.boards.setdefault(board, BoardTrust())

    def joined(self, board: str, now: float) -> None:
        """A board (re)joins: its trust as it stands, 0.5 for a newcomer, starts its line
        over time (an identity back keeps what it had)."""
        self._note(board, now)

    def verified(self, board: str, correct: bool, now: float) -> None:
        t = self.of(board)
        if correct:
            t.correct.rate(1.0)
        else:
            t.correct.rate(0.0, WRONG_WEIGHT)
            t.wrong += 1
        self._note(board, now)

    def timeliness(self, board: str, promised: float, measured: float, tolerance: float,
                   now: float, transit: float = 0.0, refuted: bool = False) -> bool:
        """Rate a promise, on time or late: on time when the run took at most `tolerance`
        times the promised time.  The run is what was measured less `transit`, the
        messages' share, which the board cannot promise.  Late is a bad outcome, not a
        partial one: a board that promises a tenth of its time would otherwise keep a
        tenth of its marks, and win on a tenth of its price.

        `refuted`: this observer's own record of the board's runs shows the promise
        cannot be kept (record_shortfall above 1), so it is late whatever this one run
        took: the run alone would let through a board that promises a tenth of its time
        whenever the host happens to run it ten times faster than its record (runs
        measured under load, a line fitted through small runs), and the record is this
        observer's evidence, not the board's word."""
        on_time = measured - transit <= tolerance * promised and not refuted
        self.of(board).timely.rate(1.0 if on_time else 0.0)
        self._note(board, now)
        return on_time

    def refuted(self, board: str, now: float) -> None:
        """A promise this observer's record of the board shows cannot be kept: late as
        it is made (the run it would be held to is not waited for)."""
        self.of(board).timely.rate(0.0)
        self._note(board, now)

    def _note(self, board: str, now: float) -> None:
        t = self.of(board)
        self.series.append((now, board, t.expected, t.evidence))
