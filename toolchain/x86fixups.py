"""Repairs for one keystone 0.9.2 defect in 16-bit code: it gives `ret`,
`retf`, `ret N`, `push imm`, `call rel` and `jmp/jcc rel` an operand-size prefix
(0x66) the source never asked for, so `call`/`ret` push and pop 32-bit return
addresses and `push 0x10` pushes four bytes.  Each repair yields the encoding
of the same instruction at the 16-bit default size; the capstone check then
judges the repaired bytes like any others.  Anything else with an unasked-for
0x66 is left alone and reported by the check."""

from __future__ import annotations

from toolchain.capcheck import asks_for_size_override

_PREFIX = 0x66
_STRIP = {0xC3, 0xCB, 0xC2, 0xCA, 0x6A}  # ret, retf, ret imm16, retf imm16, push imm8
_PUSH_IMM, _CALL_REL, _JMP_REL, _TWO_BYTE, _JCC_REL = 0x68, 0xE8, 0xE9, 0x0F, range(0x80, 0x90)


def _rel16(target: int, next_ip: int) -> bytes:
    return ((target - next_ip) & 0xFFFF).to_bytes(2, "little")


def repair_16bit(code: bytes, address: int, mnemonic: str, words: frozenset[str]) -> bytes:
    """`code` without keystone's spurious 0x66 prefix, re-encoded at 16 bits."""
    if len(code) < 2 or code[0] != _PREFIX or asks_for_size_override(16, mnemonic, set(words)):
        return code
    opcode = code[1]
    if opcode in _STRIP:
        return code[1:]
    if opcode == _PUSH_IMM and len(code) == 6:
        value = int.from_bytes(code[2:], "little", signed=True)
        if -0x8000 <= value <= 0xFFFF:
            return bytes([_PUSH_IMM]) + (value & 0xFFFF).to_bytes(2, "little")
        return code
    if opcode in (_CALL_REL, _JMP_REL) and len(code) == 6:
        target = address + 6 + int.from_bytes(code[2:], "little", signed=True)
        return bytes([opcode]) + _rel16(target, address + 3)
    if opcode == _TWO_BYTE and len(code) == 7 and code[2] in _JCC_REL:
        target = address + 7 + int.from_bytes(code[3:], "little", signed=True)
        return code[1:3] + _rel16(target, address + 4)
    return code
