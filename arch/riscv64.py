"""riscv64: GNU binutils assemble (keystone has no RISC-V), QEMU's `virt` runs our ELF kernel."""

from __future__ import annotations

from collections.abc import Mapping

from arch.isa import Arch, CallingConvention
from contract.protocol import WireArch
from contract.riscv64.causes import BY_NAME, EXCEPTIONS
from contract.riscv64.exits import explain_exit
from contract.riscv64.probes import RISCV64_PROBES

# The mcause exception codes (contract/riscv64/causes.py).
FAULT_NAMES = {c.code: c.name for c in EXCEPTIONS}


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
    max_instruction_bytes=4,
    illegal_instruction=BY_NAME["ILLEGAL_INSTRUCTION"].code,
    protection_fault=BY_NAME["ILLEGAL_INSTRUCTION"].code,  # a privileged instruction in U-mode
    fault_names=FAULT_NAMES,
    access_faults={"fetch": BY_NAME["INSTRUCTION_ACCESS_FAULT"].code,  # behind the PMP
                   "read": BY_NAME["LOAD_ACCESS_FAULT"].code,
                   "write": BY_NAME["STORE_ACCESS_FAULT"].code},
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
