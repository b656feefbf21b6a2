"""x86-64: keystone (through our toolchain) assembles, SeaBIOS boots our disk image."""

from __future__ import annotations

from collections.abc import Mapping

from arch.isa import Arch, CallingConvention
from contract.probe_abi import SYSCALL_PSEUDO_VECTOR
from contract.protocol import WireArch
from contract.x86_64.exceptions import BY_MNEMONIC, EXCEPTIONS
from contract.x86_64.exits import DEBUG_EXIT_PASS, debug_exit_status
from contract.x86_64.probes import X86_64_PROBES

# The exception vectors (contract/x86_64/exceptions.py), plus the pseudo vector the
# kernel reports for a stray `syscall` (contract/probe_abi.py).
FAULT_NAMES = {v.number: v.mnemonic for v in EXCEPTIONS} | {SYSCALL_PSEUDO_VECTOR: "syscall"}
_PAGE_FAULT = BY_MNEMONIC["#PF"].number
BOOT_STAGE_MARK = "MetaOS boot:"  # how boot/x86_64/bootfail.s starts its message


class X86_64Arch(Arch):
    def assemble(self, text: str, *, address: int = 0, constants: Mapping[str, int] = {},
                 extensions: str | None = None) -> bytes:
        from toolchain import x86asm

        if extensions is not None:
            raise ValueError("x86-64 assembly takes no extension subset (keystone knows them all)")
        return x86asm.assemble_snippet(text, bits=64, address=address, constants=constants)

    def exit_failure(self, status: int | None, console_text: str) -> str | None:
        if status == debug_exit_status(DEBUG_EXIT_PASS):
            return None
        boot_lines = [line.strip() for line in console_text.splitlines() if BOOT_STAGE_MARK in line]
        if boot_lines:
            return f"the boot stage failed: {boot_lines[-1]}"
        return f"the guest exited with status {status}"


X86_64 = X86_64Arch(
    name="x86_64",
    wire=WireArch.X86_64,
    probes=X86_64_PROBES,
    max_instruction_bytes=15,
    illegal_instruction=BY_MNEMONIC["#UD"].number,
    protection_fault=BY_MNEMONIC["#GP"].number,
    fault_names=FAULT_NAMES,
    access_faults={"read": _PAGE_FAULT, "write": _PAGE_FAULT, "fetch": _PAGE_FAULT},
    calling=CallingConvention(arguments=("rdi", "rsi", "rdx", "rcx", "r8", "r9"), result="rax",
                              stack_pointer="rsp", return_address=None),
    pc_register="rip",
    qemu_binary="qemu-system-x86_64",
    debian_package="qemu-system-x86",
    boots_from_disk=True,
    default_board="q35",
    capstone_mode=("CS_ARCH_X86", ("CS_MODE_64",)),
    unicorn_mode=("UC_ARCH_X86", "UC_MODE_64"),
    unicorn_registers=("x86_const", "UC_X86_REG_"),
)
