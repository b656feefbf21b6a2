"""Any lowered routine as a probe (contract/probe_abi.py), for x86-64 and riscv64.

The lowering follows the platform calling convention (System V / RISC-V LP64),
so a probe is the routine's vetted bytes behind a small position-independent
wrapper that speaks the probe ABI:

    code:   [wrapper][routine]   the wrapper calls the routine PC-relatively
                                 (x86 `call rel32`, riscv `jal`): it sits right after
    input:  one u64 per scalar (non-pointer) input, in parameter order, then,
            for a routine that uses memory, its memory window (vectors.DATA_SIZE
            bytes), which the wrapper copies into the scratch area; every
            pointer input points at that copy
    output: RESULT_OFFSET: the routine's result register as a u64 (the bits above
            the result width unspecified, as the lowering leaves them), then at
            OUTPUT_MEMORY_OFFSET the memory window after the routine ran
    status: 0 (the routine ran to its end)

The wrapper keeps the output and scratch pointers in callee-saved registers
across the call, restores them, and keeps the stack 16-byte aligned at the call
as both conventions ask.  Layout offsets are declared once here and emitted into
the wrapper's assembly as constants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from sem import interp
from sem.interp import Evaluation, Memory
from sem.ir import Routine
from sem.lower import lower_for
from sem.vectors import DATA_ADDRESS, DATA_SIZE, Vector
from arch import RISCV64, X86_64, Arch
from contract.probe_abi import Outcome as ProbeOutcome
from probes.campaign import Campaign, Link
from probes.probe import Observation, Probe
from probes.run import POLICY
from probes.vet import vet

FAMILY = "sem"
WORD = 8
RESULT_OFFSET = 0
OUTPUT_MEMORY_OFFSET = 8
ROUTINE_LABEL = "probe_routine"  # the routine's first byte, right after the wrapper
X86_ARGS = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")
RISCV_ARGS = tuple(f"a{i}" for i in range(8))


@dataclass(frozen=True)
class ProbeLayout:
    """Where a routine's inputs and outputs live in the probe's input block and output buffer."""

    params: tuple[str, ...]  # type name per parameter ('ptr' or 'bv8'..'bv64')
    memory_size: int  # bytes of the memory window, 0 when the routine uses none

    @property
    def scalars(self) -> tuple[int, ...]:
        """Positions of the parameters carried in the input block."""
        return tuple(i for i, t in enumerate(self.params) if t != "ptr")

    @property
    def input_memory_offset(self) -> int:
        return WORD * len(self.scalars)

    @property
    def output_size(self) -> int:
        return OUTPUT_MEMORY_OFFSET + self.memory_size

    def constants(self) -> dict[str, int]:
        consts = {"RESULT": RESULT_OFFSET, "OUT_MEMORY": OUTPUT_MEMORY_OFFSET,
                  "IN_MEMORY": self.input_memory_offset}
        consts.update({f"ARG{i}": WORD * slot for slot, i in enumerate(self.scalars)})
        return consts


def layout_of(r: Routine) -> ProbeLayout:
    return ProbeLayout(tuple(t.name for t in r.params), DATA_SIZE if r.uses_memory else 0)


# -- wrappers ---------------------------------------------------------------------------

def _x86_wrapper(layout: ProbeLayout) -> str:
    if len(layout.params) > len(X86_ARGS):
        raise ValueError(f"{len(layout.params)} inputs: the x86-64 probe form passes at most"
                         f" {len(X86_ARGS)} in registers; split the routine")
    out = ["push rbx  ; rbx keeps the output buffer across the call",
           "push rbp  ; rbp keeps the scratch area (the routine's memory)",
           "push r12  ; the stack is 16-byte aligned at the call, as System V asks",
           "mov rbx, rsi", "mov rbp, rdx",
           "mov r11, rdi  ; the input block (rdi is about to be an argument)"]
    for k in range(0, layout.memory_size, WORD):
        out += [f"mov rax, qword ptr [r11 + IN_MEMORY + {k}]", f"mov qword ptr [rbp + {k}], rax"]
    for i, (reg, kind) in enumerate(zip(X86_ARGS, layout.params)):
        out.append(f"mov {reg}, rbp" if kind == "ptr" else f"mov {reg}, qword ptr [r11 + ARG{i}]")
    out += [f"call {ROUTINE_LABEL}", "mov qword ptr [rbx + RESULT], rax"]
    for k in range(0, layout.memory_size, WORD):
        out += [f"mov rcx, qword ptr [rbp + {k}]", f"mov qword ptr [rbx + OUT_MEMORY + {k}], rcx"]
    out += ["xor eax, eax  ; status 0: the routine ran to its end",
            "pop r12", "pop rbp", "pop rbx", "ret", f"{ROUTINE_LABEL}:"]
    return "\n".join(out)


def _riscv_wrapper(layout: ProbeLayout) -> str:
    if len(layout.params) > len(RISCV_ARGS):
        raise ValueError(f"{len(layout.params)} inputs: the riscv64 probe form passes at most"
                         f" {len(RISCV_ARGS)} in registers; split the routine")
    out = ["addi sp, sp, -32  # room for ra, s1, s2; sp stays 16-byte aligned",
           "sd ra, 0(sp)", "sd s1, 8(sp)", "sd s2, 16(sp)",
           "mv s1, a1  # s1 keeps the output buffer across the call",
           "mv s2, a2  # s2 keeps the scratch area (the routine's memory)",
           "mv t0, a0  # the input block (a0 is about to be an argument)"]
    for k in range(0, layout.memory_size, WORD):
        out += [f"ld t1, (IN_MEMORY + {k})(t0)", f"sd t1, {k}(s2)"]
    for i, (reg, kind) in enumerate(zip(RISCV_ARGS, layout.params)):
        out.append(f"mv {reg}, s2" if kind == "ptr" else f"ld {reg}, ARG{i}(t0)")
    out += [f"jal ra, {ROUTINE_LABEL}", "sd a0, RESULT(s1)"]
    for k in range(0, layout.memory_size, WORD):
        out += [f"ld t1, {k}(s2)", f"sd t1, (OUT_MEMORY + {k})(s1)"]
    out += ["li a0, 0  # status 0: the routine ran to its end",
            "ld ra, 0(sp)", "ld s1, 8(sp)", "ld s2, 16(sp)", "addi sp, sp, 32", "ret",
            f"{ROUTINE_LABEL}:"]
    return "\n".join(out)


WRAPPERS = {X86_64: _x86_wrapper, RISCV64: _riscv_wrapper}


@cache
def wrapper_code(arch: Arch, layout: ProbeLayout) -> bytes:
    """The assembled wrapper; the routine's bytes go right after it."""
    return arch.assemble(WRAPPERS[arch](layout) + "\n", constants=layout.constants())


