"""Reformulation at the IR level: smaller expressions that mean the same as a routine, as
starts for every ISA.  Independent truths: the reference interpreter (the enumeration's
numpy values of every operation), Z3 (the expressions found equal the routine at full
width; the machine starts made from them are proven against the routine itself), and
the issue's gcc counts for p25 (x86-64 6, riscv64 7 without Zb*)."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest

from evolution.evolve import evolve
from evolution.gcc import compile_c
from evolution.proof import prove
from evolution.reformulate import _binary, _unary, reformulations
from evolution.registry import ISAS
from evolution.starts import starts
from evolution.targets import TARGETS
from sem import interp, ir
from sem.ir import Node, Routine
from sem.library import hackers_delight as hd
from sem.z3sem import equivalent

X86, RISCV = ISAS["x86_64"], ISAS["riscv64"]


@pytest.mark.parametrize("width", [8, 16, 32])
def test_every_operation_computes_what_the_interpreter_does(width):
    """The enumeration compares numpy's values with the routine's: each operation must give
    the interpreter's value on every input (corners and random), or agreement means nothing."""
    rng = random.Random(width)
    corners = [0, 1, 2, width - 1, width, (1 << width) - 1, 1 << (width - 1),
               (1 << (width - 1)) - 1]
    pairs = [(a, b) for a in corners for b in corners]
    pairs += [(rng.getrandbits(width), rng.getrandbits(width)) for _ in range(500)]
    a = np.array([p[0] for p in pairs], dtype=np.uint64)
    b = np.array([p[1] for p in pairs], dtype=np.uint64)
    x, y = Node("param", width, (), 0), Node("param", width, (), 1)
    ty = {8: ir.bv8, 16: ir.bv16, 32: ir.bv32}[width]
    for op, fn in _unary(width).items():
        spec = Routine((ty,), ir.build(op, x), None)
        want = [interp.run(spec, (p,)).result for p, _ in pairs]
        assert fn(a).tolist() == want, op
    for op, (fn, _) in _binary(width).items():
        node = ir.build(op, x, y)
        spec = Routine((ty, ty), ir.zext(node, width) if node.width == 1 else node, None)
        want = [interp.run(spec, p).result for p in pairs]
        assert fn(a, b).tolist() == want, op


@pytest.mark.parametrize("routine, expression", [
    (hd.p22, "and(1, popcount(x))"), (hd.p23, "popcount(x)"), (hd.p18, "eq(1, popcount(x))")])
def test_bit_count_formulations_are_found_and_z3_proves_them(routine, expression):
    found = reformulations(routine)
    assert [f.expression for f in found][:1] == [expression]
    assert equivalent(routine, found[0].routine, timeout_ms=60_000).equivalent


def test_a_routine_already_smallest_has_no_reformulation():
    """p01 is x & (x - 1): two operations, and nothing of one operation means the same."""
    assert reformulations(hd.p01) == []


def test_agreement_on_the_inputs_is_only_a_hypothesis_z3_refuses():
    """A routine equal to popcount(x) except at one value no input of the enumeration hits:
    popcount(x) is offered (it agrees on every input tried), and Z3 refuses it with that
    value as its counterexample, as evolve's start proof refuses its lowering."""
    x = Node("param", 32, (), 0)
    rare = 0x1234_5678
    spec = Routine((ir.bv32,), ir.select(x == rare, ir.const(0, 32), ir.popcount(x)), None,
                   hint_name="rare")
    found = reformulations(spec)
    assert [f.expression for f in found][:1] == ["popcount(x0)"]
    verdict = equivalent(spec, found[0].routine, timeout_ms=60_000)
    assert not verdict.equivalent and verdict.counterexample == {"in0": rare}
    [start] = [s for s in starts(X86, spec, frozenset({"popcnt"}))
               if s.name == "lowering of popcount(x0)"]
    assert not prove(X86, spec, start.program, timeout_ms=60_000).proven


@pytest.mark.parametrize("isa, features", [
    (X86, frozenset()), (RISCV, frozenset({"m"})), (RISCV, frozenset({"m", "zba"}))])
def test_p25_has_a_start_from_mulhu_z3_proves_against_the_routine(isa, features):
    """p25 builds the high half of a product from 16-bit halves; its reformulation is
    mulhu(x, y), whose lowering is a start once proven against p25 itself (not against the
    reformulation, which Z3 cannot bit-blast in a minute)."""
    [found] = [s for s in starts(isa, hd.p25, features) if s.name == "lowering of mulhu(x, y)"]
    assert prove(isa, hd.p25, found.program, timeout_ms=60_000).proven


