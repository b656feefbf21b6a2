"""A Unicorn machine laid out exactly as the probe ABI says, reused across probes.

RISC-V: Unicorn 2's RISC-V is QEMU 5.0.  Two of its quirks shape this module:
its CSR registers are read and written through the CSR instructions' privilege
checks (so mstatus can only be set while the machine is in M-mode, and reads
of M-mode CSRs in U-mode return garbage), and with mstatus.FS = Off it turns a
compressed FP load/store (c.fld, c.fsd, c.fldsp, c.fsdsp) into a no-op instead
of an illegal instruction (its fallback decoder after trans_fsd refuses).  The
ABI's FS = Initial avoids the latter for user probes; _on_code catches it when
a privileged probe has switched FP off.

Both the vetter and the fake guest run probes on it.  One instance per arch
lives for many probes: between runs only what a probe can change is reset
(code, input, output, stack, registers, the scratch it touched).  The scratch
area is mapped lazily from its base, doubling to cover each first touch (and
unmapped after the run), so an 8 MiB area costs nothing for the many probes
that never use it and a handful of regions for one that uses all of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import unicorn as uc_mod
from unicorn import riscv_const

from arch import RISCV64, X86_64, Arch
from contract.probe_abi import (
    AREA,
    AREAS,
    PAGE_SIZE,
    Entry,
    Outcome,
    Perm,
    Privilege,
)
from contract.riscv64.probes import (
    RISCV_MSTATUS_FS,
    RISCV_MSTATUS_FS_VS_ENTRY,
    RISCV_MSTATUS_FS_VS_MASK,
)
from probes.probe import Fault, Observation, Probe

_ACCESS = {
    uc_mod.UC_MEM_READ_UNMAPPED: "read", uc_mod.UC_MEM_READ_PROT: "read",
    uc_mod.UC_MEM_WRITE_UNMAPPED: "write", uc_mod.UC_MEM_WRITE_PROT: "write",
    uc_mod.UC_MEM_FETCH_UNMAPPED: "fetch", uc_mod.UC_MEM_FETCH_PROT: "fetch",
}
_PROT = {Perm.R: uc_mod.UC_PROT_READ, Perm.W: uc_mod.UC_PROT_WRITE, Perm.X: uc_mod.UC_PROT_EXEC}
_RISCV_PRIV_M = 3  # Unicorn's UC_RISCV_REG_PRIV encoding of M-mode (U-mode is 0)


def riscv_compressed_fp_access(halfword: int) -> bool:
    """c.fld / c.fsd (quadrant 0) or c.fldsp / c.fsdsp (quadrant 2), RV64 encodings."""
    return halfword & 3 in (0, 2) and (halfword >> 13) & 3 == 1


@dataclass(frozen=True)
class MemoryViolation:
    access: str  # read / write / fetch
    address: int
    ip: int


# An inspector sees each instruction before it runs: None lets it run, a string
# stops the probe as a violation, a Fault stops it as that (emulated) exception.
Inspector = Callable[[int, int], "str | Fault | None"]


@dataclass(frozen=True)
class EmulatedRun:
    observation: Observation
    instructions: int
    violation: str | None = None  # set by the inspector
    memory_violation: MemoryViolation | None = None


class _X86Port:
    """What Unicorn needs beyond the ABI's registers on x86-64: the return address
    the ABI puts at [rsp] lives on the stack, which every run zeroes."""

    def entry(self, emulator: ProbeEmulator, entry: Entry, privilege: Privilege) -> None:
        emulator.return_slot = (entry.registers[emulator.arch.probes.stack_pointer],
                                entry.return_address.to_bytes(8, "little"))

    def reset(self, emulator: ProbeEmulator) -> None:
        emulator.uc.mem_write(*emulator.return_slot)

    def fp_may_be_off(self, privilege: Privilege) -> bool:
        return False


class _RiscvPort:
    """RISC-V under Unicorn (see the module docstring): mstatus.FS/VS and the privilege
    level are set at entry; fflags are reset by hand."""

    def entry(self, emulator: ProbeEmulator, entry: Entry, privilege: Privilege) -> None:
        uc = emulator.uc
        # mstatus first, while still in M-mode: FS/VS as the ABI says; f0-f31 and fcsr
        # are zero from Unicorn's reset.
        uc.reg_write(riscv_const.UC_RISCV_REG_PRIV, _RISCV_PRIV_M)
        mstatus = uc.reg_read(riscv_const.UC_RISCV_REG_MSTATUS)
        mstatus = mstatus & ~RISCV_MSTATUS_FS_VS_MASK | RISCV_MSTATUS_FS_VS_ENTRY
        uc.reg_write(riscv_const.UC_RISCV_REG_MSTATUS, mstatus)
        if uc.reg_read(riscv_const.UC_RISCV_REG_MSTATUS) != mstatus:
            raise RuntimeError("Unicorn ignored the write to mstatus.FS/VS: it cannot model"
                               " the probe ABI; use the Unicorn 2 the project pins")
        # Unicorn models the privilege level on RISC-V: U-mode for user probes
        uc.reg_write(riscv_const.UC_RISCV_REG_PRIV,
                     _RISCV_PRIV_M if privilege == Privilege.PRIVILEGED else 0)

    def reset(self, emulator: ProbeEmulator) -> None:
        # fflags live in softfloat's state, which a context does not hold.  (The
        # write marks FS Dirty, visible only to M-mode CSR reads: never predictions.)
        emulator.uc.reg_write(riscv_const.UC_RISCV_REG_FFLAGS, 0)

    def fp_may_be_off(self, privilege: Privilege) -> bool:
        return privilege == Privilege.PRIVILEGED  # only M-mode code can switch FP off


_PORTS = {X86_64: _X86Port(), RISCV64: _RiscvPort()}


class ProbeEmulator:
    """Unicorn laid out as the probe ABI says, for probes of one architecture."""

    def __init__(self, arch: Arch, *, kernel_canary: bytes | None = None) -> None:
        self.arch = arch
        self._port = _PORTS[arch]
        self.uc = arch.unicorn()
        self._reg = arch.unicorn_register
        self._status_reg = arch.unicorn_register(arch.calling.result)
        self._pc_reg = arch.unicorn_register(arch.pc_register)
        platform = arch.probes
        for area in AREAS:
            if area.name != "scratch":
                prot = sum(_PROT[p] for p in Perm if area.perms & p)
                self.uc.mem_map(area.base(platform), area.size, prot)
        self.uc.mem_write(platform.exit_address, platform.exit_stub)
        self._fill = bytes([platform.code_fill])
        self.uc.mem_write(AREA["code"].base(platform), self._fill * AREA["code"].size)
        self.kernel_canary = kernel_canary
        if kernel_canary is not None:
            base, size = platform.kernel_area
            self.uc.mem_map(base, size, uc_mod.UC_PROT_READ | uc_mod.UC_PROT_WRITE)
            self.uc.mem_write(base, (kernel_canary * (size // len(kernel_canary) + 1))[:size])
        self._code = (AREA["code"].base(platform), AREA["code"].end(platform))
        self._scratch = (AREA["scratch"].base(platform), AREA["scratch"].end(platform))
        self._input, self._output, self._stack = (AREA[name].base(platform)
                                                  for name in ("input", "output", "stack"))
        self._zero_output = bytes(AREA["output"].size)
        self._zero_stack = bytes(AREA["stack"].size)
        self._entry_contexts = {priv: self._entry_context(priv) for priv in Privilege}
        self._input_length_reg = self._reg(platform.argument_registers[3])
        self._scratch_mapped = 0  # bytes of scratch mapped, from its base (grown on demand)
        self._last_code_len = self._last_input_len = 0
        self.uc.hook_add(uc_mod.UC_HOOK_CODE, self._on_code)
        self.uc.hook_add(uc_mod.UC_HOOK_INTR, self._on_interrupt)
        self.uc.hook_add(uc_mod.UC_HOOK_MEM_INVALID, self._on_bad_memory)
        self._inspect: Inspector | None = None

    # -- one run -------------------------------------------------------------------

    def run(self, probe: Probe, inspect: Inspector | None = None) -> EmulatedRun:
        if probe.arch != self.arch:
            raise ValueError(f"a {probe.arch} probe cannot run on the {self.arch} machine")
        self._reset(probe)
        self._inspect, self._budget = inspect, probe.budget
        self._probe = probe
        self._fp_may_be_off = self._port.fp_may_be_off(probe.privilege)
        self._count, self._last_pc = 0, self._code[0]
        self._fault: Fault | None = None
        self._violation: str | None = None
        self._memory: MemoryViolation | None = None
        self._timeout = False
        try:
            self.uc.emu_start(self._code[0], self.arch.probes.exit_address)
        except uc_mod.UcError as exc:
            if exc.errno == uc_mod.UC_ERR_INSN_INVALID and self._fault is None:
                self._fault = Fault(self.arch.illegal_instruction, 0, self._last_pc)
            elif self._memory is None and self._fault is None and self._violation is None:
                self._violation = f"emulator stopped: {exc}"
        return EmulatedRun(self._observe(probe), self._count, self._violation, self._memory)

    def kernel_area_intact(self) -> bool:
        """True when the kernel area still holds its canary (fake guest only)."""
        if self.kernel_canary is None:
            raise RuntimeError("this machine has no kernel area; build it with kernel_canary=...")
        base, size = self.arch.probes.kernel_area
        data = bytes(self.uc.mem_read(base, size))
        return data == (self.kernel_canary * (size // len(self.kernel_canary) + 1))[:size]

    def _observe(self, probe: Probe) -> Observation:
        if self._timeout:
            return Observation(Outcome.TIMEOUT)
        if self._fault is not None:
            return Observation(Outcome.FAULT, fault=self._fault)
        pc = self.uc.reg_read(self._pc_reg)
        if self._violation is None and self._memory is None and pc != self.arch.probes.exit_address:
            self._violation = f"stopped at 0x{pc:x} without returning (e.g. hlt)"
        output = bytes(self.uc.mem_read(self._output, probe.output_size))
        return Observation(Outcome.RETURNED, status=self.uc.reg_read(self._status_reg),
                           output=output)

    def _reset(self, probe: Probe) -> None:
        uc = self.uc
        uc.context_restore(self._entry_contexts[probe.privilege])
        if probe.input:
            uc.reg_write(self._input_length_reg, len(probe.input))
        uc.mem_write(self._code[0],
                     probe.code + self._fill * max(0, self._last_code_len - len(probe.code)))
        uc.ctl_remove_cache(self._code[0],
                            self._code[0] + max(len(probe.code), self._last_code_len))
        self._last_code_len = len(probe.code)
        uc.mem_write(self._input,
                     probe.input + bytes(max(0, self._last_input_len - len(probe.input))))
        self._last_input_len = len(probe.input)
        uc.mem_write(self._output, self._zero_output)
        uc.mem_write(self._stack, self._zero_stack)
        if self._scratch_mapped:
            # the next probe's scratch: zero again
            uc.mem_unmap(self._scratch[0], self._scratch_mapped)
            self._scratch_mapped = 0
        self._port.reset(self)  # last: after the stack was zeroed

    def _entry_context(self, privilege: Privilege):
        """Registers as the ABI says at entry (input length 0), saved once: restoring
        a context is far cheaper than writing registers one by one."""
        entry = self.arch.probes.entry_state(0)
        for name, value in entry.registers.items():
            self.uc.reg_write(self._reg(name), value)
        self._port.entry(self, entry, privilege)
        return self.uc.context_save()

    # -- hooks ---------------------------------------------------------------------

    def _on_code(self, uc, address: int, size: int, _data) -> None:
        self._last_pc = address
        self._count += 1
        if not self._code[0] <= address < self._code[1]:
            self._violation = f"executes at 0x{address:x}, outside its code area"
        elif self._count > self._budget:
            self._timeout = True
        elif self._fp_may_be_off and size == 2 and self._fp_off_compressed_access(address):
            if self._violation is None:
                self._fault = Fault(self.arch.protection_fault, 0, address)
        elif self._inspect is not None:
            verdict = self._inspect(address, size)
            if verdict is None:
                return
            if isinstance(verdict, Fault):
                self._fault = verdict
            else:
                self._violation = verdict
        else:
            return
        uc.emu_stop()

    def _fp_off_compressed_access(self, address: int) -> bool:
        """A compressed FP load/store with mstatus.FS = Off: illegal on a real hart,
        a silent no-op in Unicorn.  True stops the run (a fault, or a violation
        when the emulator cannot tell).  Only M-mode code can switch FS off."""
        offset = address - self._code[0]
        halfword = int.from_bytes(self._probe.code[offset:offset + 2], "little")
        if not riscv_compressed_fp_access(halfword):
            return False
        if self.uc.reg_read(riscv_const.UC_RISCV_REG_PRIV) == _RISCV_PRIV_M:
            return self.uc.reg_read(riscv_const.UC_RISCV_REG_MSTATUS) & RISCV_MSTATUS_FS == 0
        self._violation = ("runs a compressed FP load/store below M-mode, where the"
                           " emulator cannot read mstatus.FS")  # it left M-mode: mstatus unreadable
        return True

    def _on_interrupt(self, uc, vector: int, _data) -> None:
        if self._fault is None and self._violation is None:
            self._fault = Fault(vector, 0, self._last_pc)
        uc.emu_stop()

    def _on_bad_memory(self, uc, kind: int, address: int, size: int, value: int, _data) -> bool:
        access = _ACCESS.get(kind, "access")
        first, last = address & ~(PAGE_SIZE - 1), (address + max(size, 1) - 1) & ~(PAGE_SIZE - 1)
        if kind in (uc_mod.UC_MEM_READ_UNMAPPED, uc_mod.UC_MEM_WRITE_UNMAPPED) \
                and self._scratch[0] <= first and last < self._scratch[1]:
            # Map from the end of what is mapped to the next power of two that covers
            # the access: few regions (Unicorn maps get slower with every region).
            needed = last + PAGE_SIZE - self._scratch[0]
            end = max(PAGE_SIZE, 1 << (needed - 1).bit_length())
            uc.mem_map(self._scratch[0] + self._scratch_mapped, end - self._scratch_mapped,
                       uc_mod.UC_PROT_READ | uc_mod.UC_PROT_WRITE)
            self._scratch_mapped = end
            return True  # retry the access on the fresh zero page(s)
        if self._memory is None:
            self._memory = MemoryViolation(access, address, self._last_pc)
        return False
