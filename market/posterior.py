"""What the ledger says about a search strategy on a routine: the chance that an
experiment improves it, and by how much.

Per (strategy, routine):
  - chance: Beta-Bernoulli.  After r improvements and s experiments without one the
    posterior is Beta(1 + r, 1 + s) (Jøsang's Beta reputation; a newcomer's mean is 1/2).
  - size: the cycles an improvement saves, modelled as exponential with rate λ, and λ
    Gamma(a, b) a priori (the conjugate prior): after n improvements saving x₁..xₙ,
    λ ~ Gamma(a + n, b + Σx).  With a = 2 the prior mean size, E[1/λ] = b/(a-1), is b.

A board that adopted another's program (same ISA, its own check passed) counts that as
an improvement by the finder's strategy on its own pair (`observe_adoption`): with
sharing, a routine another board's search answered for it was otherwise a pair without
evidence, drawn at its class's chance, and seldom searched again where the board searching
it alone would have gone on (the full bench at f6d6445: qemu64 held Haswell's 10 for p19,
never searched it, and ended at 10; alone, its own descend found 10, then 9).

Routines of one class (Hacker's Delight, sorting) share evidence: a (strategy, routine)
pair's prior is its class's counts for that strategy, the pair's own excluded, weighed
by `pooling` (0.5: another routine's experiment counts half as much as one's own), and
all of them together as at most `pooled_at_most` (4) of its own.  That is what lets a
strategy that works on p03 be tried first on p04 too; the bound is what lets a routine's
own record speak once it has one: uncapped, a full bench's two hundred experiments of
the class weighed as a hundred, and a routine searched again nine times without an
improvement drew about the chance of one never searched again (with sharing, in the full
bench of 2026-12-07 at afc47b3, p09 and p13 got nine searches after their first each, of
which none improved, p19 none and p21 two).

Thompson sampling is done in two stages (hierarchical), because a strategy is one arm
played on many routines: drawing every (strategy, routine) pair independently and taking
the maximum would reward the strategy with the most uncertain routines, not the best
one.  `sample_class` draws one (chance, size) per (strategy, class) from the class's
whole evidence, which picks the strategy; `sample` then draws per routine of that
strategy, which picks the routine.  `mean` gives the posterior means (for tables).  The
caller passes its own random.Random, so sampling is seedable.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

SIZE_SHAPE = 2.0  # a: the Gamma prior's shape; the prior mean size is then its rate b
POOLING = 0.5
POOLED_AT_MOST = 4.0  # the class's evidence weighs at most this many of a pair's own


@dataclass
class Evidence:
    improvements: int = 0
    failures: int = 0
    saved: float = 0.0  # cycles saved, summed over the improvements

    def add(self, other: Evidence, weight: float = 1.0) -> Evidence:
        return Evidence(self.improvements + weight * other.improvements,
                        self.failures + weight * other.failures, self.saved + weight * other.saved)


@dataclass(frozen=True)
class Belief:
    chance: float  # of an improvement, per experiment
    size: float  # cycles an improvement saves


class Posterior:
    def __init__(self, prior_size: float = 1.0, pooling: float = POOLING,
                 pooled_at_most: float = POOLED_AT_MOST) -> None:
        if prior_size <= 0:
            raise ValueError("the prior improvement size must be positive (cycles)")
        self.prior_size = prior_size
        self.pooling = pooling
        self.pooled_at_most = pooled_at_most
        self._pairs: dict[tuple[str, str], Evidence] = defaultdict(Evidence)
        self._classes: dict[tuple[str, str], Evidence] = defaultdict(Evidence)
        # improvements a pair got by adoption: (strategy, routine) -> them
        self._by_adoption: dict[tuple[str, str], Evidence] = defaultdict(Evidence)

    def observe(self, strategy: str, routine: str, klass: str, saved: float | None) -> None:
        """One finished experiment: `saved` cycles if it improved the routine, else None."""
        for table, key in ((self._pairs, (strategy, routine)), (self._classes, (strategy, klass))):
            e = table[key]
            if saved is None:
                e.failures += 1
            else:
                e.improvements += 1
                e.saved += saved

    def observe_adoption(self, strategy: str, routine: str, saved: float) -> None:
        """Another board's experiment with `strategy` improved `routine` (as the adopter's
        features see it) by `saved` cycles, and the adopter took its program: had the
        adopter run it, it would have found that program too.  The pair's evidence only:
        the class counted that experiment once already, as its finder's."""
        e = self._by_adoption[(strategy, routine)]
        e.improvements += 1
        e.saved += saved

    def evidence(self, strategy: str, routine: str, klass: str) -> Evidence:
        """The pair's own evidence (its adoptions included) plus its class's (the pair's
        own experiments taken out), pooled."""
        own = self._pairs.get((strategy, routine), Evidence())
        whole = self._classes.get((strategy, klass), Evidence())
        others = Evidence(whole.improvements - own.improvements, whole.failures - own.failures,
                          whole.saved - own.saved)
        count = others.improvements + others.failures
        weight = min(self.pooling, self.pooled_at_most / count) if count else 0.0
        return own.add(self._by_adoption.get((strategy, routine), Evidence())).add(others, weight)

    def class_evidence(self, strategy: str, klass: str) -> Evidence:
        return self._classes.get((strategy, klass), Evidence())

    def _parameters(self, e: Evidence) -> tuple[float, float, float, float]:
        return (1 + e.improvements, 1 + e.failures, SIZE_SHAPE + e.improvements,
                self.prior_size * (SIZE_SHAPE - 1) + e.saved)

    def _draw(self, rng: random.Random, e: Evidence) -> Belief:
        alpha, beta, shape, rate = self._parameters(e)
        rate_draw = rng.gammavariate(shape, 1 / rate)  # λ; gammavariate takes the scale
        return Belief(rng.betavariate(alpha, beta), 1 / rate_draw)

    def sample(self, rng: random.Random, strategy: str, routine: str, klass: str) -> Belief:
        return self._draw(rng, self.evidence(strategy, routine, klass))

    def sample_class(self, rng: random.Random, strategy: str, klass: str) -> Belief:
        return self._draw(rng, self.class_evidence(strategy, klass))

    def mean(self, strategy: str, routine: str, klass: str) -> Belief:
        alpha, beta, shape, rate = self._parameters(self.evidence(strategy, routine, klass))
        return Belief(alpha / (alpha + beta), rate / (shape - 1))
