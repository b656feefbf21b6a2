"""The performance oracle: real-world measurement of every task, and its answers checked.

Time: the motherboard's own clock from the award to the result (what the board
promised is judged against it, trust.TrustView.timeliness), kept per board as the
oracle's record of its runs (BoardRecords), against which a promise is also judged.

Answers: checked against the interpreter (sem.interp, the semantic core's reference
semantics), never against another board; an input outside the routine's domain (its
precondition, sem/ir.py: a graph child's inputs are its parents' outputs) has no
wrong answer, like C's undefined behaviour, and is accepted whatever the board
returned.  Every answer of a board with little
evidence is checked in full; a trusted board's task is checked in full with
probability `sample_rate` and otherwise spot-checked on `spot_checks` vectors drawn
at random, so a board that skips work (returns junk) is caught on its first such
task and one that cheats on a fraction f of a task's vectors with probability about
sample_rate + (1 - sample_rate) * (1 - (1 - f)^spot_checks).  A wrong answer is never
accepted: the task is redone elsewhere and the board's trust falls.  An input the
check has met before in the same task is not interpreted again (a large calibration
task repeats a few hundred vectors, market.CALIBRATION_DISTINCT), every output is
still compared.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from motherboard import batch
from motherboard.history import History, Smoothed
from motherboard.routines import RoutineBook
from motherboard.trust import BoardTrust, record_shortfall
from probes.routine import layout_of
from sem.ir import Routine

FULL, SPOT = "full", "spot"


@dataclass(frozen=True)
class OraclePolicy:
    evidence_for_sampling: float = 30.0  # verified answers before a board may be sampled
    trusted_lower: float = 0.9  # ... and the 5% quantile of its correctness at least this
    sample_rate: float = 0.1  # chance a trusted board's task is checked in full
    spot_checks: int = 4  # vectors checked on every other task of a trusted board
    tolerance: float = 1.5  # a result within tolerance x the promised time is on time
    # A promise under the observer's record of the board's runs by more than this is
    # late.  Looser than `tolerance`: the record was taken under other loads (on four TCG
    # boards sharing two cores a routine's calibration runs took 0.3-3.7x its runs in a
    # graph, bench B 2026-12-06), and an honest board that predicts from its share of a
    # CPU now promises what the host gives it now; a tenfold overstater stays caught.
    record_tolerance: float = 3.0


@dataclass(frozen=True)
class Check:
    kind: str  # FULL or SPOT
    checked: int  # vectors compared with the interpreter
    wrong: int  # of those, how many disagreed
    first_wrong: int | None  # index of the first that disagreed

    @property
    def ok(self) -> bool:
        return self.wrong == 0


@dataclass(frozen=True)
class CheckRequest:
    """An answer to check, carrying only the vectors it checks (a check can run anywhere:
    it needs the routine and those vectors' packed inputs and outputs).  Why only those:
    a request travels pickled through a pipe to a checker process, from the motherboard's
    own process, which shares the host's cores with the boards; a spot check of 4
    vectors of a 50,000-vector task carried every input and output, about 1.5 MB, to
    look at 4 records (`of`)."""

    task: str
    board: str
    routine: str
    kind: str
    positions: tuple[int, ...] | None  # the checked vectors' places in the task (None: all)
    inputs: bytes  # their packed inputs, in that order
    outputs: bytes  # their packed outputs, in that order

    @classmethod
    def of(cls, task: str, board: str, r: Routine, routine: str, kind: str,
           positions: tuple[int, ...] | None, inputs: bytes, outputs: bytes) -> CheckRequest:
        """The check of `positions` (None: every vector) of a task's packed inputs and
        outputs (of routine `r`, whose ID is `routine`), with only those vectors' records."""
        if positions is not None:
            inputs, outputs = batch.pick(r, inputs, outputs, positions)
        return cls(task, board, routine, kind, positions, inputs, outputs)


def run_check(book: RoutineBook, request: CheckRequest) -> Check:
    """Compare the checked outputs with the interpreter's answers (pure: any process)."""
    r = book.routine(request.routine)
    checked = len(request.inputs) // batch.in_stride(layout_of(r))
    wrong = book.disagreements(request.routine, request.inputs, request.outputs,
                               range(checked))
    first = None if not wrong else (
        wrong[0] if request.positions is None else request.positions[wrong[0]])
    return Check(request.kind, checked, len(wrong), first)


class Oracle:
    """Which answers are checked, and on which vectors (the check itself: run_check)."""

    def __init__(self, policy: OraclePolicy, rng: random.Random) -> None:
        self.policy, self.rng = policy, rng

    def positions(self, kind: str, n: int) -> tuple[int, ...] | None:
        """The vectors a check of `kind` looks at, of `n` (None: every one)."""
        if kind == FULL:
            return None
        return tuple(sorted(self.rng.sample(range(n), min(self.policy.spot_checks, n))))

    def how(self, trust: BoardTrust) -> str:
        """FULL while the board has little evidence or a doubtful record, else a sample."""
        p = self.policy
        known = trust.correct.evidence >= p.evidence_for_sampling
        if not known or trust.correct.lower() < p.trusted_lower:
            return FULL
        return FULL if self.rng.random() < p.sample_rate else SPOT


class BoardRecords:
    """The oracle's record of each board's runs: this motherboard's own measure of them,
    its evidence beside the boards' word.  Per board: a History of its runs (each
    routine and implementation's line over batch sizes), the pace of its latest runs
    against that line, and the shortest round trip of its bids (the messages' share of a
    result's time, which no board can promise away)."""

    def __init__(self, calibration_samples: int) -> None:
        self.calibration_samples = calibration_samples
        self.measured: dict[str, History] = {}  # board -> what the oracle measured
        # board -> the shortest time from announcing a task to its bid: the round trip a
        # result's time includes beyond the run the board promised (the shortest, as
        # whatever else delayed a bid -- a busy host -- may delay a result as well)
        self.round_trip: dict[str, float] = {}
        # board -> the log of its latest runs over what the record said of them before
        # each was added (smoothed): the record's lines hold every run since the board
        # joined, and its calibration ran under another load than now (recorded)
        self.paces: dict[str, Smoothed] = {}

    def join(self, board: str) -> None:
        self.measured.setdefault(board, History())  # a board back keeps its record

    def bid_came(self, board: str, trip: float) -> None:
        self.round_trip[board] = min(self.round_trip.get(board, trip), trip)

    def transit(self, board: str) -> float:
        return self.round_trip.get(board, 0.0)

    def ran(self, board: str, routine: str, implementation: str, size: int, run: float,
            cycles: int) -> None:
        """A run whose answer was found right: its pace against the line first, then
        the line."""
        said = self.line(board, routine, implementation, size)
        if said is not None and said > 0 and run > 0:
            self.paces.setdefault(board, Smoothed()).add(math.log(run / said))
        self.measured[board].record(routine, implementation, size, run, cycles)

    def recorded(self, board: str, routine: str, implementation: str,
                 size: int) -> float | None:
        """What the record says a run of `size` takes now (transit included): the
        board's line for the routine and implementation (`line`) at the pace of its
        latest runs against the record.  Why the pace: the lines hold every run since
        the board joined, ten calibration runs a routine against a few since, and
        calibration ran with every board calibrating and every answer checked: `./run
        motherboard`'s stream on four TCG boards, 2026-12-06, had lines of 10-16 ms for
        tasks of a few vectors that then ran in 2-3 ms, so half of every honest board's
        promises were refuted (100 of 200 each) and a tenfold overstater, refuted no
        more than they, won up to 9 of the last 100 tasks.  The pace is this observer's
        own measure of the board's runs, so a board cannot talk it down."""
        said = self.line(board, routine, implementation, size)
        return None if said is None else said * math.exp(self.pace(board))

    def pace(self, board: str) -> float:
        """The log of the board's latest runs over its record (0: as recorded)."""
        pace = self.paces.get(board)
        return pace.value if pace is not None else 0.0

    def line(self, board: str, routine: str, implementation: str, size: int) -> float | None:
        """The line of the board's runs of the routine with that implementation at
        `size`, once those runs are as many as a calibration (fewer draw too loose a line:
        a board's own history, a Settle behind, may then disagree with it in good
        faith)."""
        model = self.measured[board].model(routine, implementation)
        if model.count < max(2, self.calibration_samples):
            return None
        return model.predict(size)

    def shortfall(self, board: str, routine: str, implementation: str, size: int,
                  promise: float, record_tolerance: float) -> float:
        """How far a promise falls short of the record (`recorded`), in units of
        `record_tolerance` (trust.record_shortfall): above 1 the record shows the
        promise cannot be kept; 0 without a record."""
        recorded = self.recorded(board, routine, implementation, size)
        if recorded is None:
            return 0.0
        return record_shortfall(recorded, self.transit(board), promise, record_tolerance)

    def mean_prediction(self, routine: str, size: int) -> float:
        """The mean over every board's line for the routine at `size` (the size itself,
        as a stand-in, before any board ran it)."""
        guesses = [model.predict(size) for history in self.measured.values()
                   for (rid, _), model in history.models.items()
                   if rid == routine and model.count]
        return sum(guesses) / len(guesses) if guesses else float(size)
