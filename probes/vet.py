"""Vetting: run a probe in Unicorn under the probe ABI before it may be sent.

A probe is rejected, with a reason, when it
  - touches memory outside its input/output/stack/scratch areas, executes
    outside its code, or writes its own code;
  - executes an instruction outside its privilege class (probes.classify);
  - executes an instruction capstone cannot decode (or whose length capstone and
    the emulator disagree on) and carries on past it — faulting on it is fine;
  - runs more instructions than its budget, or stops without returning.
A probe that raises an ordinary exception (#UD, #DE, illegal instruction...) is
accepted: the guest contains faults, and the fault is the predicted result.
A hart that implements an instruction the emulator faults on (RISC-V Zb* on
QEMU >= 7, vendor extensions) runs on past it into code nobody vetted: there
the guest's containment (PMP, page tables) is the only guard, and the
divergence is what ISA discovery is looking for.
When no ENVIRONMENT instruction ran (nor a RISC-V FP instruction Unicorn
computes the pre-2.2-spec way, see _riscv_fp_unicorn_differs), the emulator's
observation is kept as the prediction to compare with the guest's answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from arch import RISCV64, X86_64, Arch
from contract.probe_abi import AREA, Outcome
from probes.classify import ALLOWED, InsnClass, classify, riscv_length
from probes.emulator import EmulatedRun, ProbeEmulator
from probes.probe import Observation, Probe

# what Unicorn's code hook reports for an undecodable instruction
_UNICORN_INVALID_SIZE = 0xF1F1F1F1
# Instructions whose result the emulator cannot predict for real hardware.
_MACHINE_DEPENDENT = {InsnClass.ENVIRONMENT, InsnClass.PRIVILEGED, InsnClass.IO}

# RISC-V F/D encodings (unprivileged spec, "RV32F/RV32D" tables): major opcodes,
# the fmt field (bits 26:25) and OP-FP's funct5 (bits 31:27).
_RV_OP_FP, _RV_FMA_OPCODES = 0x53, {0x43, 0x47, 0x4B, 0x4F}
_RV_FMT_S, _RV_FMT_D = 0, 1
_RV_FMIN_FMAX, _RV_FCVT_FP_FP, _RV_FMV_X_W = 0b00101, 0b01000, 0b11100


def _riscv_fp_unicorn_differs(word: int) -> bool:
    """An F/D instruction whose result Unicorn's QEMU 5.0 computes differently from
    the spec (2.2) that QEMU >= 5.2 and hardware follow: single-precision results
    are not NaN-boxed (upper 32 bits 0, not 1s) nor unboxed inputs read as the
    canonical NaN, and fmin/fmax use IEEE 754-2008 minNum (a signalling NaN input
    gives NaN, not the other operand).  Memory accesses are modelled exactly, so
    such probes are still vetted; only their result is no prediction.  fmv.x.w
    moves raw bits (same in both), flw boxes in both, fsw stores the low half."""
    opcode, fmt, funct5 = word & 0x7F, (word >> 25) & 3, word >> 27
    if opcode in _RV_FMA_OPCODES:
        return fmt == _RV_FMT_S
    if opcode != _RV_OP_FP:
        return False
    if funct5 == _RV_FMIN_FMAX:
        return True
    if funct5 == _RV_FCVT_FP_FP and fmt == _RV_FMT_D:
        return (word >> 20) & 0x1F == _RV_FMT_S  # fcvt.d.s reads a single
    return fmt == _RV_FMT_S and not (funct5 == _RV_FMV_X_W and (word >> 12) & 7 == 0)


@dataclass(frozen=True)
class VetVerdict:
    accepted: bool
    reason: str | None
    prediction: bytes | None  # Observation.comparable() of the emulated run
    instructions: int
    observation: Observation | None = None  # the emulated run, deterministic or not


class _X86Quirks:
    def emulator_size(self, window: bytes, size: int) -> int:
        return size

    def unpredictable(self, window: bytes) -> bool:
        return False


class _RiscvQuirks:
    """Where Unicorn's RISC-V (QEMU 5.0) cannot be taken at its word."""

    def emulator_size(self, window: bytes, size: int) -> int:
        # an instruction Unicorn cannot decode has no size: take the encoding's own
        return riscv_length(window) if size == _UNICORN_INVALID_SIZE else size

    def unpredictable(self, window: bytes) -> bool:
        return _riscv_fp_unicorn_differs(int.from_bytes(window, "little"))


