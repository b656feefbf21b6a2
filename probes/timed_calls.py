"""Cycles per call of a routine's code, measured in the guest by a timed loop.

A probe of the sem form (probes/routine.py) is timed by the guest around the whole run:
the wrapper, the kernel's entry and exit and, under KVM, the VM exits of the probe line
are all in the count, and they swamp a routine of a few instructions.  This form times
the code itself, in the manner of nanoBench: the wrapper calls the code once per input
vector, every vector in turn, N rounds, between two serialising reads of the cycle
counter (x86-64 `lfence; rdtsc; lfence`, riscv64 `csrr cycle` as the timing family
reads it), and does the same
with an empty function (its return alone) through the very same loop instructions, the
two passes alternating `repeats` times in one run.  The difference of a pair of passes,
divided by the calls, is the code's cycles per call with the loop's overhead (argument
loads, the call and a return, copying the memory window, the counter reads) taken out;
the median over the pairs is the figure, the quartiles its spread.

Each code is timed with its entry at every offset of PLACEMENTS in its cache line in turn,
and its pairs are pooled: where a code lands decides how the core fetches and predicts
it, and one fixed place is one code's luck and another's loss (below).

    input:  CALLS u64 N (rounds per pass, a call per vector each, at least 1), REPEATS u64 (pairs of
            passes, 1..MAX_REPEATS), COUNT u64 (vectors), PART u64 (only an identity:
            probes that differ in nothing else are distinct), then COUNT records at
            RECORDS, each the sem form's input block (ProbeLayout: the scalars, the
            memory window)
    output: at TIMES, per pair, the empty pass's cycles then the code's (u64 each);
            at OUT_RECORDS, per vector, the sem form's output (the result word, the
            memory window) as the code's last call left it
    code:   [wrapper][fill to 64][empty: return][fill to 64 + placement][the code]

Each call gets the next vector's inputs, as a stream of calls does: a vector's calls in
a row would let the core's branch predictor learn that vector's way through a code that
branches on its inputs within a few calls (gcc's sort3, its p20), which a stream of
different inputs does not.  The memory window is copied into the scratch area before
every call (the sorts sort in place) and out after it, in both passes.
Every vector's last answer is checked against the interpreter like the sem form's.

Chained (`timed_form(..., chained=True)`, routines with a scalar result and no memory):
each call's scalar arguments get the previous call's result times 0 added, so a call
starts only once the one before has finished, and the subtracted function is the
identity (its first argument handed back); the figure is then the code's latency from
its arguments to its result, where independent calls give its cost in a stream of calls
(which an out-of-order core overlaps with the loop's own work).

Under TCG the counts describe QEMU (with `-icount shift=0` one tick per instruction
executed: a code of k instructions before its return measures k per call, less the
identity's one on x86-64 when chained), under KVM the silicon.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from arch import RISCV64, X86_64, Arch
from contract.probe_abi import MAX_BUDGET, Outcome
from probes.campaign import Campaign, Link, ProbesBroughtBoardDown
from probes.probe import Observation, Probe
from probes.routine import (
    FAMILY,
    RISCV_ARGS,
    WORD,
    X86_ARGS,
    RecordLayout,
    encode_inputs,
    fits,
    layout_of,
    probe_result,
    riscv_call,
    x86_call,
)
from probes.run import POLICY
from probes.vet import vet
from sem import interp
from sem.interp import Evaluation
from sem.ir import Routine
from sem.vectors import Vector

CALLS, REPEATS, COUNT, PART = 0, 8, 16, 24  # input offsets of the header words
RECORDS = 32  # input offset of the first vector record
MAX_REPEATS = 32
TIMES = 0  # output offset of the pass counts
OUT_RECORDS = TIMES + 2 * WORD * MAX_REPEATS  # output offset of the first output record
ALIGN = 64  # the empty function starts a cache line, the code a place in one (PLACEMENTS)
# Where a code's entry falls in its 64-byte line, each in turn: gcc aligns functions to 16
# bytes, so a linker may put a code's entry at any of these.  Measured under nested KVM
# (AMD EPYC family 25) with every code at the start of a line: gcc's p20 for qemu64, 33
# bytes, 1.88 cycles per call and 4.19 latency, any change to its bytes (a dropped
# `rep`, `xor` or `mov`) 2.10 and 4.94; ours, 22 bytes, 2.10 and 4.94, and the same
# instructions behind 11-12 bytes of `nop` (its return at byte 32 or 33 of the line) 1.85
# to 1.93 and 4.23.  Timing every code at one place measured where its return fell, not
# what it does (the layout bias of Mytkowicz et al., "Producing wrong data without doing
# anything obviously wrong", 2009; pooling placements is Stabilizer's remedy, Curtsinger
# and Berger 2013, in its simplest form).
PLACEMENTS = (0, 16, 32, 48)
# Instructions the watchdog allows per call of a pass (both passes count): the loop's
# ~10, the memory window's copies (16 for the sorts) and the code (RV64IM bit counts
# loop up to 64 rounds); and per probe for the rest.
BUDGET_PER_CALL = 300
BUDGET_BASE = 10_000


@dataclass(frozen=True)
class TimedLayout(RecordLayout):
    """Where a timed probe's header, records and counts live."""

    chained: bool = False  # each call's arguments wait for the call before it (latency)

    def __post_init__(self) -> None:
        if self.chained and (self.single.memory_size or not self.single.scalars):
            raise ValueError("a chained timed probe passes each result into the next call's"
                             " scalar arguments: it times routines with a scalar result and"
                             " no memory")

    @property
    def capacity(self) -> int:
        """The most vectors one probe carries: the input and output areas bound it."""
        return self.single.records_fitting(RECORDS, OUT_RECORDS)

    def constants(self) -> dict[str, int]:
        return {**self.single.constants(), "CALLS": CALLS, "REPEATS": REPEATS, "COUNT": COUNT,
                "RECORDS": RECORDS, "TIMES": TIMES, "OUT_RECORDS": OUT_RECORDS,
                "IN_STRIDE": self.in_stride, "OUT_STRIDE": self.out_stride}


