"""Fitness measured in the guest: machine code timed on the board by a loop of calls
(probes/timed_calls.py), every answer checked against the interpreter.

Several codes for one routine run on the same vectors in one campaign, so their figures
are measured under the same conditions.  The figure is cycles per call with the loop's
overhead taken out: each vector's inputs passed to the code 16 times in a row, every
vector in turn, between two serialising reads of the cycle counter, less the same loop
around an empty function (its return alone), in pairs of passes; the median over the
pairs, the quartiles as its spread.  Under TCG the counts describe QEMU (with `-icount
shift=0`, one per instruction executed before the return), under KVM the silicon's
time-stamp counter (x86-64: constant rate, not the core clock).
"""

from __future__ import annotations

from dataclasses import dataclass

from evolution.check import probe_vector
from evolution.isa import Isa
from evolution.testset import machine_vectors
from probes.campaign import Campaign, Link
from probes.probe import Observation
from probes.timed_calls import CallCycles, time_on_link, timed_form
from sem.ir import Routine


@dataclass(frozen=True)
class FitnessRun:
    """One code's runs on the board."""

    vectors: int
    agreed: int
    cycles: CallCycles | None  # per call, loop overhead subtracted (None: not every probe
    detail: str  # the first disagreement, or ""                    returned its counts)

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
    forms = [timed_form(spec, isa.arch, code) for code in codes.values()]
    runs = time_on_link(link, forms, vectors, campaign)
    out = {}
    for name, run in zip(codes, runs, strict=True):
        detail = ""
        if run.first_disagreement is not None:
            v, want, got = run.first_disagreement
            board = (f"outcome {got.outcome.name} status {got.status}"
                     if isinstance(got, Observation) else f"gives {got.result}")
            detail = f"inputs {v.args}: the interpreter gives {want.result}, the board {board}"
        out[name] = FitnessRun(count, run.agreed, run.cycles, detail)
    return out
