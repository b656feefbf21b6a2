"""Timing in the style of nanoBench: a snippet unrolled n and 2n times, looped,
between two cycle-counter reads, several runs each after warm-up, trimmed
statistics, and the difference (2n - n) / n, which cancels the measurement's own
overhead.  Each probe times its body twice and keeps the second: TCG translates
the code the first time it runs it.

Two variants of a sequence are measured.  Latency: the sequence as written,
repeated, so it must feed its own inputs (`imul rax, rax` does).  Throughput:
each repetition gets its registers renamed from a pool, so that neighbouring
copies form independent chains and only issue width limits them.  Every
repetition of a probe carries its index as input, so the runs have distinct
content hashes and are all sent and stored.

Numbers are only as real as the accelerator: under TCG they describe QEMU,
under KVM the silicon; results are stored with the accelerator they came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import cache
from statistics import mean

from arch import RISCV64, X86_64, Arch
from contract.probe_abi import CODE_SIZE, Outcome
from probes.probe import Observation, Probe
from probes.summary import ACCELERATOR_MEANING, CampaignContext, Results

WARMUP_RUNS = 5
MEASURED_RUNS = 10
TRIM = 0.2  # fraction dropped from each end before averaging
UNROLL = 100  # n; the 2n probe doubles it (less when the sequence is long: code is 16 KiB)
# times a probe's unrolled body runs between its counter reads: a counter read's own
# jitter, spread over LOOP times the instances (a CI host's TCG read 3.4 cycles an
# instance apart at 100 instances, once below zero)
LOOP = 32
PASSES = 2  # the body timed twice, the second kept (suite_probe says why)
LATENCY, THROUGHPUT = "latency", "throughput"
MEASUREMENT_OVERHEAD = 128  # bytes of the frame and the two loops around the body, rounded up
# Registers a timed sequence may use and throughput copies are renamed over.  Left
# out: those the probe's head and tail hold (x86 rsi, r8; riscv a1, t1, t2), a suite's
# loop counters (x86 r15, r14; riscv s11, s10), the stack pointers, the return address,
# and gp/tp.
X86_POOLS = (("rax", "rbx", "rcx", "rdx", "rdi", "rbp", "r9", "r10", "r11", "r12", "r13"),
             tuple(f"xmm{i}" for i in range(16)), tuple(f"ymm{i}" for i in range(16)))
RISCV_POOLS = (("t0", "t3", "t4", "t5", "t6", "a0", "a2", "a3", "a4", "a5", "a6", "a7",
                "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"),
               tuple(f"ft{i}" for i in range(12)), tuple(f"fa{i}" for i in range(8)))


@dataclass(frozen=True)
class TimingFrame:
    """How one ISA times a body: the head reads the cycle counter, `store_at` reads it
    again and stores the difference at [output + offset] (a timed body must leave the
    registers they use alone; a suite probe, suite_probe, times several bodies in one
    run), and the registers a timed sequence may use."""

    head: str
    pools: tuple[tuple[str, ...], ...]
    store_at: str = ""  # format string, {offset}
    leave: str = ""  # what ends a probe: status 0, return
    extensions: str | None = None  # the assembler subset of the frame's code
    # A probe's body loops (timing_probe, suite_probe): its unrolled body `loop` times, and the
    # whole section, its timing included, `passes` times.  Formats: {reg} a counter,
    # {count}, {back} the bytes from the branch back to the loop's start
    counters: tuple[str, str] = ("", "")  # the body's, the passes'
    set_counter: str = ""
    count_down: str = ""
    loop_back: str = ""


FRAMES = {
    X86_64: TimingFrame(  # rdtsc, fenced; rsi = output, r8 = the start
        head="lfence\nrdtsc\nshl rdx, 32\nor rax, rdx\nmov r8, rax\nlfence",
        pools=X86_POOLS,
        store_at="lfence\nrdtsc\nshl rdx, 32\nor rax, rdx\nsub rax, r8\nmov [rsi + {offset}], rax",
        leave="xor eax, eax\nret", counters=("r15", "r14"),
        set_counter="mov {reg}d, {count}", count_down="dec {reg}", loop_back="jnz $-{back}"),
    RISCV64: TimingFrame(  # rdcycle; a1 = output, t1 = the start, t2 = the end
        head="csrr t1, cycle",
        pools=RISCV_POOLS, store_at="csrr t2, cycle\nsub t0, t2, t1\nsd t0, {offset}(a1)",
        leave="li a0, 0\nret", extensions="rv64g", counters=("s11", "s10"),
        set_counter="li {reg}, {count}", count_down="addi {reg}, {reg}, -1",
        loop_back="bnez {reg}, .-{back}"),
}


def _unrolled(instances: list[bytes], unroll: int) -> bytes:
    return b"".join(instances[i % len(instances)] for i in range(unroll))


def timing_probe(arch: Arch, body: bytes | list[bytes], unroll: int, input: bytes = b"",
                 meta: dict | None = None) -> Probe:
    """`body`: the encoded instructions of one instance (or the instances to cycle
    through), leaving the frame's registers alone (FRAMES), unrolled `unroll` times,
    run LOOP times and timed on the second of PASSES passes (suite_probe says why)."""
    instances = [body] if isinstance(body, bytes) else body
    code = _timed_section(arch, instances, unroll, 0, LOOP, PASSES) + _suite_code(arch, "leave")
    return Probe(arch, code, family="timing", input=input,
                 budget=((unroll * 8 + 2) * LOOP + 64) * PASSES, output_size=8,
                 meta={"unroll": unroll, "loop": LOOP, **(meta or {})})


def timing_pair(arch: Arch, body: bytes | list[bytes], unroll: int = UNROLL) -> tuple[Probe, Probe]:
    """The n and 2n probes of one measurement."""
    return timing_probe(arch, body, unroll), timing_probe(arch, body, 2 * unroll)


def assemble_sequence(arch: Arch, text: str) -> bytes:
    text = text.replace(";", "\n")
    try:
        return arch.assemble(text)
    except Exception as error:  # the assemblers' own errors say what is wrong with the text
        raise ValueError(f"cannot assemble timing sequence {text!r} for {arch}: {error}") from error


def renamed_copies(arch: Arch, sequence: str) -> list[str]:
    """The sequence once per independent chain: its registers renamed over the
    pool, as many disjoint copies as the pool holds (at least 2, or ValueError)."""
    copies: list[str] | None = None
    for pool in FRAMES[arch].pools:
        pattern = re.compile(r"\b(" + "|".join(sorted(pool, key=len, reverse=True)) + r")\b")
        used = list(dict.fromkeys(pattern.findall(sequence)))
        if not used:
            continue
        count = len(pool) // len(used)
        if count < 2:
            raise ValueError(f"the sequence uses {len(used)} of the {len(pool)} registers it may"
                             " use: too many to make independent copies for throughput")
        variants = []
        for k, text in enumerate((copies or [sequence] * count)[:count]):
            # copy k takes the k-th run of len(used) registers of the pool
            renamed = {reg: pool[k * len(used) + i] for i, reg in enumerate(used)}
            variants.append(pattern.sub(lambda m, renamed=renamed: renamed[m.group(1)], text))
        copies = variants
    if copies is None:
        raise ValueError(f"the sequence {sequence!r} names none of the registers a timing probe"
                         f" may use ({', '.join(p[0] + '…' for p in FRAMES[arch].pools)})")
    return copies


def timing_probes(arch: Arch, sequence: str, repetitions: int = WARMUP_RUNS + MEASURED_RUNS,
                  unroll: int = UNROLL) -> Iterator[Probe]:
    """Latency and throughput probes of `sequence` at unroll n and 2n, `repetitions`
    runs each (the first WARMUP_RUNS are warm-up), interleaved so that drift in
    the machine touches every variant alike."""
    variants = {LATENCY: [assemble_sequence(arch, sequence)],
                THROUGHPUT: [assemble_sequence(arch, text)
                             for text in renamed_copies(arch, sequence)]}
    longest = max(len(code) for codes in variants.values() for code in codes)
    unroll = min(unroll, (CODE_SIZE - MEASUREMENT_OVERHEAD) // (2 * longest))
    if unroll < 1:
        raise ValueError(f"the sequence is {longest} bytes: too long to unroll twice in"
                         f" {CODE_SIZE} bytes of code")
    for repetition in range(repetitions):
        for kind, instances in variants.items():
            for times in (unroll, 2 * unroll):
                yield timing_probe(arch, instances, times, input=repetition.to_bytes(4, "little"),
                           meta={"sequence": sequence, "kind": kind, "base_unroll": unroll,
                                 "repetition": repetition})


@dataclass(frozen=True)
class SuiteSection:
    """One timed body of a suite probe: a variant (LATENCY, THROUGHPUT) at an unroll."""

    kind: str
    instances: tuple[bytes, ...]
    unroll: int


def suite_probe(arch: Arch, variants: dict[str, list[bytes]], repetitions: int,
                unroll: int, part: int = 0, loop: int = 1, passes: int = 1) -> Probe:
    """One probe timing every variant at n and 2n, `repetitions` times over, in one run:
    nanoBench's loop as section after section, each storing its cycle count at the next
    8 bytes of the output (summarise_suite reads them).  Fewer probes than one per run:
    under nested KVM each probe costs round trips of exits.  `part` numbers the probes of
    one measurement (it is their input, so each has its own identity).

    `loop`: each section's unrolled body runs that many times (nanoBench's loop count:
    the counter's steps are as many at n as at 2n, so the difference cancels them, and
    the counter's resolution is spread over loop times the instances: nested KVM's TSC
    here moves in steps of 26 ticks, so 32 one-cycle instances read 0.61 or 0.81 a
    cycle).  `passes`: each section, its timing included, runs that many times and the
    last pass's count stays (TCG translates a section the first time it runs it, which
    costs more than running it).  Raises ValueError when the code does not fit the
    probe's code area."""
    sections = [SuiteSection(kind, tuple(instances), times)
                for _ in range(repetitions) for kind, instances in variants.items()
                for times in (unroll, 2 * unroll)]
    parts = [_timed_section(arch, list(section.instances), section.unroll, 8 * i, loop, passes)
             for i, section in enumerate(sections)]
    parts.append(_suite_code(arch, "leave"))
    code = b"".join(parts)
    if len(code) > CODE_SIZE:
        raise ValueError(f"a suite of {len(sections)} sections is {len(code)} bytes: more"
                         f" than the {CODE_SIZE} bytes of code a probe has; unroll less")
    # an instance is a few instructions (a compound form's, a kept chain's pair): 8 each,
    # the loop's 2 a round, a frame's 64 a section
    instances = sum(s.unroll for s in sections)
    return Probe(arch, code, family="timing", input=part.to_bytes(4, "little"),
                 budget=((instances * 8 + 2 * len(sections)) * loop + len(sections) * 64) * passes,
                 output_size=8 * len(sections),
                 meta={"suite": [(s.kind, s.unroll) for s in sections], "base_unroll": unroll,
                       "repetitions": repetitions, "loop": loop, "passes": passes})