# -- wrappers ------------------------------------------------------------------------------
#
# Both share one shape: a pass is a subroutine run twice per repeat, once with the empty
# function's address in a register and once with the code's, so the two passes execute
# the same instructions at the same addresses and differ only in the callee.

# Chained: the previous call's result times 0, then times 1 twice (9 cycles of latency
# on x86-64 cores, 3 a multiply), added to every scalar argument: the values stay the
# vector's, but each call starts only once the one before has its result, so both passes
# are bound by that chain, not by the loop's throughput, and their difference is the
# code's latency from its arguments to its result.
X86_CHAIN = ["imul r10, rax, 0", "imul r10, r10, 1", "imul r10, r10, 1"]
RISCV_CHAIN = ["mul t3, a0, zero", "slli t3, t3, 1", "slli t3, t3, 1"]


def _x86_call(layout: TimedLayout) -> list[str]:
    """One call of the pass loop: r12 the input record, rbx the output record, rbp the
    scratch area, r14 the callee."""
    if not layout.chained:
        return x86_call(layout.single, "r12", "call r14")
    return [*X86_CHAIN, *x86_call(layout.single, "r12", "call r14", chain="r10")]


def _x86_wrapper(layout: TimedLayout) -> str:
    fits(layout.single, "x86-64", X86_ARGS)
    stamp = "lfence\nrdtsc\nshl rdx, 32\nor rax, rdx"  # the counter in rax, serialised before
    # The frame: six callee-saved registers pushed, then 40 bytes of locals, so rsp is
    # 16-byte aligned in the pass (one return address and 8 bytes more below) at each call.
    # Locals at [rsp + k] outside a pass, [rsp + 16 + k] inside: 0 input, 8 output,
    # 16 the next count's address, 24 repeats left, 32 the pass's start.
    out = ["push rbx", "push rbp", "push r12", "push r13", "push r14", "push r15",
           "sub rsp, 40",
           "mov qword ptr [rsp], rdi", "mov qword ptr [rsp + 8], rsi", "mov rbp, rdx",
           "lea rax, [rsi + TIMES]", "mov qword ptr [rsp + 16], rax",
           "mov rax, qword ptr [rdi + REPEATS]", "mov qword ptr [rsp + 24], rax",
           "timed_repeat:", "cmp qword ptr [rsp + 24], 0", "je timed_done",
           "lea r14, [rip + timed_empty]", "call timed_pass",
           "lea r14, [rip + probe_routine]", "call timed_pass",
           "dec qword ptr [rsp + 24]", "jmp timed_repeat",
           "timed_done:", "xor eax, eax  ; status 0: every pass ran",
           "add rsp, 40", "pop r15", "pop r14", "pop r13", "pop r12", "pop rbp", "pop rbx",
           "ret",
           "timed_pass:  ; r14: the callee; counts its N rounds of calls into [next count]",
           "sub rsp, 8",
           "mov r13, qword ptr [rsp + 16]", "mov r13, qword ptr [r13 + CALLS]",
           stamp, "mov qword ptr [rsp + 48], rax", "lfence",
           "timed_round:  ; r13: rounds left, each a call per vector, every vector in turn",
           "test r13, r13", "jz timed_end",
           "mov r12, qword ptr [rsp + 16]", "mov r15, qword ptr [r12 + COUNT]",
           "add r12, RECORDS", "mov rbx, qword ptr [rsp + 24]", "add rbx, OUT_RECORDS",
           "timed_call:", *_x86_call(layout),
           "add r12, IN_STRIDE", "add rbx, OUT_STRIDE", "dec r15", "jnz timed_call",
           "dec r13", "jmp timed_round",
           "timed_end:", stamp, "sub rax, qword ptr [rsp + 48]",
           "mov rcx, qword ptr [rsp + 32]", "mov qword ptr [rcx], rax",
           "add qword ptr [rsp + 32], 8", "add rsp, 8", "ret"]
    return "\n".join(out)


