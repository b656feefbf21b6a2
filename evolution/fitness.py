"""Fitness measured in the guest: machine code timed on the board by loops of calls
(probes/timed_calls.py), every answer checked against the interpreter.

Several codes for one routine run on the same vectors in one campaign, so their figures
are measured under the same conditions.  Two figures, each in cycles per call with the
loop's overhead taken out, the median over pairs of passes with the quartiles as spread:

    cycles    independent calls: every vector's inputs passed to the code in turn, 16
              rounds, between two serialising reads of the cycle counter, less the same
              loop around an empty function (its return alone)
    latency   chained calls (routines with a scalar result and no memory): each call's
              arguments wait for the previous result (added to them times 0), 4 calls per
              vector, less the same loop around the identity function (x86-64 `mov rax,
              rdi; ret`, riscv64 `ret`): the code's latency from arguments to result

Under TCG the counts describe QEMU (with `-icount shift=0`, one per instruction
executed), under KVM the silicon's time-stamp counter (x86-64: constant rate, not the
core clock); there each code is timed with its entry at each 16-byte place of a cache
line in turn and its pairs pooled (timed_calls.PLACEMENTS: at one place, the figure says
where the code's return fell).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from scipy.stats import mannwhitneyu

from evolution.check import probe_vector
from evolution.isa import Isa
from evolution.testset import machine_vectors
from probes.campaign import Campaign, Link
from probes.probe import Observation
from probes.run import POLICY
from probes.timed_calls import (
    CHAINED_CALLS_PER_VECTOR,
    CallCycles,
    TimedRun,
    placements_for,
    time_on_link,
    timed_form,
)
from sem.ir import Routine


@dataclass(frozen=True)
class FitnessRun:
    """One code's runs on the board."""

    vectors: int
    agreed: int  # of its runs (independent, chained), the fewer vectors answered right
    cycles: CallCycles | None  # independent calls (None: not every probe returned counts)
    detail: str  # the first disagreement, or ""
    latency: CallCycles | None = None  # chained calls (None: not measured, or no counts)

    @property
    def ok(self) -> bool:
        return self.agreed == self.vectors

    @property
    def median_cycles(self) -> float | None:
        """Cycles per call, the median over the pairs of passes."""
        return self.cycles.median if self.cycles else None

    @property
    def spread(self) -> tuple[float, float] | None:
        """The quartiles of the per-pair figures."""
        return self.cycles.spread if self.cycles else None


def run_in_guest(link: Link, isa: Isa, spec: Routine, codes: dict[str, bytes], count: int,
                 seed: int, campaign: Campaign | None = None) -> dict[str, FitnessRun]:
    """Time each named code as `spec` on the same `count` machine vectors (inputs as the
    platform ABI passes them: junk above 32-bit x86-64 arguments, sign extension on
    riscv64), in one campaign on `link`."""
    vectors = [probe_vector(isa, spec, v) for v in machine_vectors(isa, spec, count, seed)]
    campaign = campaign or Campaign(link, POLICY)  # one per boot: its run ids go on
    places = placements_for(getattr(link, "accelerator", "tcg"))
    forms = [timed_form(spec, isa.arch, code) for code in codes.values()]
    runs = time_on_link(link, forms, vectors, campaign, placements=places)
    chained: list[TimedRun | None] = [None] * len(codes)
    if spec.result is not None and not spec.uses_memory:
        chained = list(time_on_link(link, [timed_form(spec, isa.arch, code, chained=True)
                                           for code in codes.values()],
                                    vectors, campaign, calls=CHAINED_CALLS_PER_VECTOR,
                                    placements=places))
    out = {}
    for name, run, latency in zip(codes, runs, chained, strict=True):
        wrong = [r.first_disagreement for r in (run, latency)
                 if r is not None and r.first_disagreement is not None]
        detail = ""
        if wrong:
            v, want, got = wrong[0]
            board = (f"outcome {got.outcome.name} status {got.status}"
                     if isinstance(got, Observation) else f"gives {got.result}")
            detail = f"inputs {v.args}: the interpreter gives {want.result}, the board {board}"
        agreed = min(r.agreed for r in (run, latency) if r is not None)
        out[name] = FitnessRun(count, agreed, run.cycles, detail,
                               latency.cycles if latency is not None else None)
    return out


