"""Fitness measured in the guest: machine code timed on the board by loops of calls
(probes/timed_calls.py), every answer checked against the interpreter.

Several codes for one routine run on the same vectors in one campaign, so their figures
are measured under the same conditions.  Two figures, each in cycles per call with the
loop's overhead taken out, the median over pairs of passes with the quartiles as spread:

    cycles    independent calls: each vector's inputs passed to the code 16 times in a
              row, every vector in turn, between two serialising reads of the cycle
              counter, less the same loop around an empty function (its return alone)
    latency   chained calls (routines with a scalar result and no memory): each call's
              arguments wait for the previous result (added to them times 0), 4 calls per
              vector, less the same loop around the identity function (x86-64 `mov rax,
              rdi; ret`, riscv64 `ret`): the code's latency from arguments to result

Under TCG the counts describe QEMU (with `-icount shift=0`, one per instruction
executed), under KVM the silicon's time-stamp counter (x86-64: constant rate, not the
core clock).
"""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def median_latency(self) -> float | None:
        return self.latency.median if self.latency else None


def run_in_guest(link: Link, isa: Isa, spec: Routine, codes: dict[str, bytes], count: int,
                 seed: int, campaign: Campaign | None = None) -> dict[str, FitnessRun]:
    """Time each named code as `spec` on the same `count` machine vectors (inputs as the
    platform ABI passes them: junk above 32-bit x86-64 arguments, sign extension on
    riscv64), in one campaign on `link`."""
    vectors = [probe_vector(isa, spec, v) for v in machine_vectors(isa, spec, count, seed)]
    campaign = campaign or Campaign(link, POLICY)  # one per boot: its run ids go on
    forms = [timed_form(spec, isa.arch, code) for code in codes.values()]
    runs = time_on_link(link, forms, vectors, campaign)
    chained: list[TimedRun | None] = [None] * len(codes)
    if spec.result is not None and not spec.uses_memory:
        chained = list(time_on_link(link, [timed_form(spec, isa.arch, code, chained=True)
                                           for code in codes.values()],
                                    vectors, campaign, calls=CHAINED_CALLS_PER_VECTOR))
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