def _timed_section(arch: Arch, instances: list[bytes], unroll: int, offset: int, loop: int,
                   passes: int) -> bytes:
    """The instances unrolled `unroll` times, run `loop` times between two counter reads
    whose difference goes to [output + offset]; all of it `passes` times."""
    body_counter, pass_counter = FRAMES[arch].counters
    timed = (_suite_code(arch, "head")
             + _looped(arch, body_counter, loop, _unrolled(instances, unroll))
             + _suite_code(arch, "store_at", offset=offset))
    return _looped(arch, pass_counter, passes, timed)


def _looped(arch: Arch, counter: str, count: int, body: bytes) -> bytes:
    """`body` run `count` times on `counter` (the counter set, body, a step down and a
    branch back); once, as it is, when `count` is 1."""
    if count == 1:
        return body
    step = _suite_code(arch, "count_down", reg=counter)
    return (_suite_code(arch, "set_counter", reg=counter, count=count) + body + step
            + _suite_code(arch, "loop_back", reg=counter, back=len(body) + len(step)))


@cache
def _suite_code(arch: Arch, part: str, **values: int) -> bytes:
    """A frame part, its fields filled, assembled once per process (riscv64's assembler
    is a process)."""
    frame = FRAMES[arch]
    return arch.assemble(getattr(frame, part).format(**values), extensions=frame.extensions)