@dataclass(frozen=True)
class Choice:
    """Which of several proven codes for one routine the guest found fastest, and why."""

    name: str  # the code chosen (a key of the runs)
    figure: str  # what decided: "latency" (chained calls) or "cycles" (independent calls)
    reason: str  # one line
    evolved: str | None = None  # the evolved code put against gcc's (against), chosen or not


def _spread(c: CallCycles) -> str:
    return f"{c.median:.2f} [{c.spread[0]:.2f}-{c.spread[1]:.2f}]"


def fastest(runs: Mapping[str, FitnessRun], instructions: Mapping[str, int],
            shortest: str) -> Choice:
    """The fastest of the codes named in `instructions` (all proven, timed in one
    campaign), by median latency where the shortest has that figure, else cycles per call.
    The shortest stays unless another is faster beyond the spread measured: its upper
    quartile below the shortest's lower quartile, and on the other figure, where both
    have it, not slower beyond the spread by as large a share as it gains (its lower
    quartile above the shortest's upper one by a smaller share of the shortest's median
    than the medians differ by on the deciding figure: under KVM the counter moves in
    steps, so two codes alike in cycles can differ by one step with no spread; the two
    figures have different scales, so the shares are compared: qemu64 p23, 9.5% less
    latency for 18% more cycles per call, is no gain).  Of several faster ones, the lowest
    median, then the fewest instructions.  Where none is, one as fast on the deciding
    figure's median and faster beyond the spread on the other is chosen, the lowest there."""
    base = runs[shortest]
    figure = "latency" if base.ok and base.latency is not None else "cycles"
    other = "cycles" if figure == "latency" else "latency"
    mine = getattr(base, figure) if base.ok else None
    if mine is None:
        return Choice(shortest, figure, f"the shortest kept: it has no {figure} figure to beat")

    def faster(name: str) -> bool:
        run = runs[name]
        theirs = getattr(run, figure) if run.ok else None
        if theirs is None or not theirs.spread[1] < mine.spread[0]:
            return False
        # what it loses on the other figure beyond the spread, a smaller share than it gains
        a, b = getattr(run, other), getattr(base, other)
        return a is None or b is None or (a.spread[0] - b.spread[1]) / b.median < (
            mine.median - theirs.median) / mine.median

    def as_fast_and_faster_on_the_other(name: str) -> bool:
        run = runs[name]
        theirs, a, b = getattr(run, figure), getattr(run, other), getattr(base, other)
        return run.ok and theirs is not None and theirs.median <= mine.median and \
            a is not None and b is not None and a.spread[1] < b.spread[0]

    better = [n for n in instructions if n != shortest and faster(n)]
    if not better:
        # as fast on the deciding figure, faster beyond the spread on the other (qemu64
        # p14: two kept programs of 5 instructions, the shortest's latency, 1.84 cycles
        # per call against its 1.97)
        also = [n for n in instructions if n != shortest and as_fast_and_faster_on_the_other(n)]
        if not also:
            return Choice(shortest, figure, f"the shortest: no other proven program with no"
                                            f" more instructions is faster in {figure} beyond"
                                            f" the quartiles, or as fast and faster in {other}")
        name = min(also, key=lambda n: (getattr(runs[n], other).median, instructions[n]))
        theirs, mine_other = getattr(runs[name], other), getattr(base, other)
        return Choice(name, other, (
            f"{other} {_spread(theirs)} "
            f"with {instructions[name]} instructions, below the shortest's "
            f"{_spread(mine_other)}"
            f" with {instructions[shortest]}, and {figure} no higher"))
    name = min(better, key=lambda n: (getattr(runs[n], figure).median, instructions[n]))
    theirs = getattr(runs[name], figure)
    return Choice(name, figure, (
        f"{figure} {_spread(theirs)} with "
        f"{instructions[name]} instructions, below the shortest's {_spread(mine)} with "
        f"{instructions[shortest]}"))


# What beating gcc's code takes on one figure: a median lower by at least this share of
# gcc's, and a one-sided Mann-Whitney U test over the two codes' per-pair figures below
# this level.  The share: under this host's nested KVM one code's median moves by up to
# 3% from one timing to the next (Haswell p04, gcc's 2 instructions, 2.16 then 2.10
# cycles per call), and two codes alike in time differ by that much.  The test: a
# median lower by chance among a few noisy figures is no gain, and where gcc's figures
# spread wide (its p22 for qemu64: 2.10-2.81 cycles per call over the placements, ours
# 2.09-2.15) comparing quartiles would call a real gain none.
MIN_GAIN = 0.05
SIGNIFICANCE = 0.01


