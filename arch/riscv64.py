"""riscv64: GNU binutils assemble (keystone has no RISC-V), QEMU's `virt` runs our ELF kernel."""

from __future__ import annotations

from collections.abc import Mapping

from arch.isa import Arch, CallingConvention
from contract.probe_abi import RISCV64_PROBES
from contract.protocol import Arch as WireArch
from contract.riscv64.exits import explain_exit

# RISC-V Privileged Architecture, table "Machine cause register (mcause) values".
FAULT_NAMES = {0: "instruction address misaligned", 1: "instruction access fault",
               2: "illegal instruction", 3: "breakpoint", 4: "load address misaligned",
               5: "load access fault", 6: "store address misaligned", 7: "store access fault",
               8: "ecall from U-mode", 11: "ecall from M-mode", 12: "instruction page fault",
               13: "load page fault", 15: "store page fault"}


class Riscv64Arch(Arch):
    def assemble(self, text: str, *, address: int = 0, constants: Mapping[str, int] = {},
                 extensions: str | None = None) -> bytes:
        from toolchain import riscvasm

        march = extensions or riscvasm.DEFAULT_MARCH
        return riscvasm.assemble_snippet(text, address=address, constants=constants, march=march)

    def exit_failure(self, status: int | None, console_text: str) -> str | None:
        return None if status == 0 else f"the guest failed: {explain_exit(status)}"


RISCV64 = Riscv64Arch(
    name="riscv64",
    wire=WireArch.RISCV64,
    probes=RISCV64_PROBES,
    word_bits=64,
    max_instruction_bytes=4,
    illegal_instruction=2,
    protection_fault=2,
    fault_names=FAULT_NAMES,
    access_faults={"fetch": 1, "read": 5, "write": 7},  # the access-fault mcause of each
    calling=CallingConvention(arguments=tuple(f"a{i}" for i in range(8)), result="a0",
                              stack_pointer="sp", return_address="ra"),
    pc_register="pc",
    qemu_binary="qemu-system-riscv64",
    debian_package="qemu-system-misc",
    boots_from_disk=False,
    default_board="virt",
    capstone_mode=("CS_ARCH_RISCV", ("CS_MODE_RISCV64", "CS_MODE_RISCVC")),
    unicorn_mode=("UC_ARCH_RISCV", "UC_MODE_RISCV64"),
    unicorn_registers=("riscv_const", "UC_RISCV_REG_"),
)
