"""Compaction: as many instructions in fewer bytes, judged by keystone's encodings and Z3."""

from __future__ import annotations

from evolution.compaction import Sizes, smaller
from evolution.isa_riscv64 import RISCV64
from evolution.isa_x86_64 import X86_64
from evolution.program import assemble, parse
from evolution.proof import prove
from evolution.search import space
from evolution.testset import TestSet, machine_vectors
from sem.library import hackers_delight as hd

# p23 as the search once ended on it under KVM: gcc's shape, in r8 and with `lea`s, 73
# bytes (2.81 ticks a call against gcc's 60 bytes and 2.10)
P23 = """mov esi, edi
shr esi, 1
and esi, 1431655765
sub edi, esi
mov rsi, rdi
and edi, 858993459
shr esi, 2
and esi, 858993459
lea r8d, [rdi + rsi*1 + 0]
mov esi, r8d
shr esi, 4
add esi, r8d
and esi, 252645135
mov edi, esi
shr edi, 8
lea r8d, [rsi + rdi*1 + 0]
mov esi, r8d
shr esi, 16
lea edi, [r8 + rsi*1 + 0]
movzx eax, dil
ret
"""


def _testset(isa, spec):
    return TestSet(isa, spec, machine_vectors(isa, spec, 64, 1),
                   space(isa, spec, frozenset()).write_registers)


def test_p23_fits_a_cache_line_with_as_many_instructions_and_z3_proves_it_the_same():
    program = parse(X86_64, P23)
    assert len(assemble(X86_64, program)) == 73
    compact = smaller(X86_64, _testset(X86_64, hd.p23), program, Sizes(X86_64, frozenset()))
    assert compact is not None and compact.instructions == program.instructions
    assert len(assemble(X86_64, compact)) <= 64
    assert prove(X86_64, hd.p23, compact).proven


def test_a_temporary_in_r9_moves_to_a_register_without_a_rex_prefix():
    # p01, x & (x - 1): the argument edi is read first and eax is the result, so only the
    # temporary can move, and the vectors and Z3 judge where to
    program = parse(X86_64, "lea r9d, [rdi - 1]\nmov eax, edi\nand eax, r9d\nret\n")
    compact = smaller(X86_64, _testset(X86_64, hd.p01), program, Sizes(X86_64, frozenset()))
    assert compact is not None and compact.instructions == program.instructions
    assert len(assemble(X86_64, compact)) < len(assemble(X86_64, program))
    assert prove(X86_64, hd.p01, compact).proven


def test_riscv64_is_not_compacted_its_instructions_are_four_bytes_each():
    assert not RISCV64.variable_length and X86_64.variable_length


def test_a_byte_registers_second_byte_stays_in_rax_to_rbx():
    # p22 on qemu64 (the parity through PF): `xor al, ah` names a second byte, which only
    # rax-rbx have; a move naming another register's is not an instruction and is not taken
    program = parse(X86_64, "mov ecx, edi\nshr ecx, 16\nxor ecx, edi\nxor cl, ch\nsetnp cl\n"
                            "movzx eax, cl\nret\n")
    compact = smaller(X86_64, _testset(X86_64, hd.p22), program, Sizes(X86_64, frozenset()))
    result = program if compact is None else compact
    assert prove(X86_64, hd.p22, result).proven
    assert len(assemble(X86_64, result)) <= len(assemble(X86_64, program))
