"""x86-64: keystone (through our toolchain) assembles, SeaBIOS boots our disk image."""

from __future__ import annotations

from collections.abc import Mapping

from arch.isa import Arch, CallingConvention
from contract.probe_abi import X86_64_PROBES
from contract.protocol import DEBUG_EXIT_PASS, debug_exit_status
from contract.protocol import Arch as WireArch

# Intel SDM vol. 3A, table 6-1 (the vectors a probe can raise), plus the pseudo
# vector the kernel reports for a stray `syscall` (contract/probe_abi.py).
FAULT_NAMES = {0: "#DE", 1: "#DB", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 7: "#NM", 8: "#DF",
               10: "#TS", 11: "#NP", 12: "#SS", 13: "#GP", 14: "#PF", 16: "#MF", 17: "#AC",
               18: "#MC", 19: "#XM", 20: "#VE", 21: "#CP", 0x100: "syscall"}
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
    word_bits=64,
    max_instruction_bytes=15,
    illegal_instruction=6,
    protection_fault=13,
    fault_names=FAULT_NAMES,
    access_faults={"read": 14, "write": 14, "fetch": 14},  # #PF, whatever the access
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