def _riscv_call(layout: TimedLayout) -> list[str]:
    """One call of the pass loop: s7 the input record, s8 the output record, s2 the
    scratch area, s6 the callee."""
    if not layout.chained:
        return riscv_call(layout.single, "s7", "s8", "jalr ra, 0(s6)")
    return [*RISCV_CHAIN, *riscv_call(layout.single, "s7", "s8", "jalr ra, 0(s6)", chain="t3")]


_RISCV_SAVED = ("ra", *(f"s{i}" for i in range(12)))


def _riscv_wrapper(layout: TimedLayout) -> str:
    fits(layout.single, "riscv64", RISCV_ARGS)
    frame = 8 * (len(_RISCV_SAVED) + 1)  # ra, s0-s11, the pass's start: 112, 16-aligned
    out = [f"addi sp, sp, -{frame}",
           *(f"sd {reg}, {8 * i}(sp)" for i, reg in enumerate(_RISCV_SAVED)),
           "mv s0, a0  # s0: the input block", "mv s1, a1  # s1: the output buffer",
           "mv s2, a2  # s2: the scratch area (the code's memory)",
           "ld s3, REPEATS(s0)  # s3: repeats left", "ld s4, CALLS(s0)  # s4: N",
           "addi s5, s1, TIMES  # s5: where the next count goes",
           "timed_repeat:", "beqz s3, timed_done",
           "lla s6, timed_empty", "jal ra, timed_pass",
           "lla s6, probe_routine", "jal ra, timed_pass",
           "addi s3, s3, -1", "j timed_repeat",
           "timed_done:", "li a0, 0  # status 0: every pass ran",
           *(f"ld {reg}, {8 * i}(sp)" for i, reg in enumerate(_RISCV_SAVED)),
           f"addi sp, sp, {frame}", "ret",
           "timed_pass:  # s6: the callee; counts its N rounds of calls into [s5]",
           "mv s11, ra", "mv s10, s4  # s10: rounds left",
           "csrr t0, cycle", f"sd t0, {frame - 8}(sp)",
           "timed_round:  # a call per vector, every vector in turn", "beqz s10, timed_end",
           "addi s7, s0, RECORDS", "addi s8, s1, OUT_RECORDS",
           "ld s9, COUNT(s0)  # s9: vectors left",
           "timed_call:", *_riscv_call(layout),
           "addi s7, s7, IN_STRIDE", "addi s8, s8, OUT_STRIDE", "addi s9, s9, -1",
           "bnez s9, timed_call", "addi s10, s10, -1", "j timed_round",
           "timed_end:", "csrr t0, cycle", f"ld t1, {frame - 8}(sp)", "sub t0, t0, t1",
           "sd t0, 0(s5)", "addi s5, s5, 8", "mv ra, s11", "ret"]
    return "\n".join(out)


@dataclass(frozen=True)
class _Dialect:
    wrapper: Callable[[TimedLayout], str]
    ret: str
    identity: str  # chained: the empty function hands its first argument back as its result
    pad: str  # an instruction of the pad's unit, never executed
    pad_size: int
    extensions: str | None = None


