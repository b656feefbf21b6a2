"""The performance half of a candidate's cost: a weight per instruction and a weight per
cycle of latency, from per-form latencies that the timing family measures on a board
(`measured`) or, until it has, the forms' fallback table (`fallback`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from evolution.isa import Isa
from evolution.program import MachineProgram


@dataclass(frozen=True)
class PerformanceModel:
    latency: Mapping[str, float]  # form name -> cycles
    throughput: Mapping[str, float]  # form name -> cycles per instruction issued (reciprocal)
    per_instruction: float = 1.0
    per_cycle: float = 0.05
    source: str = "fallback table"

    def latencies(self, isa: Isa) -> np.ndarray:
        """Per form index (0: UNUSED, free)."""
        out = np.zeros(len(isa.forms) + 1, dtype=np.float64)
        for f in isa.forms:
            out[isa.form_index(f.name)] = self.latency.get(f.name, f.latency)
        return out

    def cost(self, program: MachineProgram) -> float:
        """A program's cost: instructions (a compound form's each) and latency, weighed."""
        return self.per_instruction * (program.instructions - 1) + self.per_cycle * sum(
            self.latency[i.form] for i in program.insns)

    def weights(self) -> np.ndarray:
        return np.array([self.per_instruction, self.per_cycle], dtype=np.float64)


def fallback(isa: Isa) -> PerformanceModel:
    return PerformanceModel({f.name: f.latency for f in isa.forms}, {})


def measured(isa: Isa, latency: Mapping[str, float], throughput: Mapping[str, float],
             board: str) -> PerformanceModel:
    """Timings measured on `board` (forms it did not measure keep the fallback figure)."""
    table = {f.name: latency.get(f.name, f.latency) for f in isa.forms}
    return PerformanceModel(table, dict(throughput), source=f"measured on {board}")
