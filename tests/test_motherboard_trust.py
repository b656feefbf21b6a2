"""Beta reputation's numbers against closed forms and the binomial identity, and the
weighted Vickrey auction's truthfulness checked exhaustively on small cases."""

from __future__ import annotations

import itertools
import math

import pytest

from motherboard.auction import Sealed, utility, vickrey
from motherboard.trust import Opinion, TrustView, beta_cdf, beta_quantile, record_shortfall


@pytest.mark.parametrize("a,b", [(1, 1), (2, 5), (7, 3), (12, 12), (30, 2), (1, 40)])
@pytest.mark.parametrize("x", [0.01, 0.2, 0.5, 0.77, 0.99])
def test_incomplete_beta_equals_the_binomial_tail_for_integers(a, b, x):
    # I_x(a, b) = P(Binomial(a + b - 1, x) >= a) for integer a, b
    n = a + b - 1
    tail = sum(math.comb(n, k) * x**k * (1 - x) ** (n - k) for k in range(a, n + 1))
    assert beta_cdf(x, a, b) == pytest.approx(tail, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("a", [0.5, 1.0, 3.7, 25.0])
def test_quantiles_match_closed_forms(a):
    for p in (0.05, 0.5, 0.9):
        assert beta_quantile(p, a, 1.0) == pytest.approx(p ** (1 / a), abs=1e-9)  # CDF x^a
        assert beta_quantile(p, 1.0, a) == pytest.approx(1 - (1 - p) ** (1 / a), abs=1e-9)
    assert beta_quantile(0.5, a, a) == pytest.approx(0.5, abs=1e-9)  # symmetric


def test_a_newcomer_is_neutral_with_no_evidence_and_a_twentyfold_handicap():
    o = Opinion()
    assert o.expected == 0.5 and o.evidence == 0
    assert o.lower() == pytest.approx(0.05)
    for _ in range(8):
        o.rate(1.0)
    o.rate(0.0)
    assert o.expected == pytest.approx(9 / 11) and o.evidence == 9


def test_a_board_joins_with_trust_half_and_no_evidence_and_its_outcomes_move_it():
    """The trust shown: Beta(1 + good, 1 + bad) over answers and promises together,
    a wrong answer counted WRONG_WEIGHT times."""
    view = TrustView("me")
    view.joined("b", 0.0)
    assert view.of("b").expected == 0.5 and view.of("b").evidence == 0
    view.verified("b", True, 0.0)
    view.timeliness("b", promised=1.0, measured=1.0, tolerance=1.5, now=0.0)
    assert view.of("b").expected == pytest.approx(3 / 4)
    view.verified("b", False, 1.0)
    assert view.of("b").expected == pytest.approx(3 / 14)  # 2 good, 10 bad
    view.timeliness("b", promised=0.1, measured=1.0, tolerance=1.5, now=2.0)  # late
    assert view.of("b").expected == pytest.approx(3 / 15)
    assert [round(x, 6) for _, _, x, _ in view.series] == [round(x, 6) for x in (
        1 / 2, 2 / 3, 3 / 4, 3 / 14, 3 / 15)]


def test_a_caught_liar_needs_a_long_clean_record_to_be_weighed_like_before():
    view = TrustView("me")
    for _ in range(20):
        view.verified("b", True, 0.0)
    before = view.of("b").correct.lower()
    view.verified("b", False, 1.0)
    assert view.of("b").wrong == 1
    clean = 0
    while view.of("b").correct.lower() < before:
        view.verified("b", True, 2.0)
        clean += 1
    assert clean > 50


def test_timeliness_is_on_time_or_late_after_the_transit():
    view = TrustView("me")
    assert view.timeliness("b", promised=1.0, measured=1.6, tolerance=1.5, now=0.0, transit=0.1)
    assert not view.timeliness("b", promised=0.1, measured=1.1, tolerance=1.5, now=0.0, transit=0.1)
    # a promise the observer's record refutes is late, however quick this run was
    assert not view.timeliness("b", promised=1.0, measured=0.5, tolerance=1.5, now=0.0,
                               refuted=True)
    assert (view.of("b").timely.r, view.of("b").timely.s) == (1.0, 2.0)


def test_a_promise_under_the_observers_record_by_more_than_its_tolerance_falls_short():
    """A run that happened to take a tenth of what the observer has recorded for the
    board does not make a promise of a tenth of the record kept: the record is the
    observer's evidence; within its tolerance of it, the promise stands."""
    assert record_shortfall(recorded=2.9, transit=0.0, promised=1.0, record_tolerance=3.0) <= 1
    assert record_shortfall(recorded=10.0, transit=0.0, promised=1.0,
                            record_tolerance=3.0) > 1  # a tenfold overstater
    # the messages' share is not promised
    assert record_shortfall(recorded=3.2, transit=0.3, promised=1.0, record_tolerance=3.0) <= 1
    assert record_shortfall(recorded=3.2, transit=0.1, promised=1.0, record_tolerance=3.0) > 1
    assert record_shortfall(recorded=1.4, transit=0.0, promised=1.0, record_tolerance=1.5) <= 1


# -- the auction ------------------------------------------------------------------------------

PRICES = [0.5 * k for k in range(1, 13)]
WEIGHTS = [0.05, 0.3, 1.0]


def test_truthful_bidding_is_weakly_dominant_exhaustively():
    """For every true cost, every rival bid and weight, and every false price: the
    bidder's utility from a false bid never beats its utility from the truth."""
    checked = 0
    for true_cost, my_weight in itertools.product([1.0, 2.5, 4.0], WEIGHTS):
        for rivals in itertools.product(itertools.product(PRICES[::3], WEIGHTS), repeat=2):
            others = [Sealed(f"r{i}", p, w) for i, (p, w) in enumerate(rivals)]
            truth = vickrey([Sealed("me", true_cost, my_weight), *others])
            assert utility(true_cost, "me", truth) >= -1e-12  # truth never loses money
            for lie in PRICES:
                for position in (0, 2):  # ties go to the bidder listed first
                    bids = [*others]
                    bids.insert(position, Sealed("me", lie, my_weight))
                    honest_bids = [*others]
                    honest_bids.insert(position, Sealed("me", true_cost, my_weight))
                    honest_here = utility(true_cost, "me", vickrey(honest_bids))
                    assert utility(true_cost, "me", vickrey(bids)) <= honest_here + 1e-9
                    checked += 1
    assert checked > 10_000


def test_the_winner_is_paid_its_threshold_price():
    out = vickrey([Sealed("a", 3.0, 0.5), Sealed("b", 2.0, 1.0), Sealed("c", 10.0, 1.0)])
    assert out.winner.bidder == "b"  # weighted costs 6, 2, 10
    assert out.payment == pytest.approx(6.0)  # b would still win asking up to 6
    lone = vickrey([Sealed("a", 3.0, 0.5)])
    assert lone.payment == 3.0 and lone.runner_up is None
    assert vickrey([]) is None


def test_a_newcomer_claiming_ten_times_the_speed_loses_to_an_established_board():
    established = Opinion(100, 2)
    newcomer = Opinion()
    out = vickrey([Sealed("new", 0.1, newcomer.lower() ** 2),
                   Sealed("old", 1.0, established.lower() ** 2)])
    assert out.winner.bidder == "old"
