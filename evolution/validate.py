"""Validating each form's semantics against a machine: one instruction with chosen
registers, flags and memory, run as a probe (contract/probe_abi.py), its output compared
with what the IR semantics predicts.

A case's probe is position-independent code in the probe ABI (input block,
output buffer, scratch area): a head that saves the callee-saved registers,
copies the case's memory window into the scratch area, sets the flags and loads
every testable register from the input block; the instruction; a tail that
stores every register, the flags and the memory window into the output buffer
and returns 0.  The same probes run in Unicorn here (`run_unicorn`) and in a
guest through a campaign (`run_on_link`).

    input/output:  register r at 8*r (x86: by hardware number; riscv: x-number),
                   flags word at FLAGS, memory window (WINDOW bytes) at MEMORY

Bits the semantics leaves undefined are not compared: the prediction is made
twice, with every undefined value all zeros and all ones, and only the bits
that agree are `defined`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache

import unicorn as uc
from unicorn import x86_const

from contract.probe_abi import AREA, Outcome
from evolution.isa import Form, Isa
from evolution.program import Insn, MachineProgram, random_insn, source_line
from evolution.semantics import compose
from probes.campaign import Campaign, Link, ProbesBroughtBoardDown
from probes.campaign_state import CampaignResult
from probes.probe import Observation, Probe
from probes.run import POLICY
from probes.vet import vet
from sem import interp
from sem.interp import Memory

WINDOW = 64  # bytes of memory a case sets and reads back, at the scratch area's base
FAMILY = "evolution-semantics"
X86_FLAG_BITS = {"CF": 0, "PF": 2, "ZF": 6, "SF": 7, "OF": 11}
X86_FLAGS_BASE = 0x202  # reserved bit 1 and IF, as the probe ABI enters
EDGES = (0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF,
         0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF,
         0x8000000000000000, 0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFE, 0xFFFFFFFF80000000)


@dataclass(frozen=True)
class CaseLayout:
    registers: int

    @property
    def flags(self) -> int:
        return 8 * self.registers

    @property
    def memory(self) -> int:
        return self.flags + 8

    @property
    def size(self) -> int:
        return self.memory + WINDOW


@dataclass(frozen=True)
class Case:
    insn: Insn
    probe: Probe
    expected: bytes  # the output block the semantics predicts (undefined bits as 0)
    defined: bytes  # 1 bits: compared


@dataclass(frozen=True)
class Disagreement:
    case: Case
    got: bytes | None  # None: the machine did not return (a fault)
    detail: str


def testable(isa: Isa) -> tuple[int, ...]:
    """Registers a case sets and reads: all but the stack pointer (and riscv's x0, gp, tp)."""
    skip = {"rsp", "zero", "sp", "gp", "tp"}
    return tuple(i for i, name in enumerate(isa.registers) if name not in skip)


# the probe's head and tail ----------------------------------------------------------

def _x86_head(layout: CaseLayout, regs: tuple[int, ...], names, scratch: int) -> str:
    out = ["push rbx", "push rbp", "push r12", "push r13", "push r14", "push r15",
           "push rsi  ; the output buffer, for the tail"]
    for k in range(0, WINDOW, 8):  # rdx = the scratch area at entry
        out += [f"mov rax, qword ptr [rdi + {layout.memory + k}]",
                f"mov qword ptr [rdx + {k}], rax"]
    out += [f"mov rax, qword ptr [rdi + {layout.flags}]", "push rax", "popfq"]
    rdi = names.index("rdi")
    out += [f"mov {names[r]}, qword ptr [rdi + {8 * r}]" for r in regs if r != rdi]
    out.append(f"mov rdi, qword ptr [rdi + {8 * rdi}]")
    return "\n".join(out) + "\n"


def _x86_tail(layout: CaseLayout, regs: tuple[int, ...], names, scratch: int) -> str:
    rsi = names.index("rsi")
    out = ["pushfq", "push rsi", "mov rsi, qword ptr [rsp + 16]"]
    out += [f"mov qword ptr [rsi + {8 * r}], {names[r]}" for r in regs if r != rsi]
    out += ["pop rax", f"mov qword ptr [rsi + {8 * rsi}], rax",
            "pop rax", f"mov qword ptr [rsi + {layout.flags}], rax",
            f"mov rdx, {scratch}"]
    for k in range(0, WINDOW, 8):
        out += [f"mov rax, qword ptr [rdx + {k}]",
                f"mov qword ptr [rsi + {layout.memory + k}], rax"]
    out += ["add rsp, 8", "pop r15", "pop r14", "pop r13", "pop r12", "pop rbp", "pop rbx",
            "xor eax, eax", "ret"]
    return "\n".join(out) + "\n"


# what the head saves: ra, the callee-saved registers, a1 (output) and a2 (scratch)
_RISCV_SAVED = ("ra", "s0", "s1", *(f"s{i}" for i in range(2, 12)), "a1", "a2")


def _riscv_head(layout: CaseLayout, regs: tuple[int, ...], names, scratch: int) -> str:
    out = ["addi sp, sp, -128"] + [f"sd {r}, {8 * k}(sp)" for k, r in enumerate(_RISCV_SAVED)]
    for k in range(0, WINDOW, 8):  # a2 = the scratch area at entry
        out += [f"ld t0, {layout.memory + k}(a0)", f"sd t0, {k}(a2)"]
    a0 = names.index("a0")
    out += [f"ld {names[r]}, {8 * r}(a0)" for r in regs if r != a0]
    out.append(f"ld a0, {8 * a0}(a0)")
    return "\n".join(out) + "\n"


def _riscv_tail(layout: CaseLayout, regs: tuple[int, ...], names, scratch: int) -> str:
    t0 = names.index("t0")
    out_slot, scratch_slot = 8 * _RISCV_SAVED.index("a1"), 8 * _RISCV_SAVED.index("a2")
    out = ["addi sp, sp, -16", "sd t0, 0(sp)", f"ld t0, {16 + out_slot}(sp)"]
    out += [f"sd {names[r]}, {8 * r}(t0)" for r in regs if r != t0]
    out += ["ld t1, 0(sp)", f"sd t1, {8 * t0}(t0)", "addi sp, sp, 16",
            f"ld t1, {scratch_slot}(sp)"]
    for k in range(0, WINDOW, 8):
        out += [f"ld t2, {k}(t1)", f"sd t2, {layout.memory + k}(t0)"]
    out += [f"ld {r}, {8 * k}(sp)" for k, r in enumerate(_RISCV_SAVED)]
    out += ["addi sp, sp, 128", "li a0, 0", "ret"]
    return "\n".join(out) + "\n"


WRAPPERS = {"x86_64": (_x86_head, _x86_tail), "riscv64": (_riscv_head, _riscv_tail)}


@cache
def wrapper(isa: Isa) -> tuple[bytes, bytes]:
    """The head and tail bytes (position-independent, so any instruction fits between)."""
    layout, regs = CaseLayout(len(isa.registers)), testable(isa)
    head, tail = WRAPPERS[isa.name]
    scratch = AREA["scratch"].base(isa.arch.probes)
    return (isa.assemble(head(layout, regs, isa.registers, scratch), frozenset()),
            isa.assemble(tail(layout, regs, isa.registers, scratch), frozenset()))


# cases --------------------------------------------------------------------------------

def _value(rng: random.Random) -> int:
    return rng.choice(EDGES) if rng.random() < 0.5 else rng.getrandbits(rng.choice((5, 8, 32, 64)))


def _word(block: bytearray, offset: int, value: int, mask: int) -> None:
    block[offset : offset + 8] = (value & mask).to_bytes(8, "little")


def case(isa: Isa, insn: Insn, registers: list[int], flags: list[int], memory: bytes,
         body: bytes) -> Case:
    """The case of `insn` (whose machine code is `body`) on this state."""
    layout = CaseLayout(len(isa.registers))
    scratch = AREA["scratch"].base(isa.arch.probes)
    block = bytearray(layout.size)
    for r in testable(isa):
        _word(block, 8 * r, registers[r], 2**64 - 1)
    flag_word = X86_FLAGS_BASE if isa.flags else 0
    for name, value in zip(isa.flags, flags, strict=True):
        flag_word |= value << X86_FLAG_BITS[name]
    _word(block, layout.flags, flag_word, 2**64 - 1)
    block[layout.memory :] = memory
    program = MachineProgram(isa.name, (insn,))
    comp = compose(isa, program)
    window = Memory(scratch, memory)
    predictions = []
    for undefined in (0, 2**64 - 1):
        out = bytearray(layout.size)
        args = comp.inputs(registers, flags, undefined)
        for r in testable(isa):
            value = interp.run(comp.routine(comp.registers[r]), args, window).result
            _word(out, 8 * r, value, 2**64 - 1)
        word = 0
        for name in isa.flags:
            value = interp.run(comp.routine(comp.flags[name]), args, window).result
            word |= value << X86_FLAG_BITS[name]
        _word(out, layout.flags, word, 2**64 - 1)
        final = interp.run(comp.routine(None), args, window).memory
        out[layout.memory :] = final.data
        predictions.append(bytes(out))
    low, high = predictions
    defined = bytearray(~(a ^ b) & 0xFF for a, b in zip(low, high, strict=True))
    flag_mask = sum(1 << X86_FLAG_BITS[f] for f in isa.flags)
    flag_bits = int.from_bytes(defined[layout.flags : layout.flags + 8], "little") & flag_mask
    defined[layout.flags : layout.flags + 8] = flag_bits.to_bytes(8, "little")
    for r in set(range(len(isa.registers))) - set(testable(isa)):
        defined[8 * r : 8 * r + 8] = bytes(8)
    expected = bytes(a & d for a, d in zip(low, defined, strict=True))
    head, tail = wrapper(isa)
    code = head + body + tail
    probe = Probe(isa.arch, code, input=bytes(block), family=FAMILY, output_size=layout.size)
    return Case(insn, probe, expected, bytes(defined))


def cases(isa: Isa, form: Form, count: int, seed: int = 0) -> list[Case]:
    """`count` random instances of `form` on random (edge-biased) registers, flags and memory;
    memory operands address the window through their base register."""
    rng = random.Random(f"{form.name}/{seed}")
    regs = testable(isa)
    usable = tuple(r for r in regs if isa.registers[r] not in isa.abi.preserved) or regs
    scratch = AREA["scratch"].base(isa.arch.probes)
    states = []
    for _ in range(count):
        insn = random_insn(isa, form, rng, usable, usable, tuple(range(0, WINDOW - 8 + 1, 4)))
        registers = [_value(rng) for _ in isa.registers]
        if isa.zero_register is not None:
            registers[isa.zero_register] = 0
        if form.memory is not None:
            registers[insn.regs[form.register_operands.index(
                next(i for i, o in enumerate(form.operands) if o.kind == "mem"))]] = scratch
        first, second = (insn.regs + (0, 0))[:2]
        if form.size > 1 and len(states) % 2 and second != isa.zero_register:
            # a compound branches on its registers, and random values are seldom equal, zero
            # or of opposite signs: every other case makes its second register hold the
            # first's value, zero or the first's negation, so that both ways of the branch run
            value = registers[first]
            registers[second] = (value, 0, -value % 2**64)[len(states) // 2 % 3]
        flags = [rng.getrandbits(1) for _ in isa.flags]
        states.append((insn, registers, flags, rng.randbytes(WINDOW)))
    bodies = isa.assemble_each([source_line(isa, s[0]) for s in states], frozenset(isa.features))
    return [case(isa, *state, body) for state, body in zip(states, bodies, strict=True)]


def compare(c: Case, output: bytes | None) -> Disagreement | None:
    if output is None:
        return Disagreement(c, None, "the machine did not run it to its end")
    got = bytes(a & d for a, d in zip(output, c.defined, strict=False))
    if got == c.expected:
        return None
    first = next(i for i in range(len(got)) if got[i] != c.expected[i])
    return Disagreement(c, output, f"output byte {first} differs: machine {output[first]:#04x},"
                                   f" semantics {c.expected[first]:#04x}"
                                   f" (defined {c.defined[first]:#04x})")


# running them ---------------------------------------------------------------------------

# Unicorn CPU models with every feature we model, where the default lacks some (the
# probe vetter's default x86-64 model has no ADX).
UNICORN_CPU = {"x86_64": x86_const.UC_CPU_X86_BROADWELL}
# Extensions Unicorn (QEMU 5.0 inside) does not implement: their forms are validated in a
# guest only (QEMU 7.2's rv64 has them).
UNICORN_LACKS = {"x86_64": frozenset(), "riscv64": frozenset({"zba", "zbb", "zbs"})}


class UnicornMachine:
    """The probe ABI's areas, entry registers and exit stub in a Unicorn."""

    def __init__(self, isa: Isa):
        self.isa, self.platform = isa, isa.arch.probes
        self.uc = isa.arch.unicorn()
        if isa.name in UNICORN_CPU:
            self.uc.ctl_set_cpu_model(UNICORN_CPU[isa.name])  # before any mapping, as Unicorn asks
        for name in ("code", "exit", "input", "output", "stack"):
            self.uc.mem_map(AREA[name].base(self.platform), AREA[name].size)
        self.uc.mem_map(AREA["scratch"].base(self.platform), 0x10000)
        self.uc.mem_write(self.platform.exit_address, self.platform.exit_stub)

    def run(self, probe: Probe) -> bytes | None:
        e, p, arch = self.uc, self.platform, self.isa.arch
        code = AREA["code"].base(p)
        e.mem_write(code, probe.code)
        e.ctl_remove_cache(code, code + len(probe.code))  # else it runs the last probe's blocks
        e.mem_write(AREA["input"].base(p), probe.input)
        e.mem_write(AREA["output"].base(p), bytes(probe.output_size))
        entry = p.entry_state(len(probe.input))
        for name, value in entry.registers.items():
            e.reg_write(arch.unicorn_register(name), value)
        if p.return_register is None:  # the return address sits at [sp]
            slot = entry.registers[p.stack_pointer]
            e.mem_write(slot, entry.return_address.to_bytes(8, "little"))
        try:
            e.emu_start(code, p.exit_address, count=10_000)
        except uc.UcError:
            return None
        return bytes(e.mem_read(AREA["output"].base(p), probe.output_size))


@dataclass(frozen=True)
class Erratum:
    """A known way the emulator departs from the architecture manual, and which cases it hits."""

    why: str
    hits: Callable[[Case], bool]


def _upper_source_bits(c: Case) -> bool:
    sources = c.insn.regs[1:]
    return any(int.from_bytes(c.probe.input[8 * r : 8 * r + 8], "little") >> 32 for r in sources)


def _bzhi_index_past_width(width: int) -> Callable[[Case], bool]:
    def hits(c: Case) -> bool:
        index = c.insn.regs[2]
        return int.from_bytes(c.probe.input[8 * index : 8 * index + 8], "little") & 0xFF >= width
    return hits


UNICORN_ERRATA = {
    ("x86_64", "pdep r32, r32, r32"): Erratum(
        "Unicorn (QEMU 5.0) deposits with all 64 bits of a 32-bit pdep's sources; the SDM uses"
        " their low 32", _upper_source_bits),
    **{("x86_64", f"bzhi r{w}, r{w}, r{w}"): Erratum(
        "Unicorn (QEMU 5.0) clamps a bzhi index past the operand size to size-1 and so clears"
        " the top bit; the SDM leaves the source whole", _bzhi_index_past_width(w))
       for w in (32, 64)},
}


def run_unicorn(isa: Isa, batch: list[Case]) -> list[Disagreement]:
    machine = UnicornMachine(isa)
    return [d for c in batch if (d := compare(c, machine.run(c.probe))) is not None]


def run_on_link(link: Link, batch: list[Case], campaign: Campaign | None = None,
                on_results: Callable[[list[CampaignResult]], None] | None = None,
                stored: Callable[[list[Probe]], Mapping[bytes, Observation]] | None = None,
                ) -> list[Disagreement]:
    """The cases as one campaign on a board (a QemuLink, say): the guest is the machine.
    Each probe is vetted first; one Unicorn cannot run (riscv Zb*) is accepted all the same,
    its fault being what the vetter predicts, and runs in the guest.  To run more probes on
    the same boot later, pass the same `campaign` each time (a new one would number its
    runs from 0 again, and the guest answers a run id it has seen from its cache).
    `on_results` gets the campaign's results of the batch (to file them in the capability
    store, say); `stored` (optional) gives the observations a store already holds for
    this board, and only the cases it lacks run."""
    observed: dict[bytes, Observation] = (
        dict(stored([c.probe for c in batch])) if stored is not None else {})
    to_run = [c for c in batch if c.probe.content_hash not in observed]
    items = []
    for c in to_run:
        verdict = vet(c.probe)
        if not verdict.accepted:
            raise ValueError(f"the vetter rejects the case probe of {c.insn.form}:"
                             f" {verdict.reason}; this is a probe-form bug, please report it")
        items.append((c.probe, verdict.prediction))
    if items:
        report = (campaign or Campaign(link, POLICY)).run(items)
        if report.quarantined:
            raise ProbesBroughtBoardDown(len(report.quarantined), "case")
        if on_results is not None:
            on_results([report.results[c.probe.content_hash] for c in to_run])
        observed.update((h, r.observation) for h, r in report.results.items())
    out = []
    for c in batch:
        obs = observed[c.probe.content_hash]
        returned = obs.outcome == Outcome.RETURNED and obs.status == 0
        d = compare(c, obs.output if returned else None)
        if d is not None:
            out.append(d)
    return out
