"""The machine-code view: the bytes produced by lowering and assembling,
shown as capstone decodes them (address, bytes, instruction)."""

from __future__ import annotations

import capstone

DECODERS = {
    "x86_64": (capstone.CS_ARCH_X86, capstone.CS_MODE_64),
    "riscv64": (capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC),
}


class UndecodableCode(ValueError):
    """Capstone could not decode every byte: the assembler produced something unexpected."""


def disassemble(arch: str, code: bytes, address: int = 0) -> list[str]:
    md = capstone.Cs(*DECODERS[arch])
    lines, end = [], address
    for insn in md.disasm(code, address):
        lines.append(f"{insn.address:6x}:  {insn.bytes.hex(' '):<24} {insn.mnemonic} {insn.op_str}".rstrip())
        end = insn.address + insn.size
    if end != address + len(code):
        raise UndecodableCode(f"{arch}: capstone stops at {end:#x} of {len(code)} bytes; "
                              "report the routine, its lowering produced bytes no decoder accepts")
    return lines


def render(arch: str, code: bytes, header: str) -> str:
    return f"; {header}\n" + "\n".join(disassemble(arch, code)) + "\n"