# -- probes and their results ---------------------------------------------------------------

@dataclass(frozen=True)
class ProbeForm:
    """A routine's machine code in probe form: build once, make one probe per input vector."""

    arch: Arch
    layout: ProbeLayout
    code: bytes  # wrapper + routine

    def probe(self, inputs: Vector) -> Probe:
        return Probe(self.arch, self.code, input=encode_inputs(self.layout, inputs), family=FAMILY,
                     output_size=self.layout.output_size)


def probe_form(r: Routine, arch: Arch, code: bytes | None = None) -> ProbeForm:
    """`code`: the routine's machine code (e.g. a stored implementation); lowered now when None."""
    routine_code = code if code is not None else arch.assemble(lower_for(arch)(r).text)
    layout = layout_of(r)
    return ProbeForm(arch, layout, wrapper_code(arch, layout) + routine_code)


def routine_probe(r: Routine, arch: Arch, inputs: Vector, code: bytes | None = None) -> Probe:
    """One probe running `r` on `inputs` (a vectors.Vector: args, memory window)."""
    return probe_form(r, arch, code).probe(inputs)


def encode_inputs(layout: ProbeLayout, inputs: Vector) -> bytes:
    if len(inputs.args) != len(layout.params):
        raise ValueError(f"the routine takes {len(layout.params)} inputs, got {len(inputs.args)}")
    block = b"".join((inputs.args[i] & (2**64 - 1)).to_bytes(WORD, "little")
                     for i in layout.scalars)
    if layout.memory_size:
        if inputs.memory is None or len(inputs.memory.data) != layout.memory_size:
            raise ValueError(f"a memory routine's probe needs a {layout.memory_size}-byte memory"
                             " window;"
                             " make vectors with sem.vectors.generate")
        block += inputs.memory.data
    return block


