"""Enumeration finds the known-optimal short programs (Hacker's Delight's), and what it
returns Z3 proves at full width; the peephole shortens a correct program; what an
instruction reads and writes is what its semantics say."""

from __future__ import annotations

import numpy as np
import pytest

from evolution.check import unicorn_check
from evolution.copies import recomputed, result_coalesced, result_copy_hoisted, rewrites, right
from evolution.enumeration import FLAGS_BIT, Enumerator, liveness, masks, peephole, shortest
from evolution.evaluator import kernels
from evolution.program import assemble, encode, parse, text
from evolution.proof import prove
from evolution.registry import ISAS
from evolution.search import space
from evolution.starts import starts
from evolution.targets import TARGETS
from evolution.testset import TestSet, machine_vectors
from sem.library import hackers_delight as hd

LIMIT = 20_000_000


def _setup(target_name: str, spec, scratch: int | None = 1):
    target = TARGETS[target_name]
    isa = ISAS[target.isa]
    full = space(isa, spec, target.features, avoid=target.avoid)
    testset = TestSet(isa, spec, machine_vectors(isa, spec, 32, 3), full.write_registers)
    narrow = full if scratch is None else space(isa, spec, target.features, scratch=scratch,
                                                avoid=target.avoid)
    return isa, Enumerator.build(isa, narrow), testset


def _proven_shortest(target_name: str, spec, longest: int):
    """The enumeration's shortest programs, counterexamples fed back until one is proven
    (the loop evolve runs)."""
    isa, e, testset = _setup(target_name, spec)
    for _ in range(10):
        found, _ = shortest(e, testset, len(spec.params), longest, LIMIT)
        assert found, "the enumeration found nothing right on the vectors"
        for program in found:
            proof = prove(isa, spec, program)
            if proof.proven:
                return isa, program
            assert proof.counterexample is not None
            testset.add(proof.counterexample)
    raise AssertionError("no enumerated program was proven")


# Hacker's Delight 2-1: x & (x - 1) turns off the rightmost 1-bit: two basic operations
# (no single RV64I or x86-64 base instruction does it), one BMI1 instruction (blsr).
@pytest.mark.parametrize("target, length", [
    ("x86-64 qemu64", 2), ("riscv64 rv64 without Zb*", 2), ("x86-64 Haswell", 1)])
def test_enumeration_finds_the_known_optimum_of_p01_proven_by_z3(target, length):
    isa, program = _proven_shortest(target, hd.p01, 3)
    assert len(program.insns) == length
    assert program.instructions == length + 1  # the return
    assert prove(isa, hd.p01, program).proven  # again, independently of the loop


def test_enumeration_finds_blsr_style_p03_with_bmi_and_two_instructions_without():
    """p03 isolates the rightmost 1-bit, x & -x: BMI1's blsi, or neg and and (two)."""
    _, with_bmi = _proven_shortest("x86-64 Haswell", hd.p03, 3)
    _, without = _proven_shortest("x86-64 qemu64", hd.p03, 3)
    assert [i.form.split()[0] for i in with_bmi.insns] == ["blsi"]
    assert len(without.insns) == 2


def test_peephole_shortens_our_lowering_and_the_result_is_proven():
    target = "x86-64 qemu64"
    isa, e, testset = _setup(target, hd.p01, scratch=None)
    start = min(starts(isa, hd.p01, TARGETS[target].features),
                key=lambda s: s.program.instructions).program
    for _ in range(10):
        found, _ = peephole(e, testset, start, 1, 4, 1, LIMIT)
        assert found
        assert all(len(p.insns) < len(start.insns) for p in found)
        proven = [p for p in found if prove(isa, hd.p01, p).proven]
        if proven:
            return
        for p in found:
            counterexample = prove(isa, hd.p01, p).counterexample
            assert counterexample is not None
            testset.add(counterexample)
    raise AssertionError("no shorter program was proven")


def test_read_and_write_masks_follow_the_semantics():
    isa = ISAS["x86_64"]
    rax, rdx, rdi, rsi = (isa.number(r) for r in ("rax", "rdx", "rdi", "rsi"))
    program = parse(isa, "mov eax, edi\nadd eax, esi\nsete al\nmul rsi\nret")
    reads, writes = masks(isa, encode(isa, program))
    assert reads[0] == 1 << rdi and writes[0] == 1 << rax  # flags untouched
    assert reads[1] == (1 << rax | 1 << rsi) and writes[1] == (1 << rax | FLAGS_BIT)
    # setcc writes the low byte only: it reads the register's other bits, and the flags
    assert reads[2] == (1 << rax | FLAGS_BIT) and writes[2] == 1 << rax
    # mul: rax implicit, rdx:rax written
    assert reads[3] == (1 << rax | 1 << rsi)
    assert writes[3] == (1 << rax | 1 << rdx | FLAGS_BIT)