def summarise_suite(runs: Iterable[tuple[Probe, Observation]],
                    warmup: int) -> dict[str, TimingEstimate]:
    """Per variant: cycles per instance from the runs of a measurement's suite probes
    (in order: their repetitions follow one another), the first `warmup` repetitions
    dropped.  Raises ValueError when a run did not return its counts."""
    cycles: dict[tuple[str, int], list[float]] = {}
    unroll, loop = 0, 1
    for probe, observation in runs:
        suite = probe.meta["suite"]
        if observation.outcome != Outcome.RETURNED or len(observation.output) < 8 * len(suite):
            raise ValueError(f"a suite probe ended {observation.outcome.name.lower()} without"
                             " its cycle counts")
        unroll, loop = probe.meta["base_unroll"], probe.meta.get("loop", 1)
        for i, (kind, times) in enumerate(suite):
            count = int.from_bytes(observation.output[8 * i:8 * i + 8], "little")
            cycles.setdefault((kind, times), []).append(count)
    return {kind: estimate(cycles[(kind, unroll)], cycles[(kind, 2 * unroll)], unroll * loop,
                           warmup)
            for kind, _ in cycles}


def _trimmed(samples: list[float], trim: float) -> list[float]:
    """The samples in order, the `trim` share cut from each end (all of them if that
    would leave none)."""
    ordered = sorted(samples)
    cut = int(len(ordered) * trim)
    return ordered[cut : len(ordered) - cut] or ordered


