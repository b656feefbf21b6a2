"""Performance history, as StarPU's history-based models keep it.

One model per (routine, implementation) on a board -- the board is whoever keeps
the History, so the key is routine x implementation x board -- holding the mean,
the spread (standard deviation) and the sample count of what runs took.  A task's
time grows with its batch, so each model also fits time = overhead + per_vector * n
by least squares over its samples (StarPU's regression-based models do the same
for sizes); the per-vector mean/std/count are what tables show.

A model is *calibrated* after CALIBRATION_SAMPLES runs (StarPU: about 10 per
architecture); before that a prediction is a guess (eager scheduling), marked so.

Where the host says how much CPU a run took (a live board: its QEMU's CPU time, read
around the run), each model also fits that line in CPU-seconds, and the History keeps
two board-wide figures, smoothed over the latest runs: the share of a CPU the board got
while running (its CPU-seconds over the run's wall time) and the time a task spends
outside its run (the inputs travelling, the result coming back).  A prediction is then
CPU-seconds / share + that time.  Why: boards sharing a host's cores run slower the
more of them are busy, and a model of wall times keeps the load its samples were taken
under.  Four TCG boards on two cores, bench B of 2026-12-06: calibration runs (every
board calibrating at once, then the last ones alone) took 0.3-3.7x the same routine's
times in the graph's runs on the same board (rv64's p23, calibrated alone, a third;
every board's sort3, calibrated with all four busy, nearly twice), and the bids built on
them were off the graph's times by a log-sd of 0.40-0.49, against 0.30 for one run
against others of the same task.

The share is the host's as much as the board's: a board that wins nothing runs
nothing, and its own share would stay what it was when it last ran, at calibration
with every board busy (bench C's stream of 2026-12-06: q35:qemu64 and rv64 without Zb*,
calibrated while all four boards were, went on predicting half a CPU, and 94-100% of
the tasks no board has code of its own for went to Haswell and rv64, which the graph's
table measured as no quicker).  So where the host says what share its
runs get now (`host_share`: the board host's smoothed share over every board's runs),
a board predicts with that times its own ratio to it (`relative`: what its runs got
against the host's share then), which stays true while it is idle.

So is the time outside a run: the messages and the inputs travel through the same
host, whichever board they are for, and a board's own figure, last learnt at
calibration with every board busy, stays what it was while the board wins nothing
(bench C of 2026-12-07: rv64 without Zb* predicted 10.9 ms outside each task for 40 s
where the boards that ran had 0.7-3.9 ms, and won 1 of the stream's 200 tasks; in a run
before, where it did win, its lines were as quick as any board's).  Where the host
says it (`host_outside`: the board host's smoothed time over every board's tasks), a
board predicts with that.
"""

from __future__ import annotations

import math
from collections import Counter
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
class Smoothed:
    """An exponentially weighted mean: the latest samples count most (`weight` each)."""

    weight: float = 0.3
    value: float = 0.0
    count: int = 0

    def add(self, x: float) -> None:
        self.count += 1
        self.value = x if self.count == 1 else self.value + self.weight * (x - self.value)


@dataclass
class LinearFit:
    """Least-squares sums for y = overhead + slope * x."""

    n: int = 0
    sum_x: float = 0.0
    sum_y: float = 0.0
    sum_xx: float = 0.0
    sum_xy: float = 0.0

    def add(self, x: float, y: float) -> None:
        self.n += 1
        self.sum_x += x
        self.sum_y += y
        self.sum_xx += x * x
        self.sum_xy += x * y

    def fit(self) -> tuple[float, float]:
        """(overhead, slope), both >= 0."""
        spread = self.n * self.sum_xx - self.sum_x ** 2
        if self.n < 2 or spread <= 1e-9 * max(1.0, self.sum_xx):
            # one size seen so far: all of it per x
            return 0.0, self.sum_xy / self.sum_xx if self.sum_xx else 0.0
        slope = (self.n * self.sum_xy - self.sum_x * self.sum_y) / spread
        overhead = (self.sum_y - slope * self.sum_x) / self.n
        if slope < 0:  # noise on a flat cost: the mean, whatever x
            return self.sum_y / self.n, 0.0
        if overhead < 0:
            return 0.0, self.sum_xy / self.sum_xx  # the best line through the origin
        return overhead, slope

    def predict(self, x: float) -> float:
        overhead, slope = self.fit()
        return overhead + slope * x


