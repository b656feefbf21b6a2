"""Routine preconditions (the reference C's undefined behaviour made explicit) and the
IR's unsigned division: identity, the interpreter's domain, proofs and vectors inside
it, and udiv/urem against SMT-LIB's bvudiv/bvurem (Z3 evaluating the standard's
operators on constants)."""

from __future__ import annotations

import itertools

import pytest
import z3

from sem import interp
from sem.canon import canonicalize, parse, routine_id
from sem.ir import TYPES, IRError, Node, Routine, bv32, ctz, lshr, routine, udiv, ult, urem
from sem.library import hackers_delight as hd
from sem.vectors import NarrowDomain, edges, generate
from sem.views import Naming, render
from sem.z3sem import equivalent


def _snoob_body(x: Node) -> Node:
    smallest = x & -x
    ripple = x + smallest
    return ripple | lshr(lshr(x ^ ripple, 2), ctz(x))


def _snoob_divided(x: Node) -> Node:
    """Hacker's Delight's own formula: divided by the lowest set bit (all ones at x = 0)."""
    smallest = x & -x
    ripple = x + smallest
    return ripple | udiv(lshr(x ^ ripple, 2), smallest)


def _routine(body, requires=None) -> Routine:
    x = Node("param", 32, (), 0)
    return Routine((bv32,), body(x), None, None if requires is None else requires(x))


def test_the_precondition_is_part_of_the_identity_and_survives_the_canonical_text():
    plain = _routine(_snoob_body)
    nonzero = _routine(_snoob_body, lambda x: x != 0)
    above = _routine(_snoob_body, lambda x: ult(0, x))  # the same domain, another structure
    ids = {routine_id(r) for r in (plain, nonzero, above)}
    assert len(ids) == 3
    assert routine_id(nonzero) == routine_id(hd.p20)
    # a routine without one prints no req field: its text is as before preconditions
    assert canonicalize(plain).text.splitlines()[0] == "sem1 in=bv32 ret=9 mem=-"
    back = parse(canonicalize(nonzero).text)
    assert back.requires is not None and routine_id(back) == routine_id(nonzero)
    assert [interp.admits(back, (x,)) for x in (0, 1, 2**31)] == [False, True, True]


def test_the_dsl_takes_a_one_bit_precondition_only():
    @routine(requires=lambda x, y: ult(x, y) & (y != 0))
    def spread(x: bv32, y: bv32) -> bv32:
        return y - x

    assert spread.requires is not None and spread.hint_params == ("x", "y")
    assert interp.admits(spread, (1, 2)) and not interp.admits(spread, (2, 1))
    with pytest.raises(IRError, match="1-bit"):
        @routine(requires=lambda x: x)
        def f(x: bv32) -> bv32:
            return x


def test_p20s_domain_is_the_reference_cs_nonzero_divisor():
    """The reference C divides by x & -x, which is 0 exactly at x = 0."""
    for x in [*edges(32), *range(0, 70000, 7)]:
        assert interp.admits(hd.p20, (x,)) == ((x & -x) & 0xFFFFFFFF != 0)


def test_z3_accepts_a_difference_outside_the_domain_and_refutes_one_inside_it():
    """The division and the shift differ at x = 0 only: equal under x != 0, not without it;
    a routine wrong inside the domain is refuted with a counterexample inside it."""
    assert equivalent(_routine(_snoob_body, lambda x: x != 0),
                      _routine(_snoob_divided, lambda x: x != 0)).equivalent
    verdict = equivalent(_routine(_snoob_body), _routine(_snoob_divided))
    assert not verdict.equivalent and verdict.counterexample == {"in0": 0}

    def wrong(x: Node) -> Node:  # shifts by one place too few
        smallest = x & -x
        ripple = x + smallest
        return ripple | udiv(lshr(x ^ ripple, 1), smallest)

    verdict = equivalent(hd.p20, _routine(wrong, lambda x: x != 0))
    assert not verdict.equivalent and verdict.counterexample["in0"] != 0
    x = verdict.counterexample["in0"]
    assert verdict.outputs == (interp.run(hd.p20, (x,)).result,
                               interp.run(_routine(wrong), (x,)).result)
    assert verdict.outputs[0] != verdict.outputs[1]


def test_routines_of_different_domains_are_not_equivalent():
    verdict = equivalent(_routine(_snoob_body, lambda x: x != 0), _routine(_snoob_body))
    assert not verdict.equivalent and verdict.detail == "preconditions differ"
    assert verdict.counterexample == {"in0": 0}


def test_vectors_never_leave_the_domain():
    vectors = generate(hd.p20, 3000, seed=5)
    assert len(vectors) == 3000 and all(v.args[0] != 0 for v in vectors)
    narrow = _routine(lambda x: x + 1, lambda x: ult(x, 16))
    assert {v.args[0] for v in generate(narrow, 400)} <= set(range(16))
    # the edge cases are all there but 0
    assert {v.args[0] for v in generate(hd.p20, 100)} >= set(edges(32)) - {0}
    with pytest.raises(NarrowDomain, match="precondition"):
        generate(_routine(lambda x: x + 1, lambda x: x == 12345), 10)


def test_a_routine_without_precondition_gets_the_vectors_it_always_had():
    """Drawing inside the domain changes nothing where the domain is everything (the
    vectors p01's tests and benchmarks saw stay the same)."""
    plain = [v.args for v in generate(hd.p01, 600, seed=3)]
    assert plain[:len(edges(32))] == [(e,) for e in edges(32)]
    assert (0,) in plain


def test_udiv_and_urem_are_smtlibs_bvudiv_and_bvurem():
    """Every 8-bit dividend by small and edge divisors (zero included), and every pair of
    32-bit edge values, against Z3's evaluation of SMT-LIB's own operators."""
    for w, dividends, divisors in ((8, range(256), sorted({*range(17), *edges(8)})),
                                   (32, edges(32), edges(32))):
        x, y = Node("param", w, (), 0), Node("param", w, (), 1)
        t = TYPES[f"bv{w}"]
        for op, smt in ((udiv, z3.UDiv), (urem, z3.URem)):
            r = Routine((t, t), op(x, y), None)
            for a, b in itertools.product(dividends, divisors):
                want = z3.simplify(smt(z3.BitVecVal(a, w), z3.BitVecVal(b, w))).as_long()
                assert interp.run(r, (a, b)).result == want, (op.__name__, w, a, b)
    # the standard's (and RISC-V's) zero divisor, said once more without Z3
    assert interp.run(Routine((bv32, bv32), udiv(x, y), None), (7, 0)).result == 2**32 - 1
    assert interp.run(Routine((bv32, bv32), urem(x, y), None), (7, 0)).result == 7


def test_the_views_state_the_precondition():
    naming = Naming("p20", ("x",))
    assert "/* requires: (x != 0x0u) */" in render("c", hd.p20, naming)
    assert "  requires ne(x, 0)\n" in render("semantic", hd.p20, naming)
    smt = render("smtlib", hd.p20, naming)
    solver = z3.Solver()
    solver.from_string(smt + "(declare-const x (_ BitVec 32))"
                       "(assert (p20_requires x))(assert (= x #x00000000))")
    assert solver.check() == z3.unsat  # defined everywhere but 0
    solver = z3.Solver()
    solver.from_string(smt + "(declare-const x (_ BitVec 32))"
                       "(assert (p20_requires x))(assert (= x #x00000004))")
    assert solver.check() == z3.sat
