"""Proven programs read back as routines and lowered for the other ISA (evolution/lift.py):
the lifted routine is the routine (Z3 equivalence, sem/z3sem.py), and a translation is a
program the other ISA's prover proves and Unicorn runs like the interpreter."""

from __future__ import annotations

import pytest

from evolution.check import unicorn_cannot, unicorn_check
from evolution.lift import lift, translate
from evolution.program import assemble, parse
from evolution.proof import prove
from evolution.registry import ISAS
from evolution.starts import starts
from evolution.testset import machine_vectors
from sem import ir
from sem.ir import Node, Routine
from sem.library import hackers_delight as hd
from sem.library import sorting
from sem.z3sem import equivalent

X86 = ISAS["x86_64"]
RV = ISAS["riscv64"]
HASWELL = frozenset({"bmi1", "bmi2", "lzcnt", "popcnt"})
NOZB = frozenset({"m"})
ZBB = frozenset({"m", "zbb"})
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
    if unicorn_cannot(isa, program):  # Zb* code: Unicorn lacks it, Z3's proof stands
        return
    code = assemble(isa, program, features)
    assert not unicorn_check(isa, spec, code, machine_vectors(isa, spec, 300, 7))


@pytest.mark.parametrize("source, spec, text, target, features, most", [
    # rv64's popcount is Haswell's popcnt (its own lowering of p23 is 36 instructions)
    (RV, hd.p23, "cpopw a0, a0\nret", X86, HASWELL, 3),
    # x86's high product is riscv64's multiply and shift (its lowering adds partial
    # products: 25 instructions)
    (X86, hd.p25, "mov eax, edi\nmul esi\nmov eax, edx\nret", RV, NOZB, 8),
    # riscv64's W forms: 32-bit arithmetic that leaves no extension to do before the return
    (X86, hd.p01, "lea eax, [rdi - 1]\nand eax, edi\nret", RV, NOZB, 3),
    (X86, hd.p03, "imul eax, edi, -1\nand eax, edi\nret", RV, NOZB, 3),
    # x86's signed less-than (SF xor OF after cmp) is Zbb's max; riscv64's max, which
    # compares sign-extended registers, is x86's cmp and cmovl on the 32-bit values
    (X86, hd.p16, "cmp edi, esi\ncmovl edi, esi\nmov eax, edi\nret", RV, ZBB, 2),
    (RV, hd.p16, "max a0, a0, a1\nret", X86, frozenset(), 4),
    (X86, hd.p22, "popcnt eax, edi\nand eax, 1\nret", RV, ZBB, 3),
    # gcc's: x86's cmovge is a select with its values swapped; riscv's `and a0, a0, a5`
    # commuted on x86 computes into the register the result is copied from, then into eax;
    # riscv's complement (xori -1), unsigned compare of sign-extended values and its
    # negation (xori 1) are x86's not, cmp and setbe on the 32-bit values
    (X86, hd.p16, "cmp edi, esi\nmov eax, esi\ncmovge eax, edi\nret", RV, ZBB, 2),
    (RV, hd.p02, "addiw a5, a0, 1\nand a0, a0, a5\naddiw a0, a0, 0\nret", X86, frozenset(), 3),
    (RV, hd.p12, "xori a5, a0, -1\nand a5, a5, a1\nsltu a0, a0, a5\nxori a0, a0, 1\n"
                 "addiw a0, a0, 0\nret", X86, frozenset(), 7),
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


@pytest.mark.parametrize("isa, spec, text", [
    (X86, hd.p16, "cmp edi, esi\ncmovl edi, esi\nmov eax, edi\nret"),
    (RV, hd.p16, "max a0, a0, a1\nret"),
    (X86, hd.p03, "imul eax, edi, -1\nand eax, edi\nret"),
], ids=["x86 cmovl", "riscv max", "x86 imul -1"])
def test_a_program_lifts_to_the_formulation_of_the_library(isa, spec, text):
    """x86's flags after `cmp` read as the signed less-than they are, riscv's comparison of
    sign-extended registers as the 32-bit one, a product with -1 as a negation: the lifted
    routine is the library's own (sem/library/hackers_delight.py), term for term."""
    from sem.canon import canonicalize

    lifted = lift(isa, spec, parse(isa, text))
    assert canonicalize(lifted).text == canonicalize(spec).text


@pytest.mark.parametrize("build, narrowed", [
    (lambda x: ir.slt(ir.sext(x, 64), ir.const((1 << 64) - 5, 64)), True),  # against -5
    (lambda x: ir.ult(ir.sext(x, 64), ir.const((1 << 64) - 5, 64)), True),
    (lambda x: ir.slt(ir.zext(x, 64), ir.const(7, 64)), True),
    (lambda x: ir.sle(ir.zext(x, 64), ir.const(1 << 40, 64)), False),  # no 32-bit constant
    (lambda x: ir.ult(ir.sext(x, 64), ir.const(1 << 31, 64)), False),  # not sign-extended
    (lambda x: ir.build("eq", ir.zext(x, 64), ir.sext(x, 64)), False),  # extended unlike
])
def test_narrowed_comparisons_are_the_comparisons(build, narrowed):
    """A comparison of values extended alike from 32 bits becomes the comparison of the
    32-bit values, and equals the original at every input (Z3); others are kept."""
    from evolution.lift import _simplify

    x = Node("param", 32, (), 0)
    original = build(x)
    simplified = _simplify(Node(original.op, 1, original.args))
    assert all(a.width == 32 for a in simplified.args) == narrowed
    _same_at_every_input(original, simplified)


def _same_at_every_input(original, simplified):
    def routine(n):
        return Routine((ir.bv32, ir.bv32), n if n.width > 1 else ir.zext(n, 8), None)

    verdict = equivalent(routine(original), routine(simplified))
    assert verdict.equivalent, verdict.detail


def _rewritten(op, width, *args):
    from evolution.lift import _simplify

    return _simplify(Node(op, width, args))


X, Y = Node("param", 32, (), 0), Node("param", 32, (), 1)
SIGN = ir.trunc(ir.lshr(X - Y, 31), 1)  # SF after x86's cmp x, y: one node, read twice


@pytest.mark.parametrize("op, width, args, becomes", [
    ("not", 1, (ir.ult(X, Y),), "ule"),  # x >= y is y <= x
    ("not", 1, (ir.slt(X, Y),), "sle"),
    ("not", 1, (Node("eq", 1, (X, Y)),), "ne"),
    ("not", 64, (ir.sext(X, 64),), "sext"),  # ~sext(x) is sext(~x)
    ("xor", 64, (ir.const((1 << 64) - 1, 64), ir.sext(X, 64)), "sext"),  # riscv's xori -1
    ("xor", 32, (ir.const(1, 32), ir.zext(ir.ult(X, Y), 32)), "zext"),  # sltu; xori 1
    ("ult", 1, (ir.sext(X, 64) - ir.sext(Y, 64), ir.const(1, 64)), "eq"),  # sub; sltiu 1
    ("sub", 32, (ir.const(0, 32), X), "neg"),  # riscv's subw a1, zero, a0
    ("and", 64, (ir.sext(X, 64), ir.sext(Y, 64)), "sext"),  # bitwise on values extended alike
    ("select", 32, (Node("not", 1, (ir.slt(X, Y),)), X, Y), "select"),  # x86's cmovge
    ("xor", 1, (SIGN, SIGN ^ ir.slt(X, Y)), "slt"),  # cmovl's SF xor OF, OF being SF ^ slt
])
def test_each_rewrite_of_the_simplifier_is_the_expression_it_replaces(op, width, args, becomes):
    """The simplifier's rewrites for what a lifted program says its ISA's way, each equal
    to the expression it replaces at every input (Z3), and of the shape expected."""
    original = Node(op, width, args)
    simplified = _rewritten(op, width, *args)
    assert simplified.op == becomes
    _same_at_every_input(original, simplified)


@pytest.mark.parametrize("isa, features", [(X86, frozenset()), (RV, NOZB)],
                         ids=["x86_64", "riscv64"])
def test_gcc_code_lifted_is_the_routine_for_every_input(isa, features):
    """gcc -O3's code for p01-p24 (p20 aside: its division by the lowest bit is a loop),
    code we did not write, read back as a routine and simplified: Z3 finds no input where
    it differs from the library's routine."""
    from evolution.gcc import GccCodeUnusable, as_start, compile_c

    wrong, lifted = [], 0
    for spec in ROUTINES[:24]:
        try:
            start = as_start(isa, compile_c(isa, spec, features))
        except GccCodeUnusable:
            continue
        if start is None:  # branches: no straight-line program to read back
            continue
        lifted += 1
        verdict = equivalent(spec, lift(isa, spec, start.program))
        if not verdict.equivalent:
            wrong.append(f"{spec.hint_name}: {verdict.detail} at {verdict.counterexample}")
    assert lifted >= 20 and not wrong, (lifted, wrong)
