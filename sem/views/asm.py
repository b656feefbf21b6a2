"""The machine-code view: the bytes produced by lowering and assembling,
shown as capstone decodes them (address, bytes, instruction)."""

from __future__ import annotations

from arch import Arch


class UndecodableCode(ValueError):
    """Capstone could not decode every byte: the assembler produced something unexpected."""


def disassemble(arch: Arch, code: bytes, address: int = 0) -> list[str]:
    lines, end = [], address
    for insn in arch.disassembler.disasm(code, address):
        lines.append(f"{insn.address:6x}:  {insn.bytes.hex(' '):<24} "
                     f"{insn.mnemonic} {insn.op_str}".rstrip())
        end = insn.address + insn.size
    if end != address + len(code):
        raise UndecodableCode(f"{arch}: capstone stops at {end:#x} of {len(code)} bytes; "
                              "report the routine, its lowering produced bytes no decoder accepts")
    return lines


def render(arch: Arch, code: bytes, header: str) -> str:
    return f"; {header}\n" + "\n".join(disassemble(arch, code)) + "\n"
