"""Fitness measured in the guest: machine code run on the board as probes (the probe form
`sem run` uses, probes/routine.py), every answer checked against the interpreter, the
guest's cycle count of each run kept.

Several codes for one routine run on the same vectors in one campaign, so their cycle
counts are measured under the same conditions.  The counts are the guest's, around the
whole probe run (the probe form's wrapper, entry and exit included), so two codes
compare by their difference; under TCG they describe QEMU, under KVM the silicon.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from evolution.check import probe_vector
from evolution.isa import Isa
from evolution.testset import machine_vectors
from probes.campaign import Campaign, Link
from probes.routine import Job, probe_form, run_on_link
from sem.ir import Routine


@dataclass(frozen=True)
class FitnessRun:
    """One code's runs on the board."""

    vectors: int
    agreed: int
    cycles: tuple[int, ...]  # per returned run, the guest's count
    detail: str  # the first disagreement, or ""

    @property
    def ok(self) -> bool:
        return self.agreed == self.vectors

    @property
    def median_cycles(self) -> float | None:
        return statistics.median(self.cycles) if self.cycles else None


def run_in_guest(link: Link, isa: Isa, spec: Routine, codes: dict[str, bytes], count: int,
                 seed: int, campaign: Campaign | None = None) -> dict[str, FitnessRun]:
    """Run each named code as `spec` on the same `count` machine vectors (inputs as the
    platform ABI passes them: junk above 32-bit x86-64 arguments, sign extension on
    riscv64), one probe per vector, in one campaign on `link`."""
    vectors = [probe_vector(isa, spec, v) for v in machine_vectors(isa, spec, count, seed)]
    jobs = [Job(spec, probe_form(spec, isa.arch, code), vectors) for code in codes.values()]
    runs = run_on_link(link, jobs, campaign)
    out = {}
    for name, run in zip(codes, runs, strict=True):
        detail = ""
        if run.disagreements:
            v, want, obs = run.disagreements[0]
            detail = (f"inputs {v.args}: the interpreter gives {want.result}, the board "
                      f"outcome {obs.outcome.name} status {obs.status}")
        out[name] = FitnessRun(count, run.agreed, tuple(run.cycles), detail)
    return out
