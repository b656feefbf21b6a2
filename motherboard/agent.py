"""A board's agent: it bids from its own performance history and runs what it wins.

The agent is the board side of the message interface, sans-IO like the motherboard:
it answers a BidRequest with a Bid (or a Decline), queues Awards, drops Cancels (and
says when the run of a cancelled job had begun: its host stops it),
turns a finished run into a Result, and learns from each Settle how long the task
took as the motherboard measured it.  Whoever
hosts the board (a simulated board, a thread driving a QEMU board) runs the queue
and reports each run's time.

The agent keeps its queue as a plan, as HEFT keeps a processor's schedule: each
awarded job in the order it is to run, at a predicted start no earlier than its
inputs are expected (the BidRequest says when) and no earlier than the job before it
ends.  A bid places the task where it would finish first: in the first idle gap of
the plan it fits into without moving a planned job (HEFT's insertion), else at the
end; the promise is that finish, counted from the inputs' arrival.  The board runs
its plan in order; a job whose inputs are there may go before an earlier one still
waiting for its inputs only if it is predicted to end before those are expected (so
it fills the gap and delays nothing), or once they are overdue (the plan was wrong:
the board then takes what it can, and nothing waits on a late parent forever).
The run's time comes from the board's history (history.py: mean/spread/count per
routine x implementation, a fitted line over batch sizes; on a live board, CPU-seconds
at the board's recent share of a CPU), and before a model is
calibrated from a guess: the board's mean rate over its calibrated routines, or
GUESS_PER_VECTOR.  Its price
is its cost: PRICE_PER_SECOND per promised second plus PRICE_PER_JOULE per predicted
joule (the energy model, energy.py).  In the second-price auction asking the true
cost is the best strategy, so the honest agent does.

Each board runs its own best implementation of a routine: once each has been tried
`explore` times (eager exploration, first the least tried; calibration tasks, which go
to the board whatever it asks, pay for it), the one whose runs took the fewest of the
guest's own cycles at the sizes they share (`choose`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace

from motherboard.history import CALIBRATION_SAMPLES, History
from motherboard.messages import (
    Award,
    Bid,
    BidRequest,
    Cancel,
    Decline,
    DiscoveryReport,
    Inputs,
    Result,
    Settle,
)

# What a board guesses before it has measured anything: pessimistic, so that a promise
# made in ignorance is kept (a calibration task goes to its board whatever it asks).
GUESS_PER_VECTOR = 1e-4  # seconds per vector
GUESS_OVERHEAD = 0.05  # seconds per task
GUESS_CYCLES_PER_SECOND = 2e9  # cycles a second of run is taken to be, before any were counted
PRICE_PER_SECOND = 1.0  # credits
PRICE_PER_JOULE = 0.01  # credits: energy weighs about a tenth of time on an x86 board


@dataclass
class AwardedJob:
    """An awarded task waiting for (or in) its run, with the prediction it was bid at."""

    award: Award
    predicted: float
    expected: float = 0.0  # when its inputs were expected (the bid request said)
    started: float | None = None
    ready: float | None = None  # when its inputs were there (with the award, or later)

    def ready_by(self, now: float) -> float:
        """When its inputs are (or are now expected to be) there."""
        return self.ready if self.ready is not None else max(self.expected, now)


def holds_up(expected: float, run: float, now: float) -> bool:
    """Whether an earlier job whose inputs are expected at `expected` holds back a job
    of `run` seconds whose inputs are there: it would not end before they come, and they
    are not yet overdue by as long as it runs (past that the plan was wrong, and the
    board takes what it can).  Written with the very sums `wake_at` wakes the board at:
    |now - expected| < run rounds differently, and a job could stay held at its own
    wake-up with none after it.  The motherboard asks it too, before it moves a task to
    an idle board (market.Motherboard._free_for)."""
    return expected - run < now < expected + run


ASKED_KEPT = 64  # bid requests whose expected input times an agent remembers until awarded


@dataclass(frozen=True)
class FinishedRun:
    """A run whose Settle has not come: what to learn from it once it does."""

    routine: str
    implementation: str
    size: int
    cycles: int
    waited: float  # seconds it waited here with its inputs for the job before it
    cpu: float | None  # CPU-seconds of the run, where the host knows
    seconds: float  # the run's own wall time, as the board measured it


@dataclass
class BoardAgent:
    report: DiscoveryReport
    # runs of each implementation before it is picked by prediction: the motherboard's
    # calibration gives each this many, so that is when its history is calibrated
    explore: int = CALIBRATION_SAMPLES
    history: History = field(default_factory=History)
    declined: set[str] = field(default_factory=set)
    queue: deque[AwardedJob] = field(default_factory=deque)
    unsettled: dict[str, FinishedRun] = field(default_factory=dict)  # by task
    # task -> when its inputs are expected, from the bid request (until awarded)
    asked: dict[str, float] = field(default_factory=dict)

    @property
    def board(self) -> str:
        return self.report.board

    def implementations(self, routine: str) -> list[str]:
        return [o.implementation for o in self.report.offers if o.routine == routine]

    # -- what the board says -------------------------------------------------------------------

    def on_request(self, request: BidRequest, now: float) -> Bid | Decline:
        impls = self.implementations(request.routine)
        if request.routine in self.declined or not impls:
            return Decline(self.board, task=request.task)
        impl = self.choose(request.routine, request.size)
        seconds, calibrated = self.predict(request.routine, impl, request.size)
        expected = now + request.start_after
        self.asked[request.task] = expected
        while len(self.asked) > ASKED_KEPT:
            del self.asked[next(iter(self.asked))]
        # counted from the inputs' arrival: the wait for the slot in the plan, and the run
        _, finish = self.place(now, expected, seconds)
        promise = finish - expected
        joules = self.joules(request.routine, impl, request.size, seconds)
        return Bid(request.task, self.board, impl, promise, joules,
                   PRICE_PER_SECOND * promise + PRICE_PER_JOULE * joules, calibrated, seconds)

    def on_award(self, award: Award, now: float) -> None:
        predicted, _ = self.predict(award.routine, award.implementation, award.size)
        expected = now if award.inputs is not None else self.asked.pop(award.task, now)
        self.asked.pop(award.task, None)
        position, _ = self.place(now, expected, predicted)
        self.queue.insert(position, AwardedJob(award, predicted, expected,
                                               ready=now if award.inputs is not None else None))

    def on_inputs(self, inputs: Inputs, now: float) -> None:
        """The inputs of a task awarded without them."""
        for job in self.queue:
            if job.award.task == inputs.task and job.award.inputs is None:
                job.award, job.ready = replace(job.award, inputs=inputs.inputs), now

    def on_cancel(self, cancel: Cancel) -> bool:
        """Drop the task from the plan; True when its run had begun, so that the host stops
        it: the motherboard has it run elsewhere or gave up on it, and a run to the end
        would take a shared host's CPU from the runs that count."""
        begun = any(j.award.task == cancel.task and j.started is not None for j in self.queue)
        self.queue = deque(j for j in self.queue if j.award.task != cancel.task)
        return begun

    def decline(self, routines: tuple[str, ...]) -> Decline:
        self.declined.update(routines)
        return Decline(self.board, routines)

    # -- running ---------------------------------------------------------------------------------

    def next_job(self, now: float) -> AwardedJob | None:
        """The job to run now, if the board is idle and has one: the first of the plan
        whose inputs are there, unless it would delay an earlier one whose inputs are
        expected before it would end (see the module's docstring)."""
        if any(job.started is not None for job in self.queue):
            return None
        waiting: list[float] = []  # when the inputs of the jobs passed over are expected
        for job in self.queue:
            if job.award.inputs is None:
                waiting.append(job.expected)
            elif not any(holds_up(expected, job.predicted, now) for expected in waiting):
                job.started = now
                return job
        return None

    def wake_at(self, now: float) -> float | None:
        """When to ask `next_job` again though no message came: a job whose inputs are
        there, held back for an earlier one's, runs once those are overdue."""
        if any(job.started is not None for job in self.queue):
            return None
        times = []
        for i, held in enumerate(self.queue):
            if held.award.inputs is not None:
                times += [t for job in list(self.queue)[:i] if job.award.inputs is None
                          for t in (job.expected - held.predicted, job.expected + held.predicted)
                          if t > now]
        return min(times, default=None)

    def finished(self, job: AwardedJob, outputs: bytes | None, seconds: float,
                 cycles: int = 0, error: str | None = None,
                 joules: float | None = None, cpu: float | None = None) -> Result:
        """The run of `job` ended after `seconds` (`cpu`: the CPU-seconds it took, where
        the host knows): learn from it, and the Result to send."""
        award = job.award
        if job in self.queue:
            self.queue.remove(job)
        if outputs is not None:  # learnt from when the motherboard says how long it took
            waited = 0.0
            if job.started is not None and job.ready is not None:
                waited = max(job.started - job.ready, 0.0)
            self.unsettled[award.task] = FinishedRun(award.routine, award.implementation,
                                                     award.size, cycles, waited, cpu, seconds)
        if joules is None:
            joules = self.joules(award.routine, award.implementation, award.size, seconds,
                                 cycles)
        # no time of its own: the motherboard measures the run (its oracle)
        return Result(award.task, self.board, award.implementation, outputs, error, cycles,
                      joules)

    def on_settle(self, settle: Settle) -> float | None:
        """Learn the run's time as the motherboard measured it (from the inputs' sending
        to the result): that is what a promise is held to, messages and all, so it is
        what to predict -- less the time the task waited here behind another, which a bid
        counts in its queue instead.  Returns the time the task spent outside its run,
        where known, for the host to pool (history.History.host_outside)."""
        run = self.unsettled.pop(settle.task, None)
        if run is None:
            return None
        return self.history.record(run.routine, run.implementation, run.size,
                                   max(settle.seconds - run.waited, 0.0), run.cycles, run.cpu,
                                   run.seconds)

    # -- predictions -----------------------------------------------------------------------------

    def choose(self, routine: str, size: int) -> str:
        """The implementation to bid with: one not tried `explore` times yet (eager
        exploration: the one with the fewest runs of this size, then the least tried),
        else the one whose runs took the fewest of the guest's cycles at the sizes every
        one has run (the least run of each size, summed; where no size is common, the one
        predicted fastest at `size`).

        Why the sizes: calibration cycles through its sizes, and taken in turn, two
        implementations each got every other one of four (Haswell's p23 lowering ran at
        1 and 389 vectors, its `popcnt` code at 20 and 7,682), so neither's line said
        anything of the other's sizes, and Haswell and rv64 ran their lowering for 15 of
        22, 23 of 27 and 4 of 9 of the p23 tasks they took (bench C, 2026-12-06).  Why
        the guest's count: it is taken around each batch probe's run, so it holds what
        implementations differ in and not the vectors' way to the guest and back, the
        same for all and most of a task's time here (per vector ~0.4 us of the board
        host's CPU and ~1.3 us of QEMU's, bench B of 2026-12-07), nor the share of a CPU
        a prediction of time divides by.  Why the least: the guest counts by a clock
        that runs on while its QEMU waits for a core, so the host's load only adds (the
        median probe of Haswell's 7,682-vector p23 tasks took about 200 cycles a vector
        in some, about 400 in others).  Live, 2026-12-07: Haswell's least 7,682-vector
        p23 run 2.20 M cycles with `popcnt`, 4.89 M with its lowering, and every p22 and
        p23 task it took ran its `popcnt` code."""
        impls = self.implementations(routine)
        if len(impls) == 1:
            return impls[0]
        models = {i: self.history.model(routine, i) for i in impls}
        tried = {i: models[i].count + self._pending(routine, i) for i in impls}
        untried = [i for i in impls if tried[i] < self.explore]
        if untried:
            return min(untried, key=lambda i: (models[i].sizes[size] + self._pending(
                routine, i, size), tried[i]))
        # the sizes every implementation ran, found from the one that ran the fewest (the
        # one a board bids with gathers a size for nearly every task it runs)
        fewest = min((models[i].cycles_at for i in impls), key=len)
        common = [n for n in fewest if all(n in models[i].cycles_at for i in impls)]
        if common:
            return min(impls, key=lambda i: sum(min(models[i].cycles_at[n]) for n in common))
        return min(impls, key=lambda i: models[i].predict(size))

    def _pending(self, routine: str, implementation: str, size: int | None = None) -> int:
        """Runs of an implementation (of `size` vectors, if given) awarded or done whose
        time is not known yet."""
        queued = sum(j.award.routine == routine and j.award.implementation == implementation
                     and size in (None, j.award.size) for j in self.queue)
        unsettled = sum(r.routine == routine and r.implementation == implementation
                        and size in (None, r.size) for r in self.unsettled.values())
        return queued + unsettled

    def predict(self, routine: str, implementation: str, size: int) -> tuple[float, bool]:
        """(seconds, calibrated) for one run."""
        model = self.history.model(routine, implementation)
        if model.count >= 2:
            return self.history.predict(routine, implementation, size), model.calibrated()
        rate = self.history.board_rate()
        per_vector = rate if rate is not None else GUESS_PER_VECTOR
        return GUESS_OVERHEAD + per_vector * size, False

    def plan(self, now: float) -> list[tuple[AwardedJob, float, float]]:
        """The queue as planned from `now`: (job, predicted start, predicted end), the
        running job first, then the others in order, each starting once the one before
        it ends and its inputs are there (or expected)."""
        out = []
        free = now
        for job in self.queue:
            if job.started is not None:
                free = max(job.started + job.predicted, now)
                out.append((job, job.started, free))
        for job in self.queue:
            if job.started is None:
                start = max(free, job.ready_by(now))
                free = start + job.predicted
                out.append((job, start, free))
        return out

    def place(self, now: float, expected: float, seconds: float) -> tuple[int, float]:
        """Where a run of `seconds` whose inputs are expected at `expected` goes in the
        queue, and when it is predicted to end: the first idle gap of the plan it fits
        into without moving a planned job, else the end (HEFT's insertion policy)."""
        plan = self.plan(now)
        free = now
        for job, start, end in plan:
            if job.started is None and max(free, expected) + seconds <= start:
                return self.queue.index(job), max(free, expected) + seconds
            free = end
        return len(self.queue), max(free, expected) + seconds

    def joules(self, routine: str, implementation: str, size: int, seconds: float,
               cycles: int = 0) -> float:
        """Energy of a run (the model: cycles x joules per cycle); the cycles are the run's
        own when counted, else its seconds at the rate this implementation's runs kept."""
        if not cycles:
            rate = self.history.model(routine, implementation).cycles_per_second.mean
            cycles = int(seconds * (rate or GUESS_CYCLES_PER_SECOND))
        return cycles * self.report.energy.joules_per_cycle