@dataclass
class PerfModel:
    """What runs of one implementation of one routine took on one board."""

    per_vector: Running = field(default_factory=Running)  # seconds per input vector
    cycles_per_vector: Running = field(default_factory=Running)  # guest cycles per vector
    # guest cycles per second of run: how much of a run the board's CPU worked (a guest
    # counts only its own runs, not the line that brought their inputs)
    cycles_per_second: Running = field(default_factory=Running)
    seconds: LinearFit = field(default_factory=LinearFit)  # seconds over the batch size
    # batch size -> the guest's cycles of each run of that size, where counted: what
    # implementations differ in (agent.BoardAgent.choose compares them size for size)
    cycles_at: dict[int, list[int]] = field(default_factory=dict)
    sizes: Counter = field(default_factory=Counter)  # batch size -> runs of it
    cpu: LinearFit = field(default_factory=LinearFit)  # the run's host CPU-seconds, where known
    # relative error of each prediction (History.predict) before the run was learnt
    residual: Running = field(default_factory=Running)

    @property
    def count(self) -> int:
        return self.per_vector.count

    def calibrated(self, samples: int = CALIBRATION_SAMPLES) -> bool:
        return self.count >= samples

    def add(self, size: int, seconds: float, cycles: int = 0, cpu: float | None = None,
            fit: bool = True) -> None:
        """One run; `fit` False counts it without fitting it or its cycles (a board's
        warm-up run, whose cycles hold TCG translating the batch path: the cycles
        choose the implementation, agent.BoardAgent.choose)."""
        self.per_vector.add(seconds / size)
        self.sizes[size] += 1
        if not fit:
            return
        if cycles:
            self.cycles_per_vector.add(cycles / size)
            self.cycles_at.setdefault(size, []).append(cycles)
            if seconds > 0:
                self.cycles_per_second.add(cycles / seconds)
        self.seconds.add(size, seconds)
        if cpu is not None:
            self.cpu.add(size, cpu)

    def line(self) -> tuple[float, float]:
        """(overhead seconds, seconds per vector) of the fitted line, both >= 0 (the
        mean per vector while only a warm-up run is known)."""
        return self.seconds.fit() if self.seconds.n else (0.0, self.per_vector.mean)

    def predict(self, size: int) -> float:
        overhead, slope = self.line()
        return overhead + slope * size

    def to_json(self) -> dict:
        overhead, slope = self.line()
        return {"count": self.count, "mean_s_per_vector": self.per_vector.mean,
                "std_s_per_vector": self.per_vector.std, "overhead_s": overhead,
                "slope_s_per_vector": slope, "cycles_per_vector": self.cycles_per_vector.mean,
                "relative_error": self.residual.mean}


# The least share of a CPU taken from a run (a run whose QEMU was hardly on a CPU): a
# share read as near 0 would make every prediction near infinite
MIN_SHARE = 0.05


def share_of(cpu: float, seconds: float) -> float:
    """The share of a CPU a run got: its CPU-seconds over its wall seconds, at most one
    CPU and at least MIN_SHARE."""
    return max(min(cpu / seconds, 1.0), MIN_SHARE)


@dataclass
class History:
    """A board's history: a PerfModel per (routine, implementation), and, where runs'
    CPU is known, the board's recent share of a CPU and time outside its runs."""

    models: dict[tuple[str, str], PerfModel] = field(default_factory=dict)
    share: Smoothed = field(default_factory=Smoothed)  # CPU-seconds per second of run
    # the host's share now (None: not told), and this board's runs' share over it
    host_share: float | None = None
    relative: Smoothed = field(default_factory=Smoothed)
    outside: Smoothed = field(default_factory=Smoothed)  # seconds of a task not in its run
    # the host's time outside a run now (None: not told): its board host's, smoothed over
    # every board's tasks, which a board predicts with in place of its own
    host_outside: float | None = None
    warmed: bool = False  # the board's first run has been recorded

    def model(self, routine: str, implementation: str) -> PerfModel:
        return self.models.setdefault((routine, implementation), PerfModel())

    def record(self, routine: str, implementation: str, size: int, seconds: float,
               cycles: int = 0, cpu: float | None = None, run: float | None = None
               ) -> float | None:
        """One task: `seconds` as measured (what a promise is held to); `cpu` and `run`,
        where the host knows them, the CPU-seconds its run took and the run's own wall
        seconds (the rest of `seconds` was outside the run).  Returns that rest where it
        was learnt, for the host to pool (`host_outside`)."""
        known = cpu is not None and cpu > 0 and run is not None and run > 0
        model = self.model(routine, implementation)
        if model.count:  # how far off the prediction a bid would have made was
            predicted = self.predict(routine, implementation, size)
            model.residual.add(abs(seconds - predicted) / max(predicted, 1e-9))
        # The board's first run is counted, not fitted: it warms what every later run
        # finds ready (TCG translates the batch path; caches are cold).  Bench B,
        # 2026-12-06: each board's first run took 2-23x the wall time and 2.5x the CPU
        # of the same routine's others, and pulled its line flat.
        model.add(size, seconds, cycles, cpu if known else None, fit=self.warmed)
        outside = None
        if known and self.warmed:
            share = share_of(cpu, run)
            self.share.add(share)
            if self.host_share:
                self.relative.add(share / self.host_share)
            outside = max(seconds - run, 0.0)
            self.outside.add(outside)
        self.warmed = True
        return outside

    def predict(self, routine: str, implementation: str, size: int) -> float:
        """Seconds a run of `size` vectors takes: from CPU-seconds at the board's recent
        share of a CPU, where both are known, else from the fitted line of seconds."""
        model = self.model(routine, implementation)
        if model.cpu.n >= 2 and self.share.count:
            return model.cpu.predict(size) / self.share_now() + self.outside_now()
        return model.predict(size)

    def share_now(self) -> float:
        """The share of a CPU a run would get now: the host's times this board's ratio to
        it, where both are known, else the board's own latest runs'."""
        if self.host_share and self.relative.count:
            return share_of(self.relative.value * self.host_share, 1.0)
        return self.share.value

    def outside_now(self) -> float:
        """The time a task spends outside its run now: the host's where told, else the
        board's own latest tasks'."""
        return self.host_outside if self.host_outside is not None else self.outside.value

    def board_rate(self) -> float | None:
        """Seconds per vector over every calibrated model: a newcomer routine's first guess."""
        rates = [m.per_vector.mean for m in self.models.values() if m.calibrated()]
        return sum(rates) / len(rates) if rates else None
