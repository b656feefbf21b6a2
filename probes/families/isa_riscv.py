"""Instruction-set discovery candidates for riscv64 over the standard encodings.

R-type major opcodes are enumerated over funct3 x funct7 with rd=t0, rs1=a2
(the scratch pointer, so loads/stores/AMOs stay in scratch), rs2=t1; I-type
ones over funct3 with a zero immediate; plus all 16-bit compressed encodings of
quadrants 0-2 with fixed register fields.  Wrapped as candidate + `ret`.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

from arch import RISCV64
from probes.families.candidate import Candidate

# Major opcodes (RISC-V unprivileged spec, table "RISC-V base opcode map").
R_TYPE = {"op": 0x33, "op-32": 0x3B, "amo": 0x2F, "op-fp": 0x53, "op-v": 0x57}
I_TYPE = {"load": 0x03, "load-fp": 0x07, "misc-mem": 0x0F, "op-imm": 0x13, "op-imm-32": 0x1B}
# The candidates are bit patterns over the encoding space, which no assembler
# writes: they are built from the fields.  Registers: t0 (x5), t1 (x6), a2 (x12).
T0, T1, A2 = 5, 6, 12


@cache
def _ret() -> bytes:
    return RISCV64.assemble("ret", extensions="rv64g")


def _candidate(encoding: bytes, space: str) -> Candidate:
    insn = next(RISCV64.disassembler.disasm(encoding, 0, 1), None)
    if insn is None:
        return Candidate(encoding, space, None, None)
    return Candidate.decoded(encoding, space, insn)


def candidates() -> Iterator[Candidate]:
    for name, opcode in R_TYPE.items():
        for funct7 in range(128):
            for funct3 in range(8):
                word = ((funct7 << 25) | (T1 << 20) | (A2 << 15) | (funct3 << 12) | (T0 << 7)
                        | opcode)
                yield _candidate(word.to_bytes(4, "little"), name)
    for name, opcode in I_TYPE.items():
        for funct3 in range(8):
            word = (A2 << 15) | (funct3 << 12) | (T0 << 7) | opcode
            yield _candidate(word.to_bytes(4, "little"), name)
    for quadrant in range(3):
        for funct3 in range(8):
            for middle in range(0, 1 << 11, 1 << 5):  # rd/rs fields, imm bits varied coarsely
                half = (funct3 << 13) | middle | (0x8 << 2) | quadrant
                yield _candidate(half.to_bytes(2, "little"), f"c.q{quadrant}")


def wrap(candidate: Candidate) -> bytes:
    return candidate.encoding + _ret()
