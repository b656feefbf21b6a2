"""What the motherboard keeps of each board and each task (market.Motherboard's records).

A board's entry holds its discovery report, its calibration, its tasks in flight and
what it earned; a task's entry holds its inputs as they travel, its auction's bids and
every award of it (an Attempt each), with how it ended.  The motherboard's JSON record
(record.py) and its reports read them; only the motherboard writes them.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from enum import Enum

from motherboard.messages import Bid, DiscoveryReport, Result
from motherboard.oracle import Check


class BoardStatus(Enum):
    ACTIVE = "active"
    LEFT = "left"


@dataclass
class BoardEntry:
    report: DiscoveryReport
    joined: float
    status: BoardStatus = BoardStatus.ACTIVE
    declined: set[str] = field(default_factory=set)
    calibrated: Counter = field(default_factory=Counter)  # routine -> calibration results
    calibration: deque = field(default_factory=deque)  # calibration tasks not yet announced
    calibration_failures: Counter = field(default_factory=Counter)  # routine -> runs failed
    # samples run beyond those owed, while another board calibrated
    # (Motherboard._calibrate_under_load)
    extra_samples: int = 0
    inflight: set[str] = field(default_factory=set)  # task ids awarded and not answered
    won: int = 0  # workload tasks awarded (one moved away counts for the board it went to)
    accepted: int = 0  # workload tasks whose answers were accepted
    vectors: int = 0  # input vectors of accepted workload tasks
    busy: float = 0.0  # measured seconds of accepted workload tasks
    credits: float = 0.0
    # when its last result came: a run starts no earlier (a board runs one task at a time)
    free_at: float = 0.0
    left_at: float | None = None
    exit_reason: str = ""

    @property
    def id(self) -> str:
        return self.report.board

    def offers(self, routine: str) -> bool:
        offered = any(o.routine == routine for o in self.report.offers)
        return offered and routine not in self.declined


class TaskState(Enum):
    WAITING = "waiting"  # for its parents to be awarded
    READY = "ready"  # to be announced (a graph task's inputs may still be coming)
    BIDDING = "bidding"
    AWARDED = "awarded"
    CHECKING = "checking"  # its answer came and is being checked
    HELD = "held"  # its answer checked out; accepted once its parents' answers are
    ACCEPTED = "accepted"
    DROPPED = "dropped"  # a calibration task that is not redone (wrong, failed, board gone)


@dataclass
class Attempt:
    """One award of a task to a board, and how it ended."""

    board: str
    bid: Bid
    payment: float
    awarded: float
    sent: float | None = None  # when its inputs went out: with the award, or once composed
    started: float | None = None  # when the board said its run began (Started)
    ended: float | None = None
    measured: float | None = None  # seconds from `sent` to the result, on the motherboard's clock
    # of those, the run: from `sent` or the board's previous result, whichever came later
    # (the rest it waited behind the board's other tasks, which its bid counts in its queue)
    run: float | None = None
    # accepted | wrong | failed | rerouted | stuck | void (its inputs came from a parent's
    # answer that was then found wrong: redone once the parent is) | moved (to a board with
    # nothing to run, before this one began it: Motherboard._move)
    outcome: str = "running"
    check: Check | None = None
    late: bool = False  # a result came after the task went elsewhere (ignored)
    # the energy of the run as the board gave it with its result: its power meter's
    # reading (RAPL) where the host has one, else its energy model's figure
    joules: float | None = None


@dataclass
class TaskEntry:
    id: str
    routine: str  # ID
    size: int
    seed: int
    index: int  # position in the workload (-1 for calibration tasks)
    after: tuple[str, ...] = ()
    calibrating: str | None = None  # the board a calibration task is for
    arrived: float = 0.0
    state: TaskState = TaskState.WAITING
    own: bytes = b""  # its own inputs (from its seed), packed; generated when submitted
    packed: bytes = b""  # the inputs as they travel (batch.py): own, composed with the parents'
    composed: bool = False  # `packed` holds them (every parent has an answer)
    outputs: bytes | None = None  # packed, as accepted
    draft: bytes | None = None  # the current answer's outputs while it is checked
    # parent -> the index of the parent's attempt whose outputs `packed` was composed from
    basis: dict[str, int] = field(default_factory=dict)
    held: tuple[Result, Check] | None = None  # a checked answer waiting for the parents
    excluded: set[str] = field(default_factory=set)  # boards that answered it wrongly or failed
    asked: set[str] = field(default_factory=set)
    bids: dict[str, Bid] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)
    announced: float = 0.0
    inputs_at: float = 0.0  # when its last announcement said its inputs were expected
    bid_deadline: float = 0.0
    retry_at: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)
    unanswered: int = 0  # its auctions that closed without a word from a board asked
    accepted_at: float | None = None
    rank: float = 0.0  # priority (upward rank for graphs)
    # (when the board holding it was lost, when it was awarded again)
    reroutes: list[tuple[float, float | None]] = field(default_factory=list)

    @property
    def current(self) -> Attempt | None:
        last = self.attempts[-1] if self.attempts else None
        return last if last is not None and last.outcome == "running" else None


@dataclass(frozen=True)
class Payment:
    board: str
    fingerprint: str  # the account the credits go to (stores/credits.py keys by it)
    task: str
    credits: float
    at: float