def lower(a: CallCycles, b: CallCycles) -> bool:
    """Whether figures `a` are lower than `b`: a median at least MIN_GAIN of b's below,
    and the one-sided Mann-Whitney U test's p-value below SIGNIFICANCE."""
    return a.median <= b.median * (1 - MIN_GAIN) and mannwhitneyu(
        a.per_pair, b.per_pair, alternative="less").pvalue < SIGNIFICANCE


def beats(run: FitnessRun, reference: FitnessRun) -> tuple[bool, str]:
    """Whether an evolved code's run beats the compiler's code's, timed in the same
    campaign: lower in cycles per call (`lower`) and not higher in latency; and if not,
    why."""
    if not run.ok or run.cycles is None:
        return False, "not measured right"
    a, b = run.cycles, reference.cycles
    if not lower(a, b):
        return False, f"not faster in cycles per call ({_spread(a)} against {_spread(b)}:" \
                      f" {MIN_GAIN:.0%} less and p < {SIGNIFICANCE} are wanted)"
    x, y = run.latency, reference.latency
    if x is not None and y is not None and lower(y, x):
        return False, f"slower in latency ({_spread(x)} against {_spread(y)})"
    return True, f"cycles per call {_spread(a)} against {_spread(b)}"


def against(runs: Mapping[str, FitnessRun], choice: Choice, reference: str,
            instructions: Mapping[str, int] | None = None) -> Choice:
    """`choice`, the evolved code chosen (nearest, or fastest), against the compiler's
    code named `reference`, proven like it and timed in the same campaign.  An evolved
    code stands where it beats the reference (beats): lower in cycles per call, the
    issue's fitness and the figure the document reports as `cycles`, and not higher in
    latency (`lower`: by MIN_GAIN of the median, and significantly).  Of the evolved codes
    named in `instructions` (else `choice` alone) that do, the lowest median in cycles per
    call, then the fewest instructions, stands; where none does, the reference is chosen,
    as STOKE's optimisation mode returns the compiler's code it started from when no
    rewrite beats it.  A gain in latency alone is none: streams of calls of a few
    instructions are bound by the calls (qemu64 p09 under this host's nested KVM: ours
    1.43 latency against gcc's 2.15, cycles per call within a counter step of gcc's,
    above or below its median from one timing to the next), so a code that wins on
    latency alone is at or below gcc's median cycles by chance."""
    theirs = runs.get(reference)
    if theirs is None or not theirs.ok or theirs.cycles is None:
        return choice
    named = list(instructions) if instructions is not None else [choice.name]
    standing = [n for n in named if beats(runs[n], theirs)[0]]
    if standing:
        name = min(standing, key=lambda n: (runs[n].cycles.median,
                                            instructions[n] if instructions else 0,
                                            n != choice.name, named.index(n)))
        reason = choice.reason if name == choice.name else \
            f"faster than gcc's code: {beats(runs[name], theirs)[1]}"
        return Choice(name, "cycles", reason, name)
    return Choice(reference, choice.figure,
                  f"the compiler's code: the evolved one put against it ({choice.name}) is "
                  f"{beats(runs[choice.name], theirs)[1]}", choice.name)


def replicated(choice: Choice, again: Mapping[str, FitnessRun], reference: str) -> Choice:
    """`choice`, an evolved code that beat the compiler's code named `reference` (against),
    after both were timed again on fresh vectors (`again`: "evolved", "reference"): it
    stands only where it beats it again; else the compiler's code is chosen.  One
    timing's gain, however clear, can be the compiler's code's bad luck: under this
    host's nested KVM one code's figure moved by 7% between two timings (Haswell p14,
    gcc's code: 2.26 [2.14-2.27] cycles per call, then 2.11 [2.05-2.13]; the evolved one
    2.05, then 2.14)."""
    ok, why = beats(again["evolved"], again["reference"])
    if ok:
        return choice
    return Choice(reference, choice.figure, f"the compiler's code: {choice.name} beat it in"
                                            f" the first timing, and timed again is {why}",
                  choice.name)