_DIALECTS = {X86_64: _Dialect(_x86_wrapper, "ret", "mov rax, rdi\nret", "int3", 1),
             RISCV64: _Dialect(_riscv_wrapper, "ret", "ret", "nop", 4, "rv64g")}


def empty_function(arch: Arch, chained: bool) -> str:
    """The assembly of the function whose loop is subtracted: its return alone, or for a
    chained loop the identity (its first argument handed back as its result)."""
    d = _DIALECTS[arch]
    return d.identity if chained else d.ret


@cache
def timed_wrapper_code(arch: Arch, layout: TimedLayout, placement: int = 0) -> bytes:
    """The assembled wrapper and the empty function (chained: the identity), the code's
    first byte `placement` bytes into the line after them."""
    d = _DIALECTS[arch]
    if not 0 <= placement < ALIGN or placement % d.pad_size:
        raise ValueError(f"placement {placement}: a code's entry is 0..{ALIGN - 1} bytes into"
                         f" its line, a multiple of {d.pad_size} on {arch}")
    empty = empty_function(arch, layout.chained)
    body = d.wrapper(layout)
    consts = layout.constants()
    head = len(arch.assemble(body + "\ntimed_empty:\nprobe_routine:\n", constants=consts,
                             extensions=d.extensions))
    ret = len(arch.assemble(empty + "\n", extensions=d.extensions))
    pads = ((-head) % ALIGN // d.pad_size, ((-ret) % ALIGN + placement) // d.pad_size)
    text = "\n".join([body, *[d.pad] * pads[0], "timed_empty:", empty, *[d.pad] * pads[1],
                      "probe_routine:", ""])
    code = arch.assemble(text, constants=consts, extensions=d.extensions)
    assert len(code) % ALIGN == placement, f"the padding left the wrapper at {len(code)} bytes"
    return code


# -- probes and their results -----------------------------------------------------------------

@dataclass(frozen=True)
class TimedForm:
    """A routine's machine code as timed-loop probes."""

    routine: Routine
    arch: Arch
    layout: TimedLayout
    code: bytes  # the code timed (a probe's image puts the wrapper and the empty one before it)

    def image(self, placement: int = 0) -> bytes:
        """A probe's code: the wrapper, the empty function and this code, its entry
        `placement` bytes into its line."""
        return timed_wrapper_code(self.arch, self.layout, placement) + self.code

    @property
    def capacity(self) -> int:
        return self.layout.capacity

    def vectors_per_probe(self, calls: int, repeats: int) -> int:
        """The most vectors one probe carries with `calls` and `repeats`: its layout's
        capacity, or fewer where the probe's instruction budget runs out first."""
        fit = (MAX_BUDGET - BUDGET_BASE) // (BUDGET_PER_CALL * 2 * repeats * calls)
        return max(1, min(self.capacity, fit))

    def probe(self, vectors: list[Vector], calls: int, repeats: int, part: int = 0,
              placement: int = 0) -> Probe:
        """One probe: `repeats` pairs of passes (empty, code), each `calls` rounds of a
        call per vector, the code's entry `placement` bytes into its line."""
        if not 0 < len(vectors) <= self.capacity:
            raise ValueError(f"{len(vectors)} vectors: a timed probe of this routine carries"
                             f" 1..{self.capacity}; cut them into runs of that many")
        if calls < 1 or not 0 < repeats <= MAX_REPEATS:
            raise ValueError(f"calls {calls}, repeats {repeats}: a timed probe makes at least"
                             f" one call per vector and 1..{MAX_REPEATS} repeats")
        header = b"".join(n.to_bytes(WORD, "little")
                          for n in (calls, repeats, len(vectors), part))
        records = b"".join(encode_inputs(self.layout.single, v) for v in vectors)
        budget = BUDGET_BASE + BUDGET_PER_CALL * 2 * repeats * calls * len(vectors)
        if budget > MAX_BUDGET:
            raise ValueError(f"{2 * repeats * calls * len(vectors)} calls in one probe: more"
                             f" than its instruction budget allows; fewer calls or repeats")
        return Probe(self.arch, self.image(placement), input=header + records, family=FAMILY,
                     budget=budget, output_size=OUT_RECORDS + self.layout.out_stride * len(vectors),
                     meta={"calls": calls, "repeats": repeats, "vectors": len(vectors),
                           "placement": placement})

    def results(self, count: int, output: bytes) -> list[Evaluation]:
        """The `count` evaluations the code's last calls left, in the order sent."""
        stride = self.layout.out_stride
        if len(output) < OUT_RECORDS + stride * count:
            raise ValueError(f"{len(output)} output bytes; {count} vectors take"
                             f" {OUT_RECORDS + stride * count}")
        return [probe_result(self.routine, output[OUT_RECORDS + i * stride:
                                                  OUT_RECORDS + (i + 1) * stride])
                for i in range(count)]


def timed_form(r: Routine, arch: Arch, code: bytes, chained: bool = False) -> TimedForm:
    """`chained`: each call's scalar arguments wait for the previous call's result (the
    code's latency), else the calls are independent (its cost in a stream of calls)."""
    return TimedForm(r, arch, TimedLayout(layout_of(r), chained), code)


def pass_counts(probe: Probe, observation: Observation) -> list[tuple[int, int]]:
    """(empty, code) cycles of each pair of passes a timed probe's run reported.  Raises
    ValueError when the run did not return them."""
    repeats = probe.meta["repeats"]
    if observation.outcome != Outcome.RETURNED or observation.status != 0 \
            or len(observation.output) < TIMES + 16 * repeats:
        raise ValueError(f"a timed probe ended {observation.outcome.name.lower()} (status"
                         f" {observation.status}) without its cycle counts")
    words = [int.from_bytes(observation.output[TIMES + 8 * i:TIMES + 8 * i + 8], "little")
             for i in range(2 * repeats)]
    return list(zip(words[0::2], words[1::2], strict=True))


@dataclass(frozen=True)
class CallCycles:
    """Cycles per call of a code, loop overhead subtracted: one figure per pair of passes
    ((code - empty) / calls), their median and quartiles."""

    per_pair: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.per_pair)

    @property
    def spread(self) -> tuple[float, float]:
        """The lower and upper quartiles of the per-pair figures."""
        if len(self.per_pair) < 2:
            return (self.per_pair[0], self.per_pair[0])
        q1, _, q3 = statistics.quantiles(self.per_pair, n=4, method="inclusive")
        return (q1, q3)