@pytest.mark.parametrize("target, routine", [("x86-64 qemu64", hd.p23),
                                             ("riscv64 rv64 without Zb*", hd.p21)])
def test_copies_taken_out_of_our_lowering_are_proven_shorter(target, routine):
    """Our lowering copies values between registers (x86 `mov r8d, edi`, riscv `addiw t4,
    a0, 0`); a copy taken out leaves a program one instruction shorter that Z3 proves."""
    isa, _, testset = _setup(target, routine, scratch=None)
    t = TARGETS[target]
    start = min(starts(isa, routine, t.features), key=lambda s: s.program.instructions).program
    candidates = rewrites(isa, space(isa, routine, t.features, avoid=t.avoid), start)
    assert candidates and all(len(p.insns) == len(start.insns) - 1 for p in candidates)
    kept = right(isa, testset, candidates)
    assert kept
    assert prove(isa, routine, kept[0]).proven
    # and what the vectors refuse is wrong: Z3 finds a counterexample
    refused = [p for p in candidates if p not in kept]
    assert refused
    assert prove(isa, routine, refused[0]).counterexample is not None


def test_a_constant_built_again_is_taken_out_and_the_result_is_proven():
    """Our riscv lowering of p23 builds 0x33333333 twice (lui, addiw); the second time
    goes, and Z3 proves the shorter program."""
    target = "riscv64 rv64 without Zb*"
    isa, _, testset = _setup(target, hd.p23, scratch=None)
    t = TARGETS[target]
    start = min(starts(isa, hd.p23, t.features), key=lambda s: s.program.instructions).program
    candidates = recomputed(isa, space(isa, hd.p23, t.features, avoid=t.avoid), testset, start)
    kept = [p for p in right(isa, testset, candidates) if len(p.insns) == len(start.insns) - 2]
    assert kept
    assert prove(isa, hd.p23, kept[0]).proven


def test_enumeration_finds_p25_as_one_widening_multiply_proven_by_z3():
    """p25, the high half of a 32x32-bit product, is `mul` (rdx:rax = eax * src) with the
    high half copied into eax: three instructions besides the return.  rdx, which only
    mul writes, must be readable, and the copy comes after a two-instruction search."""
    isa, program = _proven_shortest("x86-64 qemu64", hd.p25, 3)
    assert len(program.insns) == 3
    assert any(i.form == "mul r32" for i in program.insns)
    code = assemble(isa, program)
    vectors = machine_vectors(isa, hd.p25, 300, 11)
    assert unicorn_check(isa, hd.p25, code, vectors) == []  # the machine agrees


# p18's lowering zeroes registers with `xor esi, esi`, which reads esi as the instruction is
# written: only the other two read nothing but their arguments
@pytest.mark.parametrize("routine, only_arguments", [(hd.p18, False), (hd.p19, True),
                                                     (hd.p22, True)])
def test_liveness_names_only_what_changes_the_result(routine, only_arguments):
    """Before every instruction of our lowering, the bits liveness leaves out (registers,
    bits above a 32-bit read, flags) are randomised: the program's result stays the same on
    every vector; and at the start only argument registers are read (System V: a routine
    reads nothing else; flags may be: a shift by cl keeps them when cl is 0)."""
    target = TARGETS["x86-64 qemu64"]
    isa = ISAS[target.isa]
    start = min(starts(isa, routine, target.features), key=lambda s: s.program.instructions)
    rows = encode(isa, start.program)
    testset = TestSet(isa, routine, machine_vectors(isa, routine, 64, 5))
    result = isa.number(isa.abi.result)
    k = kernels(isa.name)
    rng = np.random.default_rng(1)
    for at in range(len(rows) + 1):
        live, bits, flags = liveness(isa, rows[at:], result, 0xFFFFFFFF)
        R, F, M, X = k.run_all(rows, at, testset.R0, testset.F0, testset.M0, testset.U)
        noise = rng.integers(0, 2**64, R.shape, dtype=np.uint64)
        keep = bits[None, :, None]
        R2 = (R & keep) | (noise & ~keep)
        F2 = rng.integers(0, 2, F.shape, dtype=np.uint8)
        F2[:, flags] = F[:, flags]
        suffix = rows[at:] if at < len(rows) else rows[:0]
        want = k.run_all(suffix, len(suffix), R, F, M, testset.U)[0][:, result] & 0xFFFFFFFF
        got = k.run_all(suffix, len(suffix), R2, F2, M, testset.U)[0][:, result] & 0xFFFFFFFF
        assert np.array_equal(want, got), f"the result depends on more than is live at {at}"
        if at == 0 and only_arguments:
            args = {isa.number(a) for a in isa.abi.args[: len(routine.params)]}
            assert set(np.flatnonzero(bits)) <= args
            assert live & ~FLAGS_BIT & ~sum(1 << a for a in args) == 0


