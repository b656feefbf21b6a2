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
from functools import cache, cached_property

from arch import RISCV64, X86_64, Arch
from contract.probe_abi import INPUT_SIZE, MAX_BUDGET, OUTPUT_SIZE
from contract.probe_abi import Outcome as ProbeOutcome
from probes.campaign import Campaign, Link, ProbesBroughtBoardDown
from probes.probe import Observation, Probe
from probes.run import POLICY
from probes.vet import vet
from sem import interp
from sem.interp import Evaluation, Memory
from sem.ir import Routine
from sem.lower import lower_for
from sem.vectors import DATA_ADDRESS, DATA_SIZE, Vector

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

    @cached_property  # asked for by every batch probe's input size
    def scalars(self) -> tuple[int, ...]:
        """Positions of the parameters carried in the input block."""
        return tuple(i for i, t in enumerate(self.params) if t != "ptr")

    @cached_property
    def input_memory_offset(self) -> int:
        return WORD * len(self.scalars)

    @cached_property
    def output_size(self) -> int:
        return OUTPUT_MEMORY_OFFSET + self.memory_size

    @cached_property
    def input_size(self) -> int:
        """One vector's input record: its scalars, then its memory window."""
        return self.input_memory_offset + self.memory_size

    def records_fitting(self, input_header: int, output_header: int) -> int:
        """The most vector records a probe carries after headers of these sizes: the
        input and output areas bound it."""
        return min((INPUT_SIZE - input_header) // max(self.input_size, 1),
                   (OUTPUT_SIZE - output_header) // self.output_size)

    def constants(self) -> dict[str, int]:
        consts = {"RESULT": RESULT_OFFSET, "OUT_MEMORY": OUTPUT_MEMORY_OFFSET,
                  "IN_MEMORY": self.input_memory_offset}
        consts.update({f"ARG{i}": WORD * slot for slot, i in enumerate(self.scalars)})
        return consts


def layout_of(r: Routine) -> ProbeLayout:
    return ProbeLayout(tuple(t.name for t in r.params), DATA_SIZE if r.uses_memory else 0)


# -- wrappers ---------------------------------------------------------------------------

def fits(layout: ProbeLayout, isa: str, registers: tuple[str, ...]) -> None:
    """Refuse a routine with more inputs than the ISA's argument registers."""
    if len(layout.params) > len(registers):
        raise ValueError(f"{len(layout.params)} inputs: the {isa} probe form passes at most"
                         f" {len(registers)} in registers; split the routine")


def x86_call(layout: ProbeLayout, record: str, call: str = f"call {ROUTINE_LABEL}",
             chain: str | None = None) -> list[str]:
    """One vector's call: its memory window into the scratch area (rbp), its arguments
    from the input record at `record` into registers (each plus `chain`, a register
    holding 0 that the last result fed: timed_calls' latency chain), `call`, and the
    result and the window into the output record (rbx).  No more params than registers
    (`fits`): the registers past them stay unused."""
    out = []
    for k in range(0, layout.memory_size, WORD):
        out += [f"mov rax, qword ptr [{record} + IN_MEMORY + {k}]",
                f"mov qword ptr [rbp + {k}], rax"]
    for i, (reg, kind) in enumerate(zip(X86_ARGS, layout.params, strict=False)):
        out.append(f"mov {reg}, rbp" if kind == "ptr"
                   else f"mov {reg}, qword ptr [{record} + ARG{i}]")
        if chain is not None:
            out.append(f"add {reg}, {chain}")
    out += [call, "mov qword ptr [rbx + RESULT], rax"]
    for k in range(0, layout.memory_size, WORD):
        out += [f"mov rcx, qword ptr [rbp + {k}]", f"mov qword ptr [rbx + OUT_MEMORY + {k}], rcx"]
    return out


def riscv_call(layout: ProbeLayout, record: str, output: str = "s1",
               call: str = f"jal ra, {ROUTINE_LABEL}", chain: str | None = None) -> list[str]:
    """As x86_call: the scratch area in s2, the output record at `output`."""
    out = []
    for k in range(0, layout.memory_size, WORD):
        out += [f"ld t1, (IN_MEMORY + {k})({record})", f"sd t1, {k}(s2)"]
    for i, (reg, kind) in enumerate(zip(RISCV_ARGS, layout.params, strict=False)):
        out.append(f"mv {reg}, s2" if kind == "ptr" else f"ld {reg}, ARG{i}({record})")
        if chain is not None:
            out.append(f"add {reg}, {reg}, {chain}")
    out += [call, f"sd a0, RESULT({output})"]
    for k in range(0, layout.memory_size, WORD):
        out += [f"ld t1, {k}(s2)", f"sd t1, (OUT_MEMORY + {k})({output})"]
    return out


def _x86_wrapper(layout: ProbeLayout) -> str:
    fits(layout, "x86-64", X86_ARGS)
    out = ["push rbx  ; rbx keeps the output buffer across the call",
           "push rbp  ; rbp keeps the scratch area (the routine's memory)",
           "push r12  ; the stack is 16-byte aligned at the call, as System V asks",
           "mov rbx, rsi", "mov rbp, rdx",
           "mov r11, rdi  ; the input block (rdi is about to be an argument)",
           *x86_call(layout, "r11"),
           "xor eax, eax  ; status 0: the routine ran to its end",
           "pop r12", "pop rbp", "pop rbx", "ret", f"{ROUTINE_LABEL}:"]
    return "\n".join(out)


def _riscv_wrapper(layout: ProbeLayout) -> str:
    fits(layout, "riscv64", RISCV_ARGS)
    out = ["addi sp, sp, -32  # room for ra, s1, s2; sp stays 16-byte aligned",
           "sd ra, 0(sp)", "sd s1, 8(sp)", "sd s2, 16(sp)",
           "mv s1, a1  # s1 keeps the output buffer across the call",
           "mv s2, a2  # s2 keeps the scratch area (the routine's memory)",
           "mv t0, a0  # the input block (a0 is about to be an argument)",
           *riscv_call(layout, "t0"),
           "li a0, 0  # status 0: the routine ran to its end",
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
        raise ProbesBroughtBoardDown(len(report.quarantined), "routine")
    runs = []
    for job, job_items in zip(jobs, prepared, strict=True):
        run = BoardRun(job)
        for v, (probe, _) in zip(job.vectors, job_items, strict=True):
            obs = report.results[probe.content_hash].observation
            want = interp.run(job.routine, v.args, v.memory)
            returned = obs.outcome == ProbeOutcome.RETURNED
            if not interp.admits(job.routine, v.args):
                run.agreed += 1  # outside the routine's domain every outcome is right
            elif returned and obs.status == 0 and probe_result(job.routine,
                                                               obs.output) == want:
                run.agreed += 1
            else:
                run.disagreements.append((v, want, obs))
            if returned and obs.cycles is not None:
                run.cycles.append(obs.cycles)
        runs.append(run)
    return runs


# -- batches: many input vectors in one probe -------------------------------------------------
#
# One probe per vector costs a whole probe round trip (vetting, a frame each way, the
# guest's entry and exit: ~70,000 guest cycles under TCG) to run a routine of a few
# instructions.  A batch probe carries up to `capacity` vectors and calls the routine
# once per vector in a loop:
#
#     input:  u64 count, then `count` records of IN_STRIDE bytes (the single form's input
#             block: the scalars, then the memory window)
#     output: `count` records of OUT_STRIDE bytes (the single form's output: the result
#             word, then the memory window after the routine ran)

BATCH_COUNT = 0  # input offset of the vector count
BATCH_RECORDS = WORD  # input offset of the first record
# Instructions a batch probe may run per vector (the watchdog's budget): the wrapper's
# loop is ~10 plus copies of the memory window; a lowered routine is short, but the
# RV64IM bit counts are loops of up to 64 rounds.
BATCH_BUDGET_PER_VECTOR = 2_000
# The watchdog's deadline is time (contract.probe_abi.watchdog_ns: 100 ns an instruction),
# and a host running more QEMUs than it has cores deschedules one for tens of ms: with
# 10,000 here a 56-vector probe had 12 ms, and in bench B (four TCG boards, their host
# loop and the oracle's checks on two cores) a sort5 calibration task on riscv64 without
# Zb*, tens of µs of work a probe, failed on TIMEOUTs, its reruns included.  50 ms.
BATCH_BUDGET_BASE = 500_000


@dataclass(frozen=True)
class RecordLayout:
    """A probe of many vectors: each one's inputs and outputs a record laid out as a
    single call's (`single`), one after another."""

    single: ProbeLayout

    @property
    def in_stride(self) -> int:
        return self.single.input_size

    @property
    def out_stride(self) -> int:
        return self.single.output_size


@dataclass(frozen=True)
class BatchLayout(RecordLayout):
    """Where each vector's inputs and outputs live in a batch probe."""

    @cached_property  # asked for by every batch probe (a 40,000-vector task's: 79 to 715)
    def capacity(self) -> int:
        """The most vectors one probe carries: the input and output areas bound it."""
        return self.single.records_fitting(BATCH_RECORDS, 0)

    def constants(self) -> dict[str, int]:
        return {**self.single.constants(), "COUNT": BATCH_COUNT, "RECORDS": BATCH_RECORDS,
                "IN_STRIDE": self.in_stride, "OUT_STRIDE": self.out_stride}


def _x86_batch_wrapper(layout: BatchLayout) -> str:
    single = layout.single
    fits(single, "x86-64", X86_ARGS)
    out = ["push rbx  ; rbx: the output record",
           "push rbp  ; rbp: the scratch area (the routine's memory)",
           "push r12  ; r12: the input record",
           "push r13  ; r13: vectors left",
           "push r14  ; five pushes: the stack is 16-byte aligned at the call, as System V asks",
           "mov rbx, rsi", "mov rbp, rdx",
           "mov r13, qword ptr [rdi + COUNT]", "lea r12, [rdi + RECORDS]",
           "batch_next:", "test r13, r13", "jz batch_done",
           *x86_call(single, "r12"),
           "add r12, IN_STRIDE", "add rbx, OUT_STRIDE", "dec r13", "jmp batch_next",
           "batch_done:", "xor eax, eax  ; status 0: every vector ran",
           "pop r14", "pop r13", "pop r12", "pop rbp", "pop rbx", "ret", f"{ROUTINE_LABEL}:"]
    return "\n".join(out)


def _riscv_batch_wrapper(layout: BatchLayout) -> str:
    single = layout.single
    fits(single, "riscv64", RISCV_ARGS)
    out = ["addi sp, sp, -48  # ra, s1-s4; sp stays 16-byte aligned",
           "sd ra, 0(sp)", "sd s1, 8(sp)", "sd s2, 16(sp)", "sd s3, 24(sp)", "sd s4, 32(sp)",
           "mv s1, a1  # s1: the output record",
           "mv s2, a2  # s2: the scratch area (the routine's memory)",
           "ld s4, COUNT(a0)  # s4: vectors left",
           "addi s3, a0, RECORDS  # s3: the input record",
           "batch_next:", "beqz s4, batch_done",
           *riscv_call(single, "s3"),
           "addi s3, s3, IN_STRIDE", "addi s1, s1, OUT_STRIDE", "addi s4, s4, -1",
           "j batch_next", "batch_done:", "li a0, 0  # status 0: every vector ran",
           "ld ra, 0(sp)", "ld s1, 8(sp)", "ld s2, 16(sp)", "ld s3, 24(sp)", "ld s4, 32(sp)",
           "addi sp, sp, 48", "ret", f"{ROUTINE_LABEL}:"]
    return "\n".join(out)


BATCH_WRAPPERS = {X86_64: _x86_batch_wrapper, RISCV64: _riscv_batch_wrapper}


@cache
def batch_wrapper_code(arch: Arch, layout: BatchLayout) -> bytes:
    """The assembled batch wrapper; the routine's bytes go right after it."""
    return arch.assemble(BATCH_WRAPPERS[arch](layout) + "\n", constants=layout.constants())


@dataclass(frozen=True)
class BatchForm:
    """A routine's machine code as batch probes: each probe runs up to `capacity` vectors."""

    routine: Routine
    arch: Arch
    layout: BatchLayout
    code: bytes  # batch wrapper + routine

    @property
    def capacity(self) -> int:
        return self.layout.capacity

    def chunks(self, vectors: list[Vector]) -> list[list[Vector]]:
        """`vectors` cut into probe-sized runs, in order."""
        step = self.capacity
        return [vectors[i:i + step] for i in range(0, len(vectors), step)]

    def probe(self, vectors: list[Vector]) -> Probe:
        """One probe running the routine on each of `vectors` (at most `capacity`)."""
        return self.packed_probe(b"".join(encode_inputs(self.layout.single, v)
                                          for v in vectors))

    def packed_probe(self, records: bytes) -> Probe:
        """One probe running the routine on input records packed back to back (each as
        the single form's input block), at most `capacity` of them."""
        count, rest = divmod(len(records), self.layout.in_stride)
        if rest or not 0 < count <= self.capacity:
            raise ValueError(f"{len(records)} bytes of input records: a batch probe of this"
                             f" routine carries 1..{self.capacity} records of"
                             f" {self.layout.in_stride} bytes; cut them with chunks()")
        budget = min(MAX_BUDGET, BATCH_BUDGET_BASE + BATCH_BUDGET_PER_VECTOR * count)
        return Probe(self.arch, self.code, input=count.to_bytes(WORD, "little") + records,
                     family=FAMILY, budget=budget, output_size=self.layout.out_stride * count)

    def packed_chunks(self, records: bytes) -> list[bytes]:
        """Packed input records cut into probe-sized runs, in order."""
        step = self.capacity * self.layout.in_stride
        return [records[i:i + step] for i in range(0, len(records), step)]

    def results(self, count: int, output: bytes) -> list[Evaluation]:
        """The `count` evaluations a batch probe's output holds, in the order sent."""
        stride = self.layout.out_stride
        if len(output) < stride * count:
            raise ValueError(f"{len(output)} output bytes; {count} vectors take {stride * count}")
        return [probe_result(self.routine, output[i * stride:(i + 1) * stride])
                for i in range(count)]


def batch_form(r: Routine, arch: Arch, code: bytes | None = None) -> BatchForm:
    """`code`: the routine's machine code (e.g. a stored implementation); lowered now when None."""
    routine_code = code if code is not None else arch.assemble(lower_for(arch)(r).text)
    layout = BatchLayout(layout_of(r))
    return BatchForm(r, arch, layout, batch_wrapper_code(arch, layout) + routine_code)