def probe_result(r: Routine, output: bytes) -> Evaluation:
    """Decode a probe's output buffer into what the interpreter gives (interp.run)."""
    layout = layout_of(r)
    if len(output) < layout.output_size:
        raise ValueError(f"{len(output)} output bytes; the probe form writes {layout.output_size}")
    raw = int.from_bytes(output[RESULT_OFFSET:RESULT_OFFSET + WORD], "little")
    result = None if r.result is None else raw & ((1 << r.result.width) - 1)
    memory = None
    if layout.memory_size:
        window = output[OUTPUT_MEMORY_OFFSET:OUTPUT_MEMORY_OFFSET + layout.memory_size]
        memory = Memory(DATA_ADDRESS, bytes(window))
    return Evaluation(result, memory)


# -- running on a board ---------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    """One routine's probes to run: its probe form and the input vectors."""

    routine: Routine
    form: ProbeForm
    vectors: list[Vector]


@dataclass
class BoardRun:
    """A routine's probes as the board ran them: agreement with the interpreter, and timings."""

    job: Job
    agreed: int = 0
    disagreements: list[tuple[Vector, Evaluation, Observation]] = field(default_factory=list)
    # per returned probe, as the guest measured around the whole run (entry to exit stub)
    cycles: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.agreed == len(self.job.vectors)


def _vetted(job: Job) -> list[tuple[Probe, bytes | None]]:
    items = []
    for v in job.vectors:
        probe = job.form.probe(v)
        verdict = vet(probe)
        if not verdict.accepted:
            name = job.routine.hint_name or "a routine"
            raise ValueError(f"the vetter rejects {name} in probe form on {job.form.arch}:"
                             f" {verdict.reason}; this is a probe-form bug, please report it")
        items.append((probe, verdict.prediction))
    return items


def run_on_link(link: Link, jobs: list[Job], campaign: Campaign | None = None) -> list[BoardRun]:
    """Vet every probe, run them all in one campaign over `link` (a QemuLink, say), and check
    each result against the interpreter.  One campaign per boot: a campaign numbers its
    runs from 0 and the guest answers a run id it has seen from its result cache; to run
    jobs again on the same boot, pass the same `campaign` each time (its run ids go on)."""
    prepared = [_vetted(job) for job in jobs]
    items = [item for job_items in prepared for item in job_items]
    report = (campaign or Campaign(link, POLICY)).run(items)
    if report.quarantined:
        raise RuntimeError(f"{len(report.quarantined)} routine probe(s) brought the board down;"
                           " the campaign report keeps their bytes")
    runs = []
    for job, job_items in zip(jobs, prepared):
        run = BoardRun(job)
        for v, (probe, _) in zip(job.vectors, job_items):
            obs = report.results[probe.content_hash].observation
            want = interp.run(job.routine, v.args, v.memory)
            returned = obs.outcome == ProbeOutcome.RETURNED
            if returned and obs.status == 0 and probe_result(job.routine, obs.output) == want:
                run.agreed += 1
            else:
                run.disagreements.append((v, want, obs))
            if returned and obs.cycles is not None:
                run.cycles.append(obs.cycles)
        runs.append(run)
    return runs
