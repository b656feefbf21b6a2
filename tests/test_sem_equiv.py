"""Z3 equivalence: proofs for differently written routines, counterexamples for near misses."""

import pytest

from sem.interp import run
from sem.ir import bv32, lshr, popcount, routine, select, slt
from sem.library import hackers_delight as hd
from sem.z3sem import NotComparable, equivalent


@routine
def abs_by_select(v: bv32) -> bv32:
    return select(slt(v, 0), -v, v)


@routine
def clp2_off_by_one(x: bv32) -> bv32:  # forgets the initial x - 1
    for shift in (1, 2, 4, 8, 16):
        x = x | lshr(x, shift)
    return x + 1


@routine
def parity_by_popcount(x: bv32) -> bv32:
    return popcount(x) & 1


def test_abs_with_shift_and_with_select_are_proven_equal():
    verdict = equivalent(hd.p09, abs_by_select)
    assert verdict.equivalent and verdict.counterexample is None


def test_swar_popcount_and_parity_cascade_are_proven_equal():
    assert equivalent(hd.p22, parity_by_popcount).equivalent


def test_near_miss_gets_a_counterexample_that_really_differs():
    verdict = equivalent(hd.p24, clp2_off_by_one)
    assert not verdict.equivalent
    args = (verdict.counterexample["in0"],)
    a, b = run(hd.p24, args).result, run(clp2_off_by_one, args).result
    assert a != b and verdict.outputs == (a, b)


def test_high_product_is_not_the_low_product():
    @routine
    def low_product(x: bv32, y: bv32) -> bv32:
        return x * y

    verdict = equivalent(hd.p25, low_product)
    assert not verdict.equivalent
    x, y = verdict.counterexample["in0"], verdict.counterexample["in1"]
    assert run(hd.p25, (x, y)).result == (x * y) >> 32 != run(low_product, (x, y)).result


def test_routines_of_different_signatures_are_refused():
    with pytest.raises(NotComparable):
        equivalent(hd.p01, hd.p10)
