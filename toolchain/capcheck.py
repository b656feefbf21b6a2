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

from toolchain.x86source import REGISTERS, SEGMENT_REGISTERS

_MODES = {16: capstone.CS_MODE_16, 32: capstone.CS_MODE_32, 64: capstone.CS_MODE_64}
_CONDITIONS = {"z": "e", "nz": "ne", "c": "b", "nc": "ae", "nae": "b", "nb": "ae", "na": "be",
               "nbe": "a", "ng": "le", "nle": "g", "nl": "ge", "nge": "l", "pe": "p",
               "po": "np"}  # fmt: skip
# Spellings keystone accepts -> the one capstone prints.
_ALIASES = {"repz": "repe", "repnz": "repne", "movabs": "mov", "ljmp": "jmp", "lcall": "call",
            "lret": "retf", "sal": "shl", "fwait": "wait"}  # fmt: skip
_SIZE_SUFFIXES = ("b", "w", "d", "q", "l")
_WIDTHS = (8, 16, 32, 64)
_OPERAND_SIZE_PREFIX = 0x66
_GPR16 = {"ax", "bx", "cx", "dx", "si", "di", "sp", "bp"} | {f"r{n}w" for n in range(8, 16)}
_GPR32 = {"eax", "ebx", "ecx", "edx", "esi", "edi", "esp", "ebp"} | {f"r{n}d" for n in range(8, 16)}
_STRING_OPS = ("lods", "stos", "movs", "cmps", "scas", "ins", "outs")
_MNEMONICS16 = {"pushfw", "popfw", "iretw", "cbw", "cwd"} | {f"{op}w" for op in _STRING_OPS}
_MNEMONICS32 = {"pushfd", "popfd", "iretd", "cwde", "cdq", "pushad", "popad"} | {
    f"{op}d" for op in _STRING_OPS
}
_HINTS = {
    (32, "jmp"): " (keystone 0.9.2 cannot encode a 32-bit far jump: write it as "
    "`.byte 0xEA`, `.long OFFSET`, `.word SELECTOR`)",
    (16, "jmp"): " (a far jump from 16-bit code to an offset above 0xffff needs the 32-bit "
    "form, which keystone 0.9.2 cannot encode: write `.byte 0x66, 0xEA`, `.long OFFSET`, "
    "`.word SELECTOR`)",
}
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


def asks_for_size_override(bits: int, mnemonic: str, words: set[str]) -> bool:
    """Whether a source instruction (its mnemonic, and `words`: the lowercase
    names in its operands) wants the operand size that is not its mode's default,
    i.e. an operand-size prefix 0x66.  SIMD registers count as asking: 0x66 is a
    mandatory part of many of their opcodes."""
    if any(w.startswith(("xmm", "ymm", "zmm", "mm")) for w in words):
        return True
    last = mnemonic.split()[-1] if mnemonic else ""
    if bits == 16:
        return bool(words & (_GPR32 | {"dword"})) or last in _MNEMONICS32
    return bool(words & (_GPR16 | {"word"})) or last in _MNEMONICS16


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
            if operand.mem.base in (x86.X86_REG_RIP, x86.X86_REG_EIP) and (
                operand.mem.segment not in _BASE_SEGMENTS
            ):
                # only the address it designates: a raw displacement equal to an
                # absolute source address is keystone's [ABS] -> [rip + ABS] bug
                values.append(instruction.address + instruction.size + operand.mem.disp)
            else:
                values.append(operand.mem.disp)
    return values


def decoded_registers(instruction: capstone.CsInsn) -> set[str]:
    """Names of the registers a decoded instruction's operands use."""
    names = set()
    for operand in instruction.operands:
        if operand.type == x86.X86_OP_REG:
            names.add(instruction.reg_name(operand.reg))
        elif operand.type == x86.X86_OP_MEM:
            for register in (operand.mem.base, operand.mem.index, operand.mem.segment):
                if register:
                    names.add(instruction.reg_name(register))
    return names


def mismatch(
    code: bytes,
    bits: int,
    address: int,
    mnemonic: str,
    values: Sequence[int],
    words: frozenset[str],
) -> str | None:
    """Why `code` (assembled at `address` in `bits` mode) is not the instruction
    `mnemonic` with operand values `values` and operand `words` (registers and
    size keywords, lowercase); None when it is."""
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
    missing = (words & REGISTERS) - decoded_registers(instruction)
    if any(operand.type == x86.X86_OP_MEM for operand in instruction.operands):
        missing -= SEGMENT_REGISTERS  # an override naming the default segment is dropped
    if missing:
        return (
            f"keystone emitted {code.hex()}, which decodes as {shown}, "
            f"without {', '.join(sorted(missing))}"
        )
    found = decoded_values(instruction)
    for value in values:
        if not value_present(value, found):
            hint = _HINTS.get((bits, _canonical(mnemonic)), "")
            if "rip" in shown and "rip" not in words:
                hint = (" (keystone 0.9.2 turns some absolute [ADDRESS] operands of 64-bit code "
                        "into rip-relative ones: write [rip + ADDRESS] or go through a register)")
            return (
                f"keystone mis-encoded it: {code.hex()} decodes as {shown}, "
                f"which lacks the source value {value:#x}{hint}"
            )
    if instruction.prefix[2] == _OPERAND_SIZE_PREFIX and not asks_for_size_override(
        bits, mnemonic, set(words)
    ):
        return (
            f"keystone emitted {code.hex()} ({shown}) with an operand-size prefix (66) the source "
            f"does not ask for, changing the operand size from the {bits}-bit mode's default"
        )
    return None