_QUIRKS = {X86_64: _X86Quirks(), RISCV64: _RiscvQuirks()}


class Vetter:
    """One reusable Unicorn machine for one arch."""

    def __init__(self, arch: Arch) -> None:
        self.arch = arch
        self.emulator = ProbeEmulator(arch)
        self._code_base = AREA["code"].base(arch.probes)
        self._quirks = _QUIRKS[arch]

    def vet(self, probe: Probe) -> VetVerdict:
        allowed = ALLOWED[probe.privilege]
        code, base, arch, quirks = probe.code, self._code_base, self.arch, self._quirks
        window_size = arch.max_instruction_bytes
        # "unknown": (offset, reason) of an instruction we could not classify; fine
        # if the probe faults on it, a rejection if it carries on past it.
        state: dict = {"environment": False, "unknown": None}
        padded = code + bytes([arch.probes.code_fill]) * window_size  # as the machine sees it
        # Each address's verdict, worked out the first time it runs: its bytes cannot
        # change (a write to the code area is a violation), and a timing probe runs the
        # same few instructions thousands of times (classifying each again took a third
        # of the vetter's time)
        verdicts: dict[int, str | None] = {}

        def inspect(address: int, size: int) -> str | None:
            if state["unknown"] is not None:
                return state["unknown"][1]
            if address not in verdicts:
                verdicts[address] = classified(address, size)
            return verdicts[address]

        def classified(address: int, size: int) -> str | None:
            offset = address - base
            if offset >= len(code):
                # the fill past the probe's end (abi.CODE_FILL): it traps, the run's fault
                return None
            window = padded[offset : offset + window_size]
            decoded = classify(arch, window)
            emulator_size = quirks.emulator_size(window, size)
            if decoded.klass == InsnClass.UNDECODABLE:
                state["unknown"] = offset, (f"runs past +0x{offset:x} ({window[:8].hex()}),"
                                            " which capstone cannot decode")
            elif size != _UNICORN_INVALID_SIZE and decoded.size != emulator_size:
                state["unknown"] = offset, (f"runs past +0x{offset:x} ({decoded.text}):"
                                            f" capstone says {decoded.size} bytes,"
                                            f" the emulator {emulator_size}")
            elif decoded.klass not in allowed:
                return (f"{decoded.klass.value} instruction '{decoded.text}' at +0x{offset:x}"
                        f" is not allowed in a {probe.privilege.name.lower()} probe")
            elif decoded.klass in _MACHINE_DEPENDENT:
                state["environment"] = True
            elif quirks.unpredictable(window):
                state["environment"] = True  # vetted all the same, but no prediction
            return None

        run = self.emulator.run(probe, inspect)
        reason = self._reason(run, state["unknown"])
        if reason is not None:
            return VetVerdict(False, reason, None, run.instructions, run.observation)
        prediction = None if state["environment"] else run.observation.comparable()
        return VetVerdict(True, None, prediction, run.instructions, run.observation)

    def _reason(self, run: EmulatedRun, unknown: tuple[int, str] | None) -> str | None:
        if run.violation is not None:
            return run.violation
        if run.memory_violation is not None:
            mv = run.memory_violation
            ip = f"+0x{mv.ip - self._code_base:x}"
            code = AREA["code"]
            if (mv.access == "write"
                    and code.base(self.arch.probes) <= mv.address < code.end(self.arch.probes)):
                return f"writes its own code at 0x{mv.address:x} (ip {ip})"
            return f"{mv.access} at 0x{mv.address:x} is outside its areas (ip {ip})"
        obs = run.observation
        if obs.outcome == Outcome.TIMEOUT:
            return f"over budget: still running after {run.instructions - 1} instructions"
        if unknown is not None:
            offset, why = unknown
            faulted_there = (obs.outcome == Outcome.FAULT
                             and obs.fault.ip - self._code_base == offset)
            if not faulted_there:
                return why
        return None


@cache
def vetter(arch: Arch) -> Vetter:
    """The shared vetter for `arch` (one Unicorn instance per arch per process)."""
    return Vetter(arch)


def vet(probe: Probe) -> VetVerdict:
    return vetter(probe.arch).vet(probe)