# Pairs dropped at the start of every probe: the first pass of a run pays for cold
# caches and, under KVM, for the pages it touches first (measured: 40,000 cycles for an
# empty pass that takes 1,700 after it).
WARMUP_PAIRS = 1


def call_cycles(runs: list[tuple[Probe, Observation]]) -> CallCycles:
    """The per-call figures of one code's timed probes, each probe's warm-up dropped."""
    figures = []
    for probe, observation in runs:
        calls = probe.meta["calls"] * probe.meta["vectors"]
        figures += [(code - empty) / calls
                    for empty, code in pass_counts(probe, observation)[WARMUP_PAIRS:]]
    if not figures:
        raise ValueError(f"no pair of passes past the {WARMUP_PAIRS} warm-up pair(s) of each"
                         " probe: run at least two repeats")
    return CallCycles(tuple(figures))


# -- running on a board ----------------------------------------------------------------------

# N, the rounds of a call per vector in a pass (calls per vector): 16 keeps a probe of
# 100 vectors within its instruction budget.  (When a vector's calls were made in a row,
# p10's figure per call under nested KVM, AMD EPYC family 25, rose with N, 1.04 at 4 and
# 1.84 at 16 to 2.0-2.2 at 64 and 256: the loop over vectors, between each vector's
# calls, hid part of the code's work.  Now that loop's step comes once a call, the same
# for every N.)
CALLS_PER_VECTOR = 16
# Chained, a call waits for the one before, so the loop's own work overlaps nothing and
# N hardly matters (p01, p10, p23 on that host: 1.40, 2.76, 8.94 at 4; 1.41, 2.81, 9.08
# at 16): 4 keeps the probes, and their vetting, short.
CHAINED_CALLS_PER_VECTOR = 4
# Pairs of passes in one probe's run, the first a warm-up.  Fewer do not save the
# placements' cost: at 3, gcc's p20 at the start of a line measured 2.08-2.15 cycles per
# call and 4.42-4.62 latency where 9 gave 1.88 and 4.19 (the later pairs run warmer).
REPEATS_PER_PROBE = 9
ROUNDS = 1  # probes per code, placement and chunk of vectors, the codes taking turns


def placements_for(accelerator: str) -> tuple[int, ...]:
    """Where to put a code on a board under `accelerator`: under KVM every place of
    PLACEMENTS, the silicon fetching the code from there; under TCG one, as QEMU runs its
    own translation of the code wherever the code lies."""
    return PLACEMENTS if accelerator == "kvm" else PLACEMENTS[:1]


