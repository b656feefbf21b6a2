"""The performance oracle: real-world measurement of every task, and its answers checked.

Time: the motherboard's own clock from the award to the result (what the board
promised is judged against it, trust.TrustView.timeliness).

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

import random
from collections.abc import Sequence
from dataclasses import dataclass

from motherboard import batch
from motherboard.routines import RoutineBook
from motherboard.trust import BoardTrust
from probes.routine import layout_of
from sem.interp import Evaluation
from sem.vectors import Vector

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
    """An answer to check: which vectors of which task (a check can run anywhere: it
    needs the routine, the packed inputs and outputs, and the indices)."""

    task: str
    board: str
    routine: str
    kind: str
    indices: tuple[int, ...]
    inputs: bytes
    outputs: bytes


def run_check(book: RoutineBook, request: CheckRequest) -> Check:
    """Compare the checked outputs with the interpreter's answers (pure: any process)."""
    r = book.routine(request.routine)
    stride = batch.in_stride(layout_of(r))
    truth: dict[bytes, Evaluation] = {}  # a record seen before is not interpreted again

    def expected(i: int) -> Evaluation | None:
        """The interpreter's answer, None outside the domain (any answer is right)."""
        record = request.inputs[i * stride:(i + 1) * stride]
        if record not in truth:
            vector = batch.input_at(r, request.inputs, i)
            truth[record] = (book.evaluate(request.routine, vector)
                             if book.admits(request.routine, vector) else None)
        return truth[record]

    wrong = [i for i in request.indices
             if (want := expected(i)) is not None and want != batch.output(r, request.outputs, i)]
    return Check(request.kind, len(request.indices), len(wrong), wrong[0] if wrong else None)


class Oracle:
    def __init__(self, book: RoutineBook, policy: OraclePolicy, rng: random.Random) -> None:
        self.book, self.policy, self.rng = book, policy, rng

    def indices(self, kind: str, n: int) -> tuple[int, ...]:
        """The vectors a check of `kind` looks at, of `n`."""
        if kind == FULL:
            return tuple(range(n))
        return tuple(sorted(self.rng.sample(range(n), min(self.policy.spot_checks, n))))

    def how(self, trust: BoardTrust) -> str:
        """FULL while the board has little evidence or a doubtful record, else a sample."""
        p = self.policy
        known = trust.correct.evidence >= p.evidence_for_sampling
        if not known or trust.correct.lower() < p.trusted_lower:
            return FULL
        return FULL if self.rng.random() < p.sample_rate else SPOT

    def check(self, routine: str, inputs: Sequence[Vector], outputs: bytes | None,
              kind: str, indices: Sequence[int] | None = None) -> Check:
        """Compare `outputs` (packed, batch.py) with the interpreter's answers, at
        `indices` (default: as `kind` asks, drawn now)."""
        r = self.book.routine(routine)
        if outputs is None or batch.count(r, outputs) != len(inputs):
            return Check(kind, 0, len(inputs), 0)
        if indices is None:
            indices = self.indices(kind, len(inputs))
        # a vector seen before is not interpreted again; None: outside the domain
        truth: dict[Vector, Evaluation | None] = {}
        for i in indices:
            if inputs[i] not in truth:
                truth[inputs[i]] = (self.book.evaluate(routine, inputs[i])
                                    if self.book.admits(routine, inputs[i]) else None)
        wrong = [i for i in indices if truth[inputs[i]] is not None
                 and truth[inputs[i]] != batch.output(r, outputs, i)]
        return Check(kind, len(indices), len(wrong), wrong[0] if wrong else None)