def replicate(link: Link, isa: Isa, spec: Routine, choice: Choice, codes: Mapping[str, bytes],
              reference: str, count: int, seed: int, campaign: Campaign
              ) -> tuple[Choice, dict[str, FitnessRun]]:
    """The evolved code `choice` names and the compiler's (`codes[reference]`) timed again
    in one more campaign round on fresh vectors (`seed`), and the choice that timing
    leaves (replicated)."""
    again = run_in_guest(link, isa, spec, {"evolved": codes[choice.name],
                                           "reference": codes[reference]}, count, seed,
                         campaign)
    return replicated(choice, again, reference), again


def confirm(link: Link, isa: Isa, spec: Routine, chosen: bytes, reference: bytes | None,
            count: int, seed: int, campaign: Campaign) -> tuple[FitnessRun, FitnessRun | None]:
    """The chosen code and the reference timed again, in one more campaign round on fresh
    vectors (`seed`): the figures reported.  The first timing chose one of several codes
    by their figures, so the chosen one's figures there lean low (the least of several
    noisy figures); a second timing of it alone beside the reference does not."""
    codes = {"chosen": chosen, **({"reference": reference} if reference is not None else {})}
    runs = run_in_guest(link, isa, spec, codes, count, seed, campaign)
    return runs["chosen"], runs.get("reference")


def nearest(runs: Mapping[str, FitnessRun], instructions: Mapping[str, int], shortest: str,
            yardstick: str) -> Choice:
    """Of the evolved codes named in `instructions`, the one nearest to being at or below
    the code `yardstick` (gcc's, timed in the same campaign) on both figures: the least of
    its largest excess over the yardstick's median (both figures are cycles per call),
    then of the excesses' sum, then the fewest instructions, then the first named.  Where
    the aim is to be no slower than gcc's code, a program with a real loss on one figure
    is not worth a larger gain on the other (qemu64 p12: the shortest, 6 instructions,
    0.68 less latency than gcc's and 0.1 more cycles per call in run after run; a kept
    program of 6, 0.71 less latency and gcc's cycles)."""
    ref = runs[yardstick]

    def excesses(name: str) -> dict[str, float] | None:
        run = runs[name]
        if not run.ok:
            return None
        out = {f: getattr(run, f).median - getattr(ref, f).median
               for f in ("cycles", "latency")
               if getattr(run, f) is not None and getattr(ref, f) is not None}
        return out or None

    named = list(instructions)
    scored = {n: e for n in named if (e := excesses(n)) is not None}
    if shortest not in scored:
        return fastest(runs, instructions, shortest)
    name = min(scored, key=lambda n: (max(scored[n].values()), sum(scored[n].values()),
                                      instructions[n], named.index(n)))
    figure = max(scored[name], key=scored[name].get)
    worst = scored[name][figure]
    if name == shortest:
        return Choice(shortest, figure, f"the shortest: no other proven program nearer to"
                                        f" gcc's code on its worse figure ({figure}"
                                        f" {worst:+.2f} per call)")
    return Choice(name, figure, (
        f"nearer to gcc's code on its worse figure ({figure} {worst:+.2f} per call, the"
        f" shortest's {max(scored[shortest].values()):+.2f}) with {instructions[name]}"
        " instructions"))


def choose(runs: Mapping[str, FitnessRun], instructions: Mapping[str, int], shortest: str,
           yardstick: str | None = None, proven: bool = False) -> Choice:
    """The evolved code nearest to gcc's (`yardstick`, where it ran right) on both
    figures, else the fastest (the shortest alone: it); then, where gcc's code is
    `proven` too, against it: of the evolved codes named in `instructions` that beat
    it, the one of the fewest cycles per call."""
    if len(instructions) == 1:
        choice = Choice(shortest, "cycles", "the shortest: no other proven program to time"
                                            " (none kept with no more instructions than"
                                            " gcc's, or no gcc code)")
    elif yardstick is not None and yardstick in runs and runs[yardstick].ok:
        choice = nearest(runs, instructions, shortest, yardstick)
    else:
        choice = fastest(runs, instructions, shortest)
    return against(runs, choice, yardstick, instructions) if proven and yardstick is not None \
        else choice
