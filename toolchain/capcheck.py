"""Second opinion on every instruction keystone encodes: capstone decodes the
bytes back and they must say what the source said.

keystone 0.9.2 has encoders that are silently wrong; the one we met is
`ljmp 0x8:0x100000` in 32-bit code, emitted as 66 EA 00 00 08 00 (a 16-bit far
jump to 8:0000).  Lengths agree, so we compare values: every number of the
source operands must be among the decoded operand values.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import capstone
import capstone.x86_const as x86

_MODES = {16: capstone.CS_MODE_16, 32: capstone.CS_MODE_32, 64: capstone.CS_MODE_64}
_CONDITIONS = {"z": "e", "nz": "ne", "c": "b", "nc": "ae", "nae": "b", "nb": "ae", "na": "be",
               "nbe": "a", "ng": "le", "nle": "g", "nl": "ge", "nge": "l", "pe": "p",
               "po": "np"}  # fmt: skip
# Spellings keystone accepts -> the one capstone prints.
_ALIASES = {"repz": "repe", "repnz": "repne", "movabs": "mov", "ljmp": "jmp", "lcall": "call",
            "lret": "retf", "sal": "shl"}  # fmt: skip
_SIZE_SUFFIXES = ("b", "w", "d", "q", "l")
_WIDTHS = (8, 16, 32, 64)
# Under fs/gs a rip-relative operand is not the absolute address the source named.
_BASE_SEGMENTS = (x86.X86_REG_FS, x86.X86_REG_GS)


@functools.cache
def _decoder(bits: int) -> capstone.Cs:
    decoder = capstone.Cs(capstone.CS_ARCH_X86, _MODES[bits])
    decoder.detail = True
    return decoder


def _canonical(mnemonic: str) -> str:
    words = []
    for word in mnemonic.lower().split():
        for head in ("cmov", "set", "j"):
            if word.startswith(head) and word[len(head) :] in _CONDITIONS:
                word = head + _CONDITIONS[word[len(head) :]]
                break
        words.append(_ALIASES.get(word, word))
    return " ".join(words)


def same_mnemonic(source: str, decoded: str) -> bool:
    """Whether capstone's `decoded` mnemonic is the instruction `source` names,
    allowing aliases (jz/je, sal/shl, mov/movabs) and an implied size suffix
    (pushf/pushfq, iret/iretd)."""
    a, b = _canonical(source), _canonical(decoded)
    if a == b:
        return True
    shorter, longer = sorted((a, b), key=len)
    return longer[: len(shorter)] == shorter and longer[len(shorter) :] in _SIZE_SUFFIXES


def _fits(value: int, width: int) -> bool:
    return -(1 << (width - 1)) <= value < (1 << width)


def value_present(value: int, decoded: Sequence[int]) -> bool:
    """Whether `value` is among `decoded` modulo some operand width that can hold it
    (so -1 matches 0xff, but 0x100000 never matches a truncated 0)."""
    return any(
        (value - candidate) % (1 << width) == 0
        for candidate in decoded
        for width in _WIDTHS
        if _fits(value, width)
    )


def decoded_values(instruction: capstone.CsInsn) -> list[int]:
    """Every number in a decoded instruction's operands: immediates (branch
    targets and far pointers included), displacements, and the absolute address a
    rip-relative operand designates."""
    values = []
    for operand in instruction.operands:
        if operand.type == x86.X86_OP_IMM:
            values.append(operand.imm)
        elif operand.type == x86.X86_OP_MEM:
            values.append(operand.mem.disp)
            if operand.mem.base in (x86.X86_REG_RIP, x86.X86_REG_EIP) and (
                operand.mem.segment not in _BASE_SEGMENTS
            ):
                values.append(instruction.address + instruction.size + operand.mem.disp)
    return values


def mismatch(code: bytes, bits: int, address: int, mnemonic: str, values: Sequence[int]) -> str | None:
    """Why `code` (assembled at `address` in `bits` mode) is not the instruction
    `mnemonic` with operand values `values`; None when it is."""
    decoded = list(_decoder(bits).disasm(code, address))
    consumed = sum(i.size for i in decoded)
    if len(decoded) != 1 or consumed != len(code):
        text = "; ".join(f"{i.mnemonic} {i.op_str}".strip() for i in decoded) or "nothing"
        return (
            f"keystone emitted {code.hex()}, which capstone decodes as {len(decoded)} "
            f"instruction(s) over {consumed} of {len(code)} bytes ({text}), not one instruction"
        )
    instruction = decoded[0]
    shown = f"`{instruction.mnemonic} {instruction.op_str}`".replace(" `", "`")
    if not same_mnemonic(mnemonic, instruction.mnemonic):
        return f"keystone emitted {code.hex()}, which decodes as {shown}, not '{mnemonic}'"
    found = decoded_values(instruction)
    for value in values:
        if not value_present(value, found):
            return (
                f"keystone mis-encoded it: {code.hex()} decodes as {shown}, "
                f"which lacks the source value {value:#x}"
            )
    return None
