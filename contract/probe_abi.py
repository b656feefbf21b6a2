"""The probe ABI, defined once: memory layout, entry registers, return, outcomes.

A probe is position-independent machine code.  The guest kernel (and the host's
Unicorn vetter, and the fake guest) place it and its data at fixed virtual
addresses inside one 16 MiB *probe region* that the kernel maps identity,
user-accessible, and nothing else user-accessible.  The offsets are the same on
both architectures; only the region base differs.

Probe region (offsets from PROBE_REGION_BASE; every area page-aligned and
naturally aligned to its size, so RISC-V can cover each with one NAPOT PMP
entry and x86-64 with 4 KiB / 2 MiB pages):

    offset      size    perms  area     what lives there
    ---------   ------  -----  -------  ------------------------------------------
    0x000000    16 KiB  R-X    code     the probe's code (entry at its first byte),
                                        then CODE_FILL: running off the end traps
    0x004000    16 KiB  ---    guard    unmapped
    0x008000     4 KiB  R-X    exit     kernel-provided exit stub (EXIT_STUB_*)
    0x010000     4 KiB  R--    input    the probe's input block (read-only)
    0x020000     4 KiB  RW-    output   output buffer, zeroed before each run
    0x030000    16 KiB  RW-    stack    user stack, zeroed; grows down from 0x034000
    0x800000     8 MiB  RW-    scratch  zeroed scratch (pointer chasing, buffers)
    (everything else in the region is unmapped: a guard around every area)

    x86-64:  PROBE_REGION_BASE = 0x0100_0000 (16 MiB; kernel lives below, 1-16 MiB)
    riscv64: PROBE_REGION_BASE = 0x8100_0000 (RAM + 16 MiB; kernel at 0x8000_0000)

Data pages are non-executable (x86-64 needs EFER.NXE); the code and exit pages
are not writable, so a probe cannot modify itself.

Entry (all other general registers are zero, x86 RFLAGS = 0x202, DF clear):

    x86-64:  rdi = input, rsi = output, rdx = scratch, rcx = input length,
             rsp = stack top - 8 with [rsp] = EXIT_STUB address
    riscv64: a0 = input,  a1 = output,  a2 = scratch,  a3 = input length,
             sp = stack top, ra = EXIT_STUB address

Floating point and vector (riscv64): a probe starts with mstatus.FS = Initial
and VS = Off (RISCV_MSTATUS_FS_VS_ENTRY), f0-f31 = 0 and fcsr = 0 (fflags and
frm), whatever the previous probe left (a hart without D keeps FS = Off).  So
F/D instructions execute, and vector instructions (and the vector CSRs) raise
illegal instruction even on a hart with V: the host's Unicorn (QEMU 5.0
inside) has no V extension to predict them with.

Return: the probe returns (`ret`) with its own 64-bit status in rax / a0.  The
exit stub then traps to the kernel (x86-64 `syscall`, riscv64 `ecall`); the
kernel recognises the end of a probe by the trapping address being the stub.
Privileged probes (ring 0 / M-mode) follow the same convention; the kernel may
put its own return point at [rsp] / ra instead of the stub.

Result: the outcome (Outcome), the status, the fault (vector, address, ip) when
there was one, the first `output_size` bytes of the output buffer, and the
cycle / retired-instruction deltas measured around the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

PROBE_REGION_SIZE = 0x0100_0000
PAGE_SIZE = 0x1000

# riscv64 mstatus.FS (bits 14:13) and VS (bits 10:9) at probe entry: FS = Initial, VS = Off.
RISCV_MSTATUS_FS, RISCV_MSTATUS_VS = 3 << 13, 3 << 9  # mstatus fields (0 = Off)
RISCV_MSTATUS_FS_INITIAL, RISCV_MSTATUS_VS_INITIAL = 1 << 13, 1 << 9
RISCV_MSTATUS_FS_VS_MASK = RISCV_MSTATUS_FS | RISCV_MSTATUS_VS
RISCV_MSTATUS_FS_VS_ENTRY = RISCV_MSTATUS_FS_INITIAL  # VS stays Off
DEFAULT_BUDGET = 10_000  # instructions
MAX_BUDGET = 10_000_000
DEFAULT_OUTPUT_SIZE = 64
# The guest's watchdog turns an instruction budget into a deadline: generous,
# since a probe that is merely slow must not be reported as a hang.
WATCHDOG_NS_PER_INSTRUCTION = 100
WATCHDOG_MIN_NS = 10_000_000


class Privilege(IntEnum):
    USER = 0  # ring 3 / U-mode behind PMP (the default)
    PRIVILEGED = 1  # ring 0 / M-mode; only from the host's privileged families


class Outcome(IntEnum):
    """How one run of a probe ended, as the guest (or an emulator) reports it."""

    RETURNED = 0  # reached the exit stub; status is the probe's rax / a0
    FAULT = 1  # raised an exception; vector / address / ip say which
    TIMEOUT = 2  # stopped by the watchdog (or the emulator's instruction budget)
    REFUSED = 3  # the guest would not run it (bad slot, privileged from a user family)


# The FAULT vector reported when an x86-64 probe executes `syscall` anywhere but
# in the exit stub: syscall raises no exception, so it has no vector of its own.
SYSCALL_PSEUDO_VECTOR = 0x100


class Perm(IntEnum):
    R = 1
    W = 2
    X = 4


@dataclass(frozen=True)
class Area:
    name: str
    offset: int
    size: int
    perms: int  # Perm bits

    def base(self, platform: ProbePlatform) -> int:
        return platform.region_base + self.offset

    def end(self, platform: ProbePlatform) -> int:
        return self.base(platform) + self.size


AREAS: tuple[Area, ...] = (
    Area("code", 0x000000, 0x4000, Perm.R | Perm.X),
    Area("exit", 0x008000, 0x1000, Perm.R | Perm.X),
    Area("input", 0x010000, 0x1000, Perm.R),
    Area("output", 0x020000, 0x1000, Perm.R | Perm.W),
    Area("stack", 0x030000, 0x4000, Perm.R | Perm.W),
    Area("scratch", 0x800000, 0x800000, Perm.R | Perm.W),
)
AREA = {a.name: a for a in AREAS}
CODE_SIZE = AREA["code"].size
INPUT_SIZE = AREA["input"].size
OUTPUT_SIZE = AREA["output"].size
SCRATCH_SIZE = AREA["scratch"].size


@dataclass(frozen=True)
class Entry:
    """Register state at probe entry, by register name of that architecture."""

    registers: dict[str, int]
    return_address: int  # also stored at [rsp] on x86-64


@dataclass(frozen=True)
class ProbePlatform:
    """The half of the probe ABI that differs between instruction sets: where the
    region and the kernel are, the exit stub, the code fill and the entry registers
    (the module docstring gives both).  One instance per ISA, below."""

    isa: str
    region_base: int
    kernel_area: tuple[int, int]  # (base, size): below the region; the fake guest canaries it
    exit_stub: bytes  # the kernel's exit stub at the exit area
    code_fill: int  # the byte past a probe's code: running off the end traps at once
    # entry registers: input, output, scratch, input length; then the stack pointer
    argument_registers: tuple[str, str, str, str]
    stack_pointer: str
    return_register: str | None  # where the return address is (None: at [sp])
    extra_entry: tuple[tuple[str, int], ...] = ()  # other registers the ABI sets at entry
    extra_constants: tuple[tuple[str, int], ...] = ()  # what only this ISA's kernel needs

    @property
    def stack_top(self) -> int:
        return AREA["stack"].end(self)

    @property
    def exit_address(self) -> int:
        return AREA["exit"].base(self)

    def entry_state(self, input_length: int) -> Entry:
        """The documented entry convention (see the module docstring)."""
        values = (AREA["input"].base(self), AREA["output"].base(self), AREA["scratch"].base(self),
                  input_length)
        regs = dict(zip(self.argument_registers, values, strict=True))
        if self.return_register is None:  # the return address is pushed: [sp] holds it
            regs[self.stack_pointer] = self.stack_top - 8
        else:
            regs[self.stack_pointer] = self.stack_top
            regs[self.return_register] = self.exit_address
        regs.update(self.extra_entry)
        return Entry(regs, self.exit_address)

    def asm_constants(self) -> dict[str, int]:
        """Every ABI constant a kernel needs, named as its assembly uses them."""
        consts = {
            "PROBE_REGION_BASE": self.region_base,
            "PROBE_REGION_SIZE": PROBE_REGION_SIZE,
            "PROBE_STACK_TOP": self.stack_top,
            "PROBE_EXIT_STUB_WORD": int.from_bytes(self.exit_stub, "little"),
            "PROBE_EXIT_STUB_SIZE": len(self.exit_stub),
            "PROBE_CODE_FILL": self.code_fill,
            "PROBE_DEFAULT_BUDGET": DEFAULT_BUDGET,
            "PROBE_MAX_BUDGET": MAX_BUDGET,
            "PROBE_SYSCALL_PSEUDO_VECTOR": SYSCALL_PSEUDO_VECTOR,
            "PROBE_WATCHDOG_NS_PER_INSN": WATCHDOG_NS_PER_INSTRUCTION,
            "PROBE_WATCHDOG_MIN_NS": WATCHDOG_MIN_NS,
        }
        for area in AREAS:
            name = area.name.upper()
            consts[f"PROBE_{name}_BASE"] = area.base(self)
            consts[f"PROBE_{name}_SIZE"] = area.size
            consts[f"PROBE_{name}_PERMS"] = int(area.perms)
        consts.update({f"PROBE_PRIV_{p.name}": p.value for p in Privilege})
        consts.update({f"PROBE_OUTCOME_{o.name}": o.value for o in Outcome})
        consts.update({f"PROBE_PERM_{p.name}": p.value for p in Perm})
        consts.update(self.extra_constants)
        return consts


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


def watchdog_ns(budget: int) -> int:
    return max(WATCHDOG_MIN_NS, budget * WATCHDOG_NS_PER_INSTRUCTION)
