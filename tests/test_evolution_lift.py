"""Proven programs read back as routines and lowered for the other ISA (evolution/lift.py):
the lifted routine is the routine (Z3 equivalence, sem/z3sem.py), and a translation is a
program the other ISA's prover proves and Unicorn runs like the interpreter."""

from __future__ import annotations

import pytest

from evolution.check import unicorn_check
from evolution.lift import lift, translate
from evolution.program import assemble, parse
from evolution.proof import prove
from evolution.registry import ISAS
from evolution.starts import starts
from evolution.testset import machine_vectors
from sem.library import hackers_delight as hd
from sem.library import sorting
from sem.z3sem import equivalent

X86 = ISAS["x86_64"]
RV = ISAS["riscv64"]
HASWELL = frozenset({"bmi1", "bmi2", "lzcnt", "popcnt"})
NOZB = frozenset({"m"})
ROUTINES = [getattr(hd, f"p{i:02d}") for i in range(1, 26)]


@pytest.mark.parametrize("isa, features", [(X86, frozenset()), (RV, NOZB)],
                         ids=["x86_64", "riscv64"])
def test_a_lifted_start_is_the_routine_for_every_input(isa, features):
    """Every hackers' delight start (the lowering: narrow arguments, junk above them on
    x86-64, sign extension on riscv64, scratch registers, flags) read back as a routine:
    Z3 finds no input where it differs from the library's routine."""
    wrong = []
    for spec in ROUTINES:
        # the routine's own starts; a reformulation's (reformulate.py: p25 as mulhu) is
        # proven against the routine through evolution's integer reading, which this IR
        # check, bit-blasting products, cannot do in a minute
        own = [s for s in starts(isa, spec, features) if not s.name.startswith("lowering of ")]
        program = min(own, key=lambda s: s.program.instructions).program
        verdict = equivalent(spec, lift(isa, spec, program))
        if not verdict.equivalent:
            wrong.append(f"{spec.hint_name}: {verdict.detail} at {verdict.counterexample}")
    assert not wrong, "\n".join(wrong)


def _proven_and_run(isa, spec, program, features):
    assert prove(isa, spec, program).proven
    code = assemble(isa, program, features)
    assert not unicorn_check(isa, spec, code, machine_vectors(isa, spec, 300, 7))


@pytest.mark.parametrize("source, spec, text, target, features, most", [
    # rv64's popcount is Haswell's popcnt (its own lowering of p23 is 36 instructions)
    (RV, hd.p23, "cpopw a0, a0\nret", X86, HASWELL, 3),
    # x86's high product is riscv64's multiply and shift (its lowering adds partial
    # products: 25 instructions)
    (X86, hd.p25, "mov eax, edi\nmul esi\nmov eax, edx\nret", RV, NOZB, 8),
    (X86, hd.p01, "lea eax, [rdi - 1]\nand eax, edi\nret", RV, NOZB, 4),
])
def test_a_program_found_on_one_isa_translates_into_a_short_proven_program_on_the_other(
        source, spec, text, target, features, most):
    program = parse(source, text)
    assert prove(source, spec, program).proven
    found = translate(source, spec, program, target, features)
    assert found is not None and found.program.instructions <= most
    own = min(s.program.instructions for s in starts(target, spec, features))
    assert found.program.instructions < own
    _proven_and_run(target, spec, found.program, features)


def test_a_translation_uses_only_what_the_board_has():
    """rv64's cpopw for p23 on qemu64 (no POPCNT): no popcnt in it, or no translation."""
    program = parse(RV, "cpopw a0, a0\nret")
    found = translate(RV, hd.p23, program, X86, frozenset())
    assert found is None or all(i.form != "popcnt" and "popcnt" not in i.form
                                for i in found.program.insns)


def test_routines_in_memory_are_not_translated():
    network = next(s.program for s in starts(X86, sorting.sort3, frozenset())
                   if s.name == "sorting network")
    assert translate(X86, sorting.sort3, network, RV, NOZB) is None


def test_a_copy_into_the_result_register_is_taken_out_by_renaming_its_source():
    """`mov eax, esi` before the return: esi named eax before it, the copy goes; Z3
    proves the shorter program, and the copy propagation forwards cannot do it (the
    result must end in eax)."""
    from evolution.copies import renamed_back, rewrites, right
    from evolution.search import space
    from evolution.testset import TestSet

    program = parse(X86, "mov esi, edi\nsub esi, 1\nand esi, edi\nmov eax, esi\nret")
    s = space(X86, hd.p01, frozenset())
    tests = TestSet(X86, hd.p01, machine_vectors(X86, hd.p01, 32, 0), s.write_registers)
    assert not right(X86, tests, rewrites(X86, s, program))
    found = right(X86, tests, renamed_back(X86, s, program))
    assert found and all(p.instructions == 4 for p in found)
    assert all(prove(X86, hd.p01, p).proven for p in found)
