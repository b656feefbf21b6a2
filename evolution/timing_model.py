"""The search's performance model from the board itself: every register form the board
may use, timed on it by the timing family (probes/families/timing.py: unrolled n and 2n
times between two cycle-counter reads, (t(2n) - t(n)) / n), latency and throughput.

Each form's runs go in a few suite probes: latency and throughput, n and 2n unrolled,
repeated MODEL_WARMUP + MODEL_MEASURED_RUNS times, as many repetitions to a probe as
SUITE_CODE_BYTES holds (a probe per run costs round trips of exits each under nested
KVM: 6,000 of them took 4 minutes here).
Latency: one instance repeated, built so that each copy reads what the previous one
wrote: every register it writes is A, and what it only reads is B when the chain already
runs through a register it reads and writes (`add rax, rbx`), else A too (`popcnt rax,
rax`, `mov eax, eax`).  Forms that write no register (cmp, test) are timed back to back.
A form whose own result would walk its chain out of its domain (`bsf` of its index
reaches 0, where the result is undefined) has a keeper (Form.chain_keeper: `or`): the
chain is `form A, B; keeper B, A`, and the keeper's latency is subtracted.

The counter does not tick in core cycles (x86's TSC runs at its own rate, and under
this host's nested KVM it moves in steps of 26 ticks), so every suite probe also times
the latency chain of the ISA's one-cycle form (Isa.cycle_form, add), and each form's
figures count in it: cycles, beside the table's cycles for the forms not timed.  Each
section's body runs MODEL_LOOP times, and each section is timed on its second pass
(probes/families/timing.py suite_probe says why).
Throughput: copies on disjoint pairs of registers (THROUGHPUT_COPIES), cycled, so that
only issue limits them.  Forms with a memory operand keep the fallback table's figure
(they would need a pointer the timing frame does not give), as does any form whose runs
did not all return (`unmeasured` says which and why).

Under TCG the cycles describe QEMU, under KVM the silicon: the model names the board
and the results go to the capability store with the accelerator; a later session on
the same fingerprint and accelerator reuses them instead of probing again."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from evolution.costmodel import PerformanceModel, measured
from evolution.isa import IMM, MEM, REG, Form, Isa
from evolution.program import Insn, source_line
from probes.campaign import Campaign
from probes.campaign_state import CampaignResult
from probes.families.timing import (
    FRAMES,
    LATENCY,
    THROUGHPUT,
    suite_probe,
    summarise_suite,
)
from probes.probe import Observation, Probe
from probes.run import Tally, prepare
from toolchain.program import AssemblyError

# Repetitions inside one suite probe per form: the first MODEL_WARMUP warm the caches
# and predictors, the measured ones are trimmed (probes/families/timing.py TRIM).
MODEL_WARMUP = 2
MODEL_MEASURED_RUNS = 6
MODEL_UNROLL = 32  # n, made smaller while one repetition is over SUITE_CODE_BYTES
# times each section's unrolled body runs (probes/families/timing.py suite_probe): 32
# one-cycle instances are one or two steps of nested KVM's TSC here, 1,024 are 40
MODEL_LOOP = 32
MODEL_PASSES = 2  # each section timed twice, the second kept: TCG translates on the first
MIN_UNROLL = 8
# A suite probe's code at most: under nested KVM, probes of 4 KB and more (the campaign
# keeps half the guest's slots in flight) left the board silent long enough to be
# declared dead and restarted, 22 times in one model; the timing family's own probes,
# up to about 2 KB, never were.
SUITE_CODE_BYTES = 1536
THROUGHPUT_COPIES = 4  # independent chains cycled for throughput
CYCLE = "cycle"  # the suite's variant timing the one-cycle chain the figures count in


@dataclass(frozen=True)
class FormTimingProbes:
    form: str
    probes: tuple[Probe, ...]  # suite probes (probes/families/timing.py), in order


@dataclass
class MeasuredModel:
    model: PerformanceModel
    measured: int  # forms timed on the board
    unmeasured: dict[str, str] = field(default_factory=dict)  # form -> why the table's figure
    probes: int = 0  # timing probes the model rests on
    reused: int = 0  # of them, results taken from the capability store
    unit: str = ""  # the form whose latency the figures count in (Isa.cycle_form)


def _pool_numbers(isa: Isa) -> list[int]:
    """Hardware numbers of the registers a timed sequence may use, in the frame's order."""
    return [isa.registers.index(name) for name in FRAMES[isa.arch].pools[0]
            if name in isa.registers]