@pytest.mark.parametrize("target, goal", [("x86-64 qemu64", 6), ("riscv64 rv64 without Zb*", 7)])
def test_p25_reaches_the_issues_gcc_count_from_our_own_starts(target, goal):
    """The issue's gcc -O3 counts for p25 (x86-64 6, rv64gc 7, the return included) were out
    of reach from the routine's own lowering (24 and 21 instructions after 20 s)."""
    result = evolve(hd.p25, TARGETS[target], budget_s=90, seed=1, stop_at=goal,
                    clock=time.process_time)
    assert result.instructions <= goal, result.text


def test_p21_is_found_as_a_case_analysis_z3_proves_it():
    """p21 (cycle a -> b -> c -> a) written with masks is two cases on comparisons."""
    found = reformulations(hd.p21)
    assert [f.expression for f in found] == ["select(eq(x, a), b, select(eq(x, c), a, c))"]
    assert equivalent(hd.p21, found[0].routine, timeout_ms=60_000).equivalent


def test_p21_on_x86_from_our_own_starts_meets_the_issues_gcc_count():
    """From the case analysis's lowering (cmp + cmovcc) the search reaches the issue's gcc
    count (7, on the clean reference C) and gets below gcc -O3 on our C view, measured now
    (15 with gcc 12); from the routine's own lowering it had stayed at 20."""
    target = TARGETS["x86-64 qemu64"]
    gcc = compile_c(X86, hd.p21, target.features).instructions
    result = evolve(hd.p21, target, budget_s=90, seed=1, stop_at=min(7, gcc - 1),
                    clock=time.process_time)
    assert result.instructions <= min(7, gcc - 1), result.text


def test_p14_is_found_at_64_bits_and_reaches_the_issues_count_on_x86():
    """p14's floor average without overflow, (x & y) + ((x ^ y) >> 1), is the low half of
    (zext x + zext y) >> 1 at 64 bits, which no 32-bit expression of three operations is:
    Z3 proves it, and from its lowering x86-64 reaches the issue's gcc count, 5 (6 from the
    routine's own lowering)."""
    found = reformulations(hd.p14)
    assert [f.expression for f in found] == ["low 32 bits of lshr(add(zext(x), zext(y)), 1)"]
    assert equivalent(hd.p14, found[0].routine, timeout_ms=60_000).equivalent
    result = evolve(hd.p14, TARGETS["x86-64 qemu64"], budget_s=90, seed=1, stop_at=5,
                    clock=time.process_time)
    assert result.instructions <= 5, result.text


def test_p15_is_found_at_64_bits_and_reaches_the_issues_count_on_both_x86_boards():
    """p15's ceiling average, (x | y) - ((x ^ y) >> 1), is the low half of (zext x + zext y
    + 1) >> 1: three operations at 64 bits, which the enumeration reached only after 30 s
    before its last size was tried on probe inputs first.  Of the expressions of that size
    the one reading the parameters fewest times comes first; Z3 proves it, and from its
    lowering (adds as lea) both x86 boards reach the issue's gcc count, 5 (gcc on our C
    view: 6, as ours was)."""
    found = reformulations(hd.p15)
    assert found[0].expression == "low 32 bits of lshr(add(zext(x), add(zext(y), 1)), 1)"
    assert equivalent(hd.p15, found[0].routine, timeout_ms=60_000).equivalent
    for target in ("x86-64 qemu64", "x86-64 Haswell"):
        result = evolve(hd.p15, TARGETS[target], budget_s=90, seed=1, stop_at=5,
                        clock=time.process_time)
        assert result.instructions <= 5, (target, result.text)


def test_p10_on_haswell_is_two_lzcnts_and_reaches_the_issues_count():
    """p10, nlz(x) == nlz(y) written as (x ^ y) <=u (x & y), is eq(clz(x), clz(y)) (Z3
    proves it); with LZCNT its lowering is two lzcnt and a compare, and the search reaches
    the issue's gcc -march=haswell count, 6 (7 before: gcc's own on our C view)."""
    found = reformulations(hd.p10)
    assert [f.expression for f in found] == ["eq(clz(x), clz(y))"]
    assert equivalent(hd.p10, found[0].routine, timeout_ms=60_000).equivalent
    result = evolve(hd.p10, TARGETS["x86-64 Haswell"], budget_s=90, seed=1, stop_at=6,
                    clock=time.process_time)
    assert result.instructions <= 6, result.text
    assert "lzcnt" in result.text
