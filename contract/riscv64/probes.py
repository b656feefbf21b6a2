"""The riscv64 half of the probe ABI (contract/probe_abi.py): where the probe region
and the kernel are, the exit stub, the code fill, the entry registers, and the
floating-point and vector state a probe starts in."""

from __future__ import annotations

from contract.probe_abi import ProbePlatform
from contract.riscv64.csrs import MSTATUS

# mstatus.FS and VS at probe entry: FS = Initial, VS = Off.
RISCV_MSTATUS_FS, RISCV_MSTATUS_VS = (MSTATUS.field(f).mask for f in ("FS", "VS"))
RISCV_MSTATUS_FS_VS_MASK = RISCV_MSTATUS_FS | RISCV_MSTATUS_VS
RISCV_MSTATUS_FS_VS_ENTRY = MSTATUS.pack(FS=1)  # Initial; VS stays Off

RISCV64_PROBES = ProbePlatform(
    isa="riscv64",
    region_base=0x8100_0000,  # RAM + 16 MiB: the kernel at 0x8000_0000
    kernel_area=(0x8000_0000, 0x0100_0000),
    exit_stub=bytes.fromhex("73000000"),  # ecall
    code_fill=0x00,  # an illegal instruction (c.unimp) at every halfword
    argument_registers=("a0", "a1", "a2", "a3"),
    stack_pointer="sp",
    return_register="ra",
    extra_constants=(("PROBE_MSTATUS_FS_VS_MASK", RISCV_MSTATUS_FS_VS_MASK),
                     ("PROBE_MSTATUS_FS_VS_ENTRY", RISCV_MSTATUS_FS_VS_ENTRY)),
)