def _instance(form: Form, a: int, b: int) -> Insn:
    """The form on registers a/b (see the module text) with a small immediate."""
    through_read = any(o.kind == REG and o.access == "rw" for o in form.operands)
    regs = []
    for o in form.operands:
        if o.kind == REG:
            regs.append(a if "w" in o.access or not through_read else b)
    imm = 0
    for o in form.operands:
        if o.kind == IMM:
            imm = 1 if o.lo <= 1 <= o.hi else o.lo
    return Insn(form.name, tuple(regs), imm)


def timed_forms(isa: Isa, features: frozenset[str]) -> list[Form]:
    """The forms a model times: those of the base ISA or of a feature the board has,
    without a memory operand."""
    return [f for f in isa.forms
            if (f.feature is None or f.feature in features)
            and not any(o.kind == MEM for o in f.operands)]


def latency_instance(isa: Isa, form: Form) -> bytes:
    """The code the latency chain repeats: the form on the first two timing registers
    (see the module text), or with a chain keeper (a two-register form, as is the keeper)
    `form A, B; keeper B, A`."""
    a, b = _pool_numbers(isa)[:2]
    if form.chain_keeper is None:
        text = source_line(isa, _instance(form, a, b))
    else:
        text = (source_line(isa, Insn(form.name, (a, b), 0)) + "\n"
                + source_line(isa, Insn(form.chain_keeper, (b, a), 0)))
    return isa.arch.assemble(text)


