"""The few RISC-V instruction encodings probe templates need (RV64 base + Zicsr)."""

from __future__ import annotations

ZERO, RA, SP, T0, T1, T2, A0, A1, A2, A3 = 0, 1, 2, 5, 6, 7, 10, 11, 12, 13


def i_type(opcode: int, rd: int, funct3: int, rs1: int, imm: int) -> int:
    return ((imm & 0xFFF) << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode


def s_type(opcode: int, funct3: int, rs1: int, rs2: int, imm: int) -> int:
    imm &= 0xFFF
    return ((imm >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (funct3 << 12) | ((imm & 0x1F) << 7) | opcode


def csrrs(rd: int, csr: int, rs1: int = ZERO) -> int:
    return i_type(0x73, rd, 2, rs1, csr)


def addi(rd: int, rs1: int, imm: int) -> int:
    return i_type(0x13, rd, 0, rs1, imm)


def sd(rs2: int, rs1: int, imm: int) -> int:
    return s_type(0x23, 3, rs1, rs2, imm)


def ret() -> int:
    return i_type(0x67, ZERO, 0, RA, 0)


def words(*insns: int) -> bytes:
    return b"".join(i.to_bytes(4, "little") for i in insns)