def trimmed_mean(samples: list[float], trim: float = TRIM) -> float:
    if not samples:
        raise ValueError("no samples: run the timing probes before estimating")
    return mean(_trimmed(samples, trim))


@dataclass(frozen=True)
class TimingEstimate:
    per_instance: float  # cycles per snippet instance
    overhead: float  # cycles the measurement itself costs (intercept)
    runs: int
    spread: float = 0.0  # max - min of the per-instance cost over the trimmed run pairs


def estimate(cycles_n: list[float], cycles_2n: list[float], unroll: int,
             warmup: int = WARMUP_RUNS) -> TimingEstimate:
    """nanoBench's subtraction: drop warm-up runs, trim, then (t(2n) - t(n)) / n."""
    n_runs, n2_runs = cycles_n[warmup:], cycles_2n[warmup:]
    t_n, t_2n = trimmed_mean(n_runs), trimmed_mean(n2_runs)
    per = (t_2n - t_n) / unroll
    # run counts may differ: the spread pairs the first min(...) runs of each
    spread = _spread([(b - a) / unroll for a, b in zip(n_runs, n2_runs, strict=False)])
    return TimingEstimate(per, t_n - per * unroll, min(len(n_runs), len(n2_runs)), spread)


def _spread(samples: list[float], trim: float = TRIM) -> float:
    kept = _trimmed(samples, trim)
    return kept[-1] - kept[0] if kept else 0.0


def summarise(results: Iterable[tuple[Probe, Observation]]) -> dict[str, TimingEstimate]:
    """Per variant (latency, throughput): cycles per sequence instance from the
    runs that returned, in repetition order.  Raises ValueError when a variant has
    no run past the warm-up (every run faulted, or too few repetitions)."""
    cycles: dict[tuple[str, int], dict[int, float]] = {}
    unrolls: dict[str, int] = {}
    loops: dict[str, int] = {}
    for probe, observation in results:
        kind = probe.meta.get("kind")
        if kind is None or len(observation.output) < 8 or observation.outcome != Outcome.RETURNED:
            continue
        unrolls[kind], loops[kind] = probe.meta["base_unroll"], probe.meta.get("loop", 1)
        runs = cycles.setdefault((kind, probe.meta["unroll"]), {})
        runs[probe.meta["repetition"]] = int.from_bytes(observation.output[:8], "little")
    found = {}
    for kind, unroll in unrolls.items():
        n, n2 = cycles.get((kind, unroll), {}), cycles.get((kind, 2 * unroll), {})
        paired = sorted(set(n) & set(n2))
        if len(paired) <= WARMUP_RUNS:
            raise ValueError(f"{kind}: only {len(paired)} runs returned, none past the"
                             f" {WARMUP_RUNS} warm-up runs; look at the faults in the results")
        found[kind] = estimate([n[r] for r in paired], [n2[r] for r in paired],
                               unroll * loops[kind])
    return found


@dataclass(frozen=True)
class TimingSummary:
    """A timing campaign's estimates per variant (latency, throughput)."""

    sequence: str
    accelerator: str
    estimates: dict[str, TimingEstimate]

    def to_json(self) -> dict:
        meaning = ACCELERATOR_MEANING.get(self.accelerator)
        return {"timing": {kind: {**asdict(est), "accelerator_meaning": meaning}
                           for kind, est in self.estimates.items()}}

    def result_json(self, probe: Probe) -> dict:
        return {}


def summarise_campaign(results: Results, context: CampaignContext) -> TimingSummary:
    return TimingSummary(context.sequence or "", context.accelerator, summarise(results))
