"""Performance history, as StarPU's history-based models keep it.

One model per (routine, implementation) on a board -- the board is whoever keeps
the History, so the key is routine x implementation x board -- holding the mean,
the spread (standard deviation) and the sample count of what runs took.  A task's
time grows with its batch, so each model also fits time = overhead + per_vector * n
by least squares over its samples (StarPU's regression-based models do the same
for sizes); the per-vector mean/std/count are what tables show.

A model is *calibrated* after CALIBRATION_SAMPLES runs (StarPU: about 10 per
architecture); before that a prediction is a guess (eager scheduling), marked so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

CALIBRATION_SAMPLES = 10


@dataclass
class Running:
    """Mean and spread of a stream of numbers (Welford), without keeping them."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: float) -> None:
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0


@dataclass
class PerfModel:
    """What runs of one implementation of one routine took on one board."""

    per_vector: Running = field(default_factory=Running)  # seconds per input vector
    cycles_per_vector: Running = field(default_factory=Running)  # guest cycles per vector
    # guest cycles per second of run: how much of a run the board's CPU worked (a guest
    # counts only its own runs, not the line that brought their inputs)
    cycles_per_second: Running = field(default_factory=Running)
    # least-squares sums for seconds = overhead + slope * n
    n: int = 0
    sum_x: float = 0.0
    sum_y: float = 0.0
    sum_xx: float = 0.0
    sum_xy: float = 0.0
    residual: Running = field(default_factory=Running)  # relative error of each prediction

    @property
    def count(self) -> int:
        return self.per_vector.count

    def calibrated(self, samples: int = CALIBRATION_SAMPLES) -> bool:
        return self.count >= samples

    def add(self, size: int, seconds: float, cycles: int = 0) -> None:
        if self.count:
            predicted = self.predict(size)
            self.residual.add(abs(seconds - predicted) / max(predicted, 1e-9))
        self.per_vector.add(seconds / size)
        if cycles:
            self.cycles_per_vector.add(cycles / size)
            if seconds > 0:
                self.cycles_per_second.add(cycles / seconds)
        self.n += 1
        self.sum_x += size
        self.sum_y += seconds
        self.sum_xx += size * size
        self.sum_xy += size * seconds

    def line(self) -> tuple[float, float]:
        """(overhead seconds, seconds per vector) of the fitted line, both >= 0."""
        spread = self.n * self.sum_xx - self.sum_x ** 2
        if self.n < 2 or spread <= 1e-9 * max(1.0, self.sum_xx):
            return 0.0, self.per_vector.mean  # one size seen so far: all of it per vector
        slope = (self.n * self.sum_xy - self.sum_x * self.sum_y) / spread
        overhead = (self.sum_y - slope * self.sum_x) / self.n
        if slope < 0:  # noise on a flat cost: the mean time, whatever the size
            return self.sum_y / self.n, 0.0
        if overhead < 0:
            return 0.0, self.sum_xy / self.sum_xx  # the best line through the origin
        return overhead, slope

    def predict(self, size: int) -> float:
        overhead, slope = self.line()
        return overhead + slope * size

    def to_json(self) -> dict:
        overhead, slope = self.line()
        return {"count": self.count, "mean_s_per_vector": self.per_vector.mean,
                "std_s_per_vector": self.per_vector.std, "overhead_s": overhead,
                "slope_s_per_vector": slope, "cycles_per_vector": self.cycles_per_vector.mean,
                "relative_error": self.residual.mean}


@dataclass
class History:
    """A board's history: a PerfModel per (routine, implementation)."""

    models: dict[tuple[str, str], PerfModel] = field(default_factory=dict)

    def model(self, routine: str, implementation: str) -> PerfModel:
        return self.models.setdefault((routine, implementation), PerfModel())

    def record(self, routine: str, implementation: str, size: int, seconds: float,
               cycles: int = 0) -> None:
        self.model(routine, implementation).add(size, seconds, cycles)

    def board_rate(self) -> float | None:
        """Seconds per vector over every calibrated model: a newcomer routine's first guess."""
        rates = [m.per_vector.mean for m in self.models.values() if m.calibrated()]
        return sum(rates) / len(rates) if rates else None
