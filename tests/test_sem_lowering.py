"""Lowered machine code agrees with the reference interpreter in Unicorn.

Every starter routine on both architectures over >= 1,000 vectors (edge cases
plus random), and every operation at every width through small routines, so
the templates the starter library does not reach are held to the same oracle."""

import pytest
from sem_small_routines import SMALL

from arch import ARCHES
from sem.ir import Routine
from sem.library import hackers_delight, sorting
from sem.lower import lower_for
from sem.unicorn_check import check
from sem.vectors import edges

STARTER = [getattr(hackers_delight, n) for n in hackers_delight.__all__] + [
    sorting.sort3, sorting.sort4, sorting.sort5]
def _vet(r: Routine, arch: str, count: int) -> None:
    code = arch.assemble(lower_for(arch)(r).text)
    report = check(r, arch, code, count=count)
    assert report.vectors >= count
    assert report.ok, f"{arch}: first mismatch {report.mismatches[0]}"


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("r", STARTER, ids=lambda r: r.hint_name)
def test_starter_routine_matches_interpreter(r, arch):
    _vet(r, arch, 1000)


@pytest.mark.parametrize("arch", ARCHES)
def test_every_operation_at_every_width_matches_interpreter(arch):
    failures = []
    for label, r in SMALL:
        code = arch.assemble(lower_for(arch)(r).text)
        report = check(r, arch, code, count=150)
        if not report.ok:
            failures.append((label, report.mismatches[0]))
    assert not failures, failures[:5]


@pytest.mark.parametrize("w", (8, 16, 32, 64))
def test_x86_parity_without_popcnt_goes_through_the_parity_flag(w):
    """popcount(x) & 1 on a board without popcnt: the fold and setnp (gcc's
    __builtin_parity), checked in Unicorn against Python's own count of ones, with the
    bits above a narrow argument set (System V leaves them undefined); with popcnt it is
    popcnt again.  The same popcount also used whole is computed, not folded."""
    from arch import X86_64
    from sem import ir
    from sem.ir import Node, bv8, bv16, bv32, bv64
    from sem.unicorn_check import RoutineEmulator

    t = {8: bv8, 16: bv16, 32: bv32, 64: bv64}[w]
    x = Node("param", w, (), 0)
    parity = Routine((t,), ir.popcount(x) & 1, None)
    lower = lower_for(X86_64)
    text = lower(parity).text
    assert "popcnt" not in text and "setnp" in text
    assert "popcnt" in lower(parity, frozenset({"popcnt"})).text
    both = Routine((t,), ir.popcount(x) + (ir.popcount(x) & 1), None)
    assert "popcnt" in lower(both).text
    emulator = RoutineEmulator(X86_64, X86_64.assemble(text))
    mask = (1 << w) - 1
    values = range(1 << w) if w <= 16 else [*edges(w), *range(0, mask, mask // 3001)]
    for i, value in enumerate(values):
        garbage = (0x9E3779B97F4A7C15 * (i + 1)) & ~mask & ((1 << 64) - 1)
        got, _ = emulator.call((value | garbage,), None)
        assert got & mask == bin(value).count("1") & 1, hex(value)


def test_x86_bit_counts_with_lzcnt_and_bmi1_match_interpreter():
    """With "lzcnt" and "bmi1" clz and ctz are lzcnt and tzcnt, the narrow widths adjusted
    (zero counts as the width): every width against the interpreter in Unicorn."""
    from arch import X86_64

    extensions = frozenset({"lzcnt", "bmi1", "popcnt"})
    failures = []
    for label, r in SMALL:
        if not label.startswith(("clz", "ctz", "popcount")):
            continue
        text = lower_for(X86_64)(r, extensions).text
        assert ("lzcnt" if label.startswith("clz") else
                "tzcnt" if label.startswith("ctz") else "popcnt") in text, text
        report = check(r, X86_64, X86_64.assemble(text), count=300)
        if not report.ok:
            failures.append((label, report.mismatches[0]))
    assert not failures, failures[:5]


@pytest.mark.parametrize("op", ["add", "and", "or", "xor"])
@pytest.mark.parametrize("width", [32, 64])
def test_riscv_a_constant_operand_either_side_is_the_immediate(op, width):
    """`c op x` with a 12-bit c, the constant first as the lift's simplifier writes it: one
    immediate instruction (addi, andi...), no `li` of the constant, and right in Unicorn."""
    from arch import RISCV64
    from sem import ir
    from sem.ir import Node

    x = Node("param", width, (), 0)
    r = Routine(({32: ir.bv32, 64: ir.bv64}[width],), Node(op, width, (ir.const(5, width), x)),
                None)
    text = lower_for(RISCV64)(r).text
    assert f"{op}i " in text and "li " not in text, text
    report = check(r, RISCV64, RISCV64.assemble(text), count=300)
    assert report.ok, report.mismatches[0]