@dataclass
class TimedRun:
    """One code's timed probes as the board ran them: every vector's answers (one per
    round) checked against the interpreter, and the cycles per call."""

    vectors: int
    agreed: int = 0  # vectors whose every answer was the interpreter's
    # the first disagreement: the vector, the interpreter's answer, the board's (its
    # decoded answer, or the observation of a run that did not return)
    first_disagreement: tuple[Vector, Evaluation, Evaluation | Observation] | None = None
    cycles: CallCycles | None = None  # None unless every probe returned its counts

    @property
    def ok(self) -> bool:
        return self.agreed == self.vectors


def chunk_spans(count: int, most: int) -> list[tuple[int, int]]:
    """[start, stop) of the fewest chunks of at most `most` vectors, as even as can be:
    100 sort3 vectors as 49, 49 and 2 made a third of the pairs a stream of 2 vectors,
    which a branching code's predictor learns within a round, and every probe's pairs
    count alike in the figure."""
    chunks = -(-count // most)
    bounds = [k * count // chunks for k in range(chunks + 1)]
    return list(zip(bounds, bounds[1:], strict=False))


def time_on_link(link: Link, forms: list[TimedForm], vectors: list[Vector],
                 campaign: Campaign | None = None, calls: int = CALLS_PER_VECTOR,
                 repeats: int = REPEATS_PER_PROBE, rounds: int = ROUNDS,
                 placements: tuple[int, ...] = PLACEMENTS) -> list[TimedRun]:
    """Time each form's code on the same `vectors` in one campaign on `link` (pass the
    boot's campaign to run more on it): per placement and chunk of vectors, `rounds`
    probes per form, the forms taking turns, so drift in the machine touches every code
    alike; a code's figure pools its placements.  Every probe is vetted first; a vetter
    rejection is a bug in this form (ValueError)."""
    if any(form.routine != forms[0].routine for form in forms):
        raise ValueError("time_on_link times codes of one routine; call it once per routine")
    plan: list[tuple[int, int, Probe]] = []  # (form, first vector, probe)
    for round_ in range(rounds):
        for placement in placements:
            for i, form in enumerate(forms):
                spans = chunk_spans(len(vectors), form.vectors_per_probe(calls, repeats))
                for part, (start, stop) in enumerate(spans):
                    chunk = vectors[start:stop]
                    plan.append((i, start, form.probe(chunk, calls, repeats,
                                                      part=round_ * len(vectors) + part,
                                                      placement=placement)))
    items = []
    for _, _, probe in plan:
        verdict = vet(probe)
        if not verdict.accepted:
            name = forms[0].routine.hint_name or "a routine"
            raise ValueError(f"the vetter rejects {name} in timed form on {probe.arch}:"
                             f" {verdict.reason}; this is a probe-form bug, please report it")
        items.append((probe, verdict.prediction))
    report = (campaign or Campaign(link, POLICY)).run(items)
    if report.quarantined:
        raise ProbesBroughtBoardDown(len(report.quarantined), "timed routine")
    wants = [interp.run(forms[0].routine, v.args, v.memory) for v in vectors]
    # outside the routine's domain (its precondition) every answer is right
    admitted = [interp.admits(forms[0].routine, v.args) for v in vectors]
    wrong: list[set[int]] = [set() for _ in forms]
    timed: list[list[tuple[Probe, Observation]]] = [[] for _ in forms]
    runs = [TimedRun(len(vectors)) for _ in forms]
    for i, start, probe in plan:
        obs = report.results[probe.content_hash].observation
        count = probe.meta["vectors"]
        returned = obs.outcome == Outcome.RETURNED and obs.status == 0
        answers = forms[i].results(count, obs.output) if returned else [obs] * count
        if returned:
            timed[i].append((probe, obs))
        for k, got in enumerate(answers, start):
            if admitted[k] and got != wants[k]:
                wrong[i].add(k)
                if runs[i].first_disagreement is None:
                    runs[i].first_disagreement = (vectors[k], wants[k], got)
    probes_per_form = len(plan) // len(forms)
    for run, bad, done in zip(runs, wrong, timed, strict=True):
        run.agreed = len(vectors) - len(bad)
        if len(done) == probes_per_form:
            run.cycles = call_cycles(done)
    return runs
