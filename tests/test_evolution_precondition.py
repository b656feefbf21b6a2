"""Evolution under a routine's precondition (p20: x != 0, where the reference C divides
by x & -x): the machine proof accepts a program that differs from the routine only
outside the domain and refutes one wrong inside it with a counterexample inside it;
machine vectors stay inside; the rewrite to a division is offered where the
precondition allows it; the market's artifacts carry it; and RISC-V's unsigned
division forms, now the IR's udiv/urem, agree with Unicorn at zero divisors and
the signed overflow."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from arch import RISCV64
from evolution import evaluator, validate
from evolution.check import unicorn_check
from evolution.codegen import CHUNK
from evolution.program import Insn, MachineProgram, assemble, parse
from evolution.proof import prove
from evolution.reformulate import rewritten
from evolution.registry import ISAS
from evolution.semantics import compose
from evolution.starts import starts
from evolution.testset import machine_vectors, place
from market.proofs import check_artifact, make_artifact
from sem import interp
from sem.canon import routine_id
from sem.ir import Routine
from sem.library import hackers_delight as hd
from sem.unicorn_check import RoutineEmulator
from sem.z3sem import equivalent

RV = ISAS["riscv64"]
NO_ZB = frozenset({"m"})
# Hacker's Delight's snoob as gcc -O3 -march=rv64gc writes it: divided by x & -x
DIVUW = """sub a1, zero, a0
and a2, a0, a1
add a1, a0, a2
xor a3, a0, a1
srliw a0, a3, 2
divuw a3, a0, a2
or a0, a1, a3
addiw a0, a0, 0
ret
"""
M = 0xFFFFFFFF


def snoob(x: int) -> int:
    """The textbook definition (Hacker's Delight 2-1), for x != 0."""
    smallest = x & -x
    ripple = (x + smallest) & M
    return ripple | (((x ^ ripple) >> 2) // smallest)


def _run(source: str, x: int) -> int:
    code = assemble(RV, parse(RV, source), NO_ZB)
    result, _ = RoutineEmulator(RISCV64, code).call((x,), None)
    return result & M


def _unbounded(r: Routine) -> Routine:
    return Routine(r.params, r.result, r.memory, None, hint_name=r.hint_name)


def test_the_division_differs_from_the_routine_at_zero_only_and_is_proven_inside_the_domain():
    for x in (1, 2, 3, 0x7F, 0x80000000, 0x7FFFFFFF, 0xFFFF0000, 12345678):
        assert _run(DIVUW, x) == snoob(x)
    assert _run(DIVUW, 0) == M  # divuw by zero: all ones, where our routine gives 0
    proof = prove(RV, hd.p20, parse(RV, DIVUW))
    assert proof.proven and "inputs in its domain" in proof.detail
    # without the precondition the same program is wrong, at 0 and only there
    refuted = prove(RV, _unbounded(hd.p20), parse(RV, DIVUW))
    assert not refuted.proven and refuted.counterexample.args == (0,)


def test_a_program_wrong_inside_the_domain_is_refuted_there():
    wrong = DIVUW.replace("srliw a0, a3, 2", "srliw a0, a3, 1")
    proof = prove(RV, hd.p20, parse(RV, wrong))
    assert not proof.proven
    (x,) = proof.counterexample.args
    assert x != 0 and _run(wrong, x) != snoob(x)


def test_the_machine_check_passes_over_inputs_outside_the_domain_only():
    """evolution/check.py in Unicorn: x = 0 among the vectors makes no mismatch for p20,
    and one for the same routine without its precondition."""
    rng = random.Random(3)
    vectors = [place(RV, hd.p20, (x,), rng) for x in (0, 1, 0x80, 0xFFFF0000)]
    code = assemble(RV, parse(RV, DIVUW), NO_ZB)
    assert unicorn_check(RV, hd.p20, code, vectors) == []
    (mismatch,) = unicorn_check(RV, _unbounded(hd.p20), code, vectors)
    assert mismatch.vector.args == (0,)


def test_machine_vectors_stay_inside_the_domain():
    vectors = machine_vectors(RV, hd.p20, 3000, seed=9)
    assert all(v.args[0] != 0 for v in vectors)
    assert all(v.registers[RV.number("a0")] != 0 for v in vectors)


def test_the_shift_by_ctz_becomes_a_division_only_where_the_precondition_allows():
    (found,) = rewritten(hd.p20)
    assert any(n.op == "udiv" for n in _nodes(found.routine.result))
    assert not any(n.op == "ctz" for n in _nodes(found.routine.result))
    assert found.routine.requires is hd.p20.requires
    assert equivalent(hd.p20, found.routine).equivalent  # Z3, inside the domain
    assert rewritten(_unbounded(hd.p20)) == []  # at x = 0 the two differ
    assert rewritten(hd.p01) == []


def test_riscv_without_zbb_starts_from_the_division():
    offered = {s.name: s.program.instructions for s in starts(RV, hd.p20, NO_ZB)}
    division = [n for n in offered if "udiv" in n]
    assert division and offered[division[0]] <= 9 < min(
        v for n, v in offered.items() if n not in division)


def test_an_artifact_carries_the_precondition_and_its_checker_respects_it():
    program = parse(RV, DIVUW)
    code = assemble(RV, program, NO_ZB)
    artifact = make_artifact(RV, hd.p20, program)
    assert artifact["routine"] == routine_id(hd.p20) and " req=" in artifact["canonical"]
    assert check_artifact(artifact, code, NO_ZB).ok
    forged = make_artifact(RV, _unbounded(hd.p20), program)  # the routine without it
    verdict = check_artifact(forged, code, NO_ZB)
    assert not verdict.ok and "satisfiable" in verdict.detail


def _nodes(root):
    seen, stack, out = set(), [root], []
    while stack:
        n = stack.pop()
        if id(n) not in seen:
            seen.add(id(n))
            out.append(n)
            stack.extend(n.args)
    return out


DIVIDES = ("divu", "remu", "divuw", "remuw", "div", "rem", "divw", "remw")
OPERANDS = (0, 1, 2, 3, 7, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000,
            0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF, 0xFFFFFFFF80000000,
            0x123456789ABCDEF0)


def division_cases(isa, seed: int = 0) -> list:
    """Every division form on every pair of edge operands (zero divisors, the most negative
    value by -1, both in 32 and 64 bits): rd = a0, rs1 = a1, rs2 = a2."""
    rd, rs1, rs2 = (isa.number(r) for r in ("a0", "a1", "a2"))
    states = []
    for name, (a, b) in itertools.product(DIVIDES, itertools.product(OPERANDS, repeat=2)):
        registers = [0] * len(isa.registers)
        registers[rs1], registers[rs2] = a, b
        states.append((Insn(f"{name} r, r, r", (rd, rs1, rs2)), registers))
    bodies = isa.assemble_each([f"{i.form.split()[0]} a0, a1, a2" for i, _ in states],
                               frozenset(isa.features))
    return [validate.case(isa, insn, registers, [], bytes(validate.WINDOW), body)
            for (insn, registers), body in zip(states, bodies, strict=True)]


def test_the_division_forms_agree_with_unicorn_at_zero_divisors_and_overflow():
    batch = division_cases(RV)
    assert len(batch) == len(DIVIDES) * len(OPERANDS) ** 2
    failures = validate.run_unicorn(RV, batch)
    assert not failures, [f"{d.case.insn.form} {d.detail}" for d in failures[:5]]


@pytest.mark.qemu
@pytest.mark.timeout(300)
def test_the_division_forms_agree_with_the_rv64_guest():
    """The same cases in our riscv64 guest (QEMU's TCG, the machine itself)."""
    from kernel.guest import build_guest
    from link.qemu_link import QemuLink
    from qemu.boards import board

    with QemuLink(board("virt", accel="tcg"), build_guest(RV.arch)) as link:
        failures = validate.run_on_link(link, division_cases(RV))
    assert not failures, [f"{d.case.insn.form} {d.detail}" for d in failures[:5]]


def test_the_evaluator_divides_as_the_semantics_say_at_zero_divisors():
    """The generated kernels' udiv/urem (x / 0 all ones, x % 0 = x), every division form,
    on lanes of edge operand pairs, against the interpreter reading the form's IR."""
    rd, rs1, rs2 = (RV.number(r) for r in ("a0", "a1", "a2"))
    pairs = list(itertools.product(OPERANDS, repeat=2))
    for name in DIVIDES:
        program = MachineProgram(RV.name, (Insn(f"{name} r, r, r", (rd, rs1, rs2)),))
        comp = compose(RV, program)
        for start in range(0, len(pairs), CHUNK):
            chunk = (pairs[start:start + CHUNK] * CHUNK)[:CHUNK]
            R0 = np.zeros((1, len(RV.registers), CHUNK), dtype=np.uint64)
            R0[0, rs1, :] = [a for a, _ in chunk]
            R0[0, rs2, :] = [b for _, b in chunk]
            F0 = np.zeros((1, 1, CHUNK), dtype=np.uint8)
            M0 = np.zeros((1, CHUNK, 8), dtype=np.uint8)
            U = np.zeros((1, CHUNK), dtype=np.uint64)
            final = evaluator.run(RV, program, R0, F0, M0, U)
            for lane, (a, b) in enumerate(chunk):
                regs = [int(x) for x in R0[0, :, lane]]
                want = interp.run(comp.routine(comp.registers[rd]),
                                  comp.inputs(regs, [], 0)).result
                assert int(final.registers[rd, lane]) == want, (name, hex(a), hex(b))
