"""The x86-64 half of the probe ABI (contract/probe_abi.py): where the probe region
and the kernel are, the exit stub, the code fill and the entry registers."""

from __future__ import annotations

from contract.probe_abi import ProbePlatform

X86_64_ENTRY_RFLAGS = 0x202  # IF set (the watchdog's interrupt gets in), DF clear
X86_64_PROBES = ProbePlatform(
    isa="x86_64",
    region_base=0x0100_0000,  # 16 MiB: the kernel lives below, 1-16 MiB
    kernel_area=(0x0010_0000, 0x00F0_0000),
    exit_stub=bytes.fromhex("0f05"),  # syscall
    # int3 (#BP), one byte, a trap at every offset; zeros would run on as
    # `add [rax], al` (and cost the vetter a 512-instruction translation per probe)
    code_fill=0xCC,
    argument_registers=("rdi", "rsi", "rdx", "rcx"),
    stack_pointer="rsp",
    return_register=None,
    extra_entry=(("rflags", X86_64_ENTRY_RFLAGS),),
    extra_constants=(("PROBE_RFLAGS", X86_64_ENTRY_RFLAGS),),
)