def form_timing_probes(isa: Isa, form: Form, runs: int = MODEL_MEASURED_RUNS,
                       unroll: int = MODEL_UNROLL) -> FormTimingProbes:
    """Suite probes timing the form's latency and throughput and the one-cycle chain, n
    and 2n, warm-up repetitions first, as many repetitions in each as SUITE_CODE_BYTES
    holds (unrolled less where long instructions would not fit one).  Raises
    AssemblyError when the form cannot be written on the timing frame's registers."""
    pool = _pool_numbers(isa)
    arch = isa.arch

    def code(insn: Insn) -> bytes:
        return arch.assemble(source_line(isa, insn))

    copies = []  # a form that takes only some registers (x86 `xor r8, r8h`) has fewer
    for k in range(THROUGHPUT_COPIES):
        try:
            copies.append(code(_instance(form, pool[2 * k], pool[2 * k + 1])))
        except AssemblyError:
            continue
    if len(copies) < 2:
        raise AssemblyError(f"{form.name}: fewer than two copies on the timing registers"
                            " assemble")
    variants = {LATENCY: [latency_instance(isa, form)], THROUGHPUT: copies,
                CYCLE: [latency_instance(isa, isa.by_name[isa.cycle_form])]}

    def suite(repetitions: int, unroll: int, part: int = 0) -> Probe:
        return suite_probe(arch, variants, repetitions, unroll, part, MODEL_LOOP, MODEL_PASSES)

    while len(suite(1, unroll).code) > SUITE_CODE_BYTES:
        if unroll <= MIN_UNROLL:
            break
        unroll = max(MIN_UNROLL, unroll * 3 // 4)
    per_probe = max(1, SUITE_CODE_BYTES // len(suite(1, unroll).code))
    total = MODEL_WARMUP + runs
    probes = [suite(min(per_probe, total - first), unroll, part)
              for part, first in enumerate(range(0, total, per_probe))]
    return FormTimingProbes(form.name, tuple(probes))


RunProbes = Callable[[list[Probe]], Mapping[bytes, Observation]]


def measure_model(isa: Isa, features: frozenset[str], board: str, run: RunProbes,
                  stored: RunProbes | None = None) -> MeasuredModel:
    """Time every form of `timed_forms` on the board: `run` runs probes there and returns
    their observations by content hash; `stored` (optional) returns the observations a
    store already holds for this board and accelerator, and only the probes it lacks run."""
    plans, unmeasured = [], {}
    for f in timed_forms(isa, features):
        try:
            plans.append(form_timing_probes(isa, f))
        except AssemblyError as error:
            unmeasured[f.name] = f"not written on the timing registers: {error}"
    every = [p for plan in plans for p in plan.probes]
    found: dict[bytes, Observation] = dict(stored(every)) if stored is not None else {}
    reused = len(found)
    missing = [p for p in every if p.content_hash not in found]
    if missing:
        found.update(run(missing))
    latency, throughput = {}, {}
    for plan in plans:
        if any(p.content_hash not in found for p in plan.probes):
            unmeasured[plan.form] = "the board gave no answer to a timing probe"
            continue
        try:
            estimates = summarise_suite([(p, found[p.content_hash]) for p in plan.probes],
                                        MODEL_WARMUP)
        except ValueError as error:
            unmeasured[plan.form] = str(error)
            continue
        cycle = estimates[CYCLE].per_instance
        if cycle <= 0:
            unmeasured[plan.form] = (f"the one-cycle chain ({isa.cycle_form}) it counts in"
                                     " took no time")
            continue
        latency[plan.form] = max(estimates[LATENCY].per_instance / cycle, 0.0)
        throughput[plan.form] = max(estimates[THROUGHPUT].per_instance / cycle, 0.0)
    pairs = dict(latency)  # a kept chain's figure is the pair's: the keeper's comes off
    for f in isa.forms:
        if f.chain_keeper is not None and f.name in pairs:
            keeper = pairs.get(f.chain_keeper, isa.by_name[f.chain_keeper].latency)
            latency[f.name] = max(pairs[f.name] - keeper, 0.0)
    for f in isa.forms:
        if f.name not in latency and f.name not in unmeasured and (
                f.feature is None or f.feature in features):
            unmeasured[f.name] = "a memory operand: the timing frame gives no pointer"
    return MeasuredModel(measured(isa, latency, throughput, board), len(latency), unmeasured,
                         len(every), reused, isa.cycle_form)


def campaign_runner(campaign: Campaign,
                    on_results: Callable[[list[CampaignResult]], None] | None = None,
                    ) -> RunProbes:
    """Run probes over `campaign` (one per boot: the guest caches answers by run id), each
    vetted first on every core (timing probes carry no prediction: their cycles are the
    machine's); `on_results` gets the results (to file them in the capability store)."""
    def run(probes: list[Probe]) -> dict[bytes, Observation]:
        tally = Tally()
        report = campaign.run(prepare(probes, tally))
        if tally.rejected:
            reason, count = tally.rejected.most_common(1)[0]
            raise ValueError(f"the vetter rejected {sum(tally.rejected.values())} timing"
                             f" probe(s) ({count}: {reason}); this is a timing-form bug,"
                             " please report it")
        results = [report.results[p.content_hash] for p in probes
                   if p.content_hash in report.results]
        if on_results is not None:
            on_results(results)
        return {r.probe.content_hash: r.observation for r in results}
    return run


def model_json(result: MeasuredModel, accelerator: str) -> dict:
    """How a report shows the model (schema metaos.evolution/1, key `performance_model`)."""
    return {"source": result.model.source, "accelerator": accelerator,
            "forms_measured": result.measured, "forms_from_table": len(result.unmeasured),
            "probes": result.probes, "reused_from_store": result.reused,
            "unit": f"cycles: the latency of `{result.unit}` timed beside each form"}