def test_peephole_renames_what_the_rest_reads_and_the_result_is_proven():
    """Three-address code on a two-address machine: `mov edx, edi; and edx, ecx` is one
    instruction (`and ecx, edi`) once the rest reads ecx for edx.  Windows of two replaced
    by one instruction take this p01 from 5 instructions to 3 (lea, and, mov), each step
    proven; without renaming they stop at 4 (the lea alone; a window of two leaves no room
    for a copy back into edx)."""
    target = "x86-64 qemu64"
    isa, e, testset = _setup(target, hd.p01, scratch=None)
    program = parse(isa, "mov ecx, edi\nsub ecx, 1\nmov edx, edi\nand edx, ecx\n"
                         "mov eax, edx\nret")
    for _ in range(10):
        found, _ = peephole(e, testset, program, 1, 2, 1, LIMIT)
        if not found:
            break
        proofs = [(p, prove(isa, hd.p01, p)) for p in found]
        for counterexample in (proof.counterexample for _, proof in proofs):
            if counterexample is not None:
                testset.add(counterexample)
        proven = [p for p, proof in proofs if proof.proven]
        if proven:
            program = min(proven, key=lambda p: len(p.insns))
    assert len(program.insns) == 3
    assert prove(isa, hd.p01, program).proven


def test_the_last_copy_into_the_result_is_coalesced_and_the_result_is_proven():
    """`and edi, ecx; mov eax, edi` ends p01 in a copy; written `and ecx, edi` (and is
    commutative) with ecx the result register up to there, the copy goes: three
    instructions, which Z3 proves, where the vectors refuse the variant that keeps edi
    (the argument) as it is."""
    target = TARGETS["x86-64 qemu64"]
    isa = ISAS[target.isa]
    program = parse(isa, "mov ecx, edi\nsub ecx, 1\nand edi, ecx\nmov eax, edi\nret")
    s = space(isa, hd.p01, target.features)
    testset = TestSet(isa, hd.p01, machine_vectors(isa, hd.p01, 32, 3), s.write_registers)
    candidates = result_coalesced(isa, s, program)
    assert candidates and all(len(p.insns) == 3 for p in candidates)
    kept = right(isa, testset, candidates)
    assert len(kept) == 1
    assert prove(isa, hd.p01, kept[0]).proven
    refused = [p for p in candidates if p not in kept]
    assert refused and prove(isa, hd.p01, refused[0]).counterexample is not None


def test_the_last_copy_into_the_result_is_hoisted_beside_the_work_and_proven():
    """p16 (max) ending `cmovl edi, esi; mov eax, edi` waits for the move before the copy;
    hoisted, the copy takes edi before the move and the move writes eax: gcc's form, as
    many instructions, which Z3 proves.  Where the result register is touched between
    the source's last writer and the copy, nothing is offered."""
    target = TARGETS["x86-64 qemu64"]
    isa = ISAS[target.isa]
    s = space(isa, hd.p16, target.features)
    program = parse(isa, "cmp edi, esi\ncmovl edi, esi\nmov eax, edi\nret")
    (hoisted,) = result_copy_hoisted(isa, s, program)
    assert text(isa, hoisted).splitlines() == [
        "cmp edi, esi", "mov eax, edi", "cmovl eax, esi", "ret"]
    testset = TestSet(isa, hd.p16, machine_vectors(isa, hd.p16, 32, 3), s.write_registers)
    assert right(isa, testset, [hoisted]) == [hoisted]
    assert prove(isa, hd.p16, hoisted).proven
    touched = parse(isa, "cmp edi, esi\ncmovl edi, esi\nxor eax, eax\nmov eax, edi\nret")
    assert result_copy_hoisted(isa, s, touched) == []
