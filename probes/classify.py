"""Instruction classes for vetting probes, from capstone (x86-64) and the
RISC-V encoding itself (its SYSTEM / MISC-MEM opcodes are simple enough to read
directly; capstone supplies the mnemonic and length).

Classes are ordered by what a probe may contain:
  ORDINARY      computes, loads, stores, branches within the probe
  ENVIRONMENT   unprivileged but machine-dependent (cpuid, rdtsc, rdcycle ...):
                allowed, but an emulator's answer is no prediction of hardware
  CODE_SYNC     fence.i: harmless, the probe's code cannot change anyway
  PRIVILEGED    needs ring 0 / M-mode (mov crN, wrmsr, hlt, csrw mstatus, mret ...)
  IO            port I/O (in, out, ins, outs)
  INTERRUPT     deliberate traps into the kernel (int n, syscall, ecall, ebreak)
  FAR_TRANSFER  far jmp/call/ret, iret: leave the probe's code segment
  UNDECODABLE   capstone cannot decode it (or disagrees on its length)
Writes to the probe's own code are not an instruction class: the vetter sees them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import capstone
from capstone import x86_const as X

from arch import RISCV64, X86_64, Arch
from contract.probe_abi import Privilege


class InsnClass(StrEnum):
    ORDINARY = "ordinary"
    ENVIRONMENT = "environment"
    CODE_SYNC = "code_sync"
    PRIVILEGED = "privileged"
    IO = "io"
    INTERRUPT = "interrupt"
    FAR_TRANSFER = "far_transfer"
    UNDECODABLE = "undecodable"


ALLOWED: dict[Privilege, frozenset[InsnClass]] = {
    Privilege.USER: frozenset({InsnClass.ORDINARY, InsnClass.ENVIRONMENT, InsnClass.CODE_SYNC}),
    Privilege.PRIVILEGED: frozenset(
        {InsnClass.ORDINARY, InsnClass.ENVIRONMENT, InsnClass.CODE_SYNC,
         InsnClass.PRIVILEGED, InsnClass.IO}
    ),
}


@dataclass(frozen=True)
class Decoded:
    klass: InsnClass
    size: int  # capstone's length (0 when undecodable)
    text: str


_X86_IO = {X.X86_INS_IN, X.X86_INS_OUT, X.X86_INS_INSB, X.X86_INS_INSW, X.X86_INS_INSD,
           X.X86_INS_OUTSB, X.X86_INS_OUTSW, X.X86_INS_OUTSD}
_X86_INTERRUPT = {X.X86_INS_INT, X.X86_INS_INT1, X.X86_INS_INT3, X.X86_INS_INTO,
                  X.X86_INS_SYSCALL, X.X86_INS_SYSENTER}
_X86_FAR = {X.X86_INS_LJMP, X.X86_INS_LCALL, X.X86_INS_RETF, X.X86_INS_RETFQ,
            X.X86_INS_IRET, X.X86_INS_IRETD, X.X86_INS_IRETQ}
# Capstone's privilege group misses some; these are privileged or reveal kernel
# state (UMIP-protected descriptor-table reads) or stall the machine.
_X86_PRIVILEGED = {X.X86_INS_RDMSR, X.X86_INS_WRMSR, X.X86_INS_RDPMC, X.X86_INS_HLT,
                   X.X86_INS_CLI, X.X86_INS_STI, X.X86_INS_XSETBV, X.X86_INS_MONITOR,
                   X.X86_INS_MWAIT, X.X86_INS_SGDT, X.X86_INS_SIDT, X.X86_INS_SLDT,
                   X.X86_INS_STR, X.X86_INS_SMSW, X.X86_INS_SYSEXIT, X.X86_INS_SYSRET,
                   X.X86_INS_WRFSBASE, X.X86_INS_WRGSBASE, X.X86_INS_UMWAIT, X.X86_INS_TPAUSE,
                   X.X86_INS_UMONITOR, X.X86_INS_ENCLU}
_X86_ENVIRONMENT = {X.X86_INS_CPUID, X.X86_INS_RDTSC, X.X86_INS_RDTSCP, X.X86_INS_RDRAND,
                    X.X86_INS_RDSEED, X.X86_INS_RDPID, X.X86_INS_XGETBV, X.X86_INS_RDPKRU,
                    X.X86_INS_RDFSBASE, X.X86_INS_RDGSBASE}


@lru_cache(maxsize=1 << 16)
def classify(arch: Arch, code: bytes) -> Decoded:
    """The class of the first instruction in `code` (pass the bytes the CPU would
    fetch: at least the instruction, at most arch.max_instruction_bytes)."""
    return _CLASSIFIERS[arch](code)


def _classify_x86(code: bytes) -> Decoded:
    insn = next(X86_64.disassembler.disasm(code, 0, 1), None)
    if insn is None:
        return Decoded(InsnClass.UNDECODABLE, 0, "(bad)")
    text = f"{insn.mnemonic} {insn.op_str}".strip()
    ident, groups = insn.id, set(insn.groups)  # ids and groups are cheap; operands are not
    if (ident in _X86_FAR or capstone.CS_GRP_IRET in groups
            or _is_far_indirect(insn.mnemonic, insn.op_str)):
        return Decoded(InsnClass.FAR_TRANSFER, insn.size, text)
    if ident in _X86_INTERRUPT or capstone.CS_GRP_INT in groups:
        return Decoded(InsnClass.INTERRUPT, insn.size, text)
    if ident in _X86_IO:
        return Decoded(InsnClass.IO, insn.size, text)
    if (ident in _X86_PRIVILEGED or capstone.CS_GRP_PRIVILEGE in groups
            or _CONTROL_OR_DEBUG.search(insn.op_str)):
        return Decoded(InsnClass.PRIVILEGED, insn.size, text)
    if ident in _X86_ENVIRONMENT:
        return Decoded(InsnClass.ENVIRONMENT, insn.size, text)
    return Decoded(InsnClass.ORDINARY, insn.size, text)


# `ff /3` and `ff /5` with a memory operand are far call / far jmp; capstone
# names them plain call/jmp with an untyped operand ("jmp ptr [rsp]"), while a
# near indirect one always reads "qword ptr [...]" or a register.
def _is_far_indirect(mnemonic: str, op_str: str) -> bool:
    return mnemonic in ("jmp", "call") and "[" in op_str and not op_str.startswith("qword")


_CONTROL_OR_DEBUG = re.compile(r"\b[cd]r\d+\b")


# RISC-V CSR numbers a U-mode probe may touch: FP state, vector state, the
# entropy source, and the read-only counters (time-dependent: ENVIRONMENT).
_RISCV_USER_CSRS = set(range(0x001, 0x004)) | set(range(0x008, 0x010)) | {0xC20, 0xC21, 0xC22}
_RISCV_COUNTER_CSRS = set(range(0xC00, 0xC20)) | {0x015}
_RISCV_CUSTOM_OPCODES = {0x0B, 0x2B, 0x5B, 0x7B}
# SYSTEM funct3 == 0, by imm12: environment call/break vs. privileged returns and waits.
_RISCV_TRAPS = {0x000: "ecall", 0x001: "ebreak"}


def riscv_length(code: bytes) -> int:
    """Instruction length from the low bits (RISC-V spec, "Expanded Instruction-Length
    Encoding")."""
    if len(code) < 2:
        return 0
    low = code[0]
    if low & 0b11 != 0b11:
        return 2
    if low & 0b11100 != 0b11100:
        return 4
    if low & 0b111111 == 0b011111:
        return 6
    if low & 0b1111111 == 0b0111111:
        return 8
    return 0  # 80+ bit or reserved: nothing we run


def _classify_riscv(code: bytes) -> Decoded:
    length = riscv_length(code)
    insn = next(RISCV64.disassembler.disasm(code[:length], 0, 1), None) if length else None
    text = f"{insn.mnemonic} {insn.op_str}".strip() if insn else "(bad)"
    if length == 2:
        half = int.from_bytes(code[:2], "little")
        if half == 0x9002:  # c.ebreak
            return Decoded(InsnClass.INTERRUPT, 2, text)
        if insn is None:
            return Decoded(InsnClass.UNDECODABLE, 0, text)
        return Decoded(InsnClass.ORDINARY, 2, text)
    if length != 4 or len(code) < 4:
        return Decoded(InsnClass.UNDECODABLE, 0, text)
    word = int.from_bytes(code[:4], "little")
    opcode, funct3, imm12 = word & 0x7F, (word >> 12) & 7, word >> 20
    if opcode == 0x73:  # SYSTEM
        if funct3 == 0:
            if imm12 in _RISCV_TRAPS and (word >> 7) & 0x1FFF == 0:
                return Decoded(InsnClass.INTERRUPT, 4, text or _RISCV_TRAPS[imm12])
            return Decoded(InsnClass.PRIVILEGED, 4, text)  # mret/sret/wfi/sfence.vma/hfence...
        if funct3 == 4:
            return Decoded(InsnClass.PRIVILEGED, 4, text)  # hypervisor loads/stores
        return Decoded(_riscv_csr_class(imm12), 4, text)
    if opcode == 0x0F and funct3 == 1:
        return Decoded(InsnClass.CODE_SYNC, 4, text)  # fence.i
    if opcode in _RISCV_CUSTOM_OPCODES:
        return Decoded(InsnClass.UNDECODABLE, 0, text)  # vendor-defined: anything goes
    # Outside SYSTEM and the custom opcodes nothing is privileged, so an encoding
    # capstone does not know (V, B, K... extensions) is still ordinary.
    return Decoded(InsnClass.ORDINARY, 4, text if insn else "(unknown to capstone)")


def _riscv_csr_class(csr: int) -> InsnClass:
    if csr in _RISCV_USER_CSRS:
        return InsnClass.ORDINARY
    if csr in _RISCV_COUNTER_CSRS:
        return InsnClass.ENVIRONMENT
    return InsnClass.PRIVILEGED


_CLASSIFIERS = {X86_64: _classify_x86, RISCV64: _classify_riscv}
