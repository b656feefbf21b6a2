"""A motherboard of two boards, a and b, whose bids come from a table: every message it
sends is kept, so a test can say what each board was told (tests of moves and of the
oracle's rating)."""

from __future__ import annotations

from motherboard.market import MarketConfig, Motherboard
from motherboard.messages import Award, Bid, BidRequest, Onboard, Result, Started
from motherboard.routines import RoutineBook
from motherboard.sim import RunTimeLine, SimBoard, SimProfile
from motherboard.workload import TaskSpec

BOOK = RoutineBook.library()
PROFILE = SimProfile("p", default=RunTimeLine(0.002, 1e-6))
# (task, board) -> (promised seconds, the run alone): b is busy with t0 when t1 and t2 are
# auctioned, so a wins both, t2 to run after t1; b's run of t2 is as quick as a's
BIDS = {("t0", "a"): (5.0, 5.0), ("t0", "b"): (1.0, 1.0),
        ("t1", "a"): (1.0, 1.0), ("t1", "b"): (2.0, 1.0),
        ("t2", "a"): (2.0, 1.0), ("t2", "b"): (3.0, 1.0)}


class TwoBoardMarket:
    """A motherboard of boards a and b, every message it sends kept, bids from BIDS."""

    def __init__(self, **config) -> None:
        self.bids = dict(BIDS)
        self.mb = Motherboard(BOOK, ("hd:p01",), MarketConfig(calibration_samples=0, **config))
        for name in ("a", "b"):
            self.mb.handle(Onboard(SimBoard(name, PROFILE, BOOK, 0).agent.report), 0.0)
        for name in ("a", "b"):  # a record of right, timely answers: weighed about 0.9
            for _ in range(40):
                self.mb.trust.of(name).correct.rate(1.0)
                self.mb.trust.of(name).timely.rate(1.0)
        self.sent: list = []

    def step(self, envelopes, now: float) -> None:
        self.sent.extend(envelopes)
        for env in envelopes:
            if isinstance(env.message, BidRequest):
                seconds, run = self.bids[(env.message.task, env.to)]
                self.step(self.mb.handle(Bid(env.message.task, env.to, "lowered", seconds, 0.0,
                                             seconds, True, run), now), now)

    def tell(self, message, now: float) -> None:
        self.step(self.mb.handle(message, now), now)

    def award(self, task: str) -> Award:
        return [e.message for e in self.sent
                if isinstance(e.message, Award) and e.message.task == task][-1]

    def answer(self, task: str, board: str, now: float, joules: float = 0.0) -> None:
        award = [e.message for e in self.sent if isinstance(e.message, Award)
                 and e.message.task == task and e.message.board == board][-1]
        self.tell(Result(task, board, "lowered", BOOK.answers(award.routine, award.inputs),
                         joules=joules), now)

    def start(self) -> None:
        """t0 to b, t1 and t2 to a (t1 begun), all submitted and awarded at 0."""
        for k in range(3):
            self.step(self.mb.submit(TaskSpec(f"t{k}", "hd:p01", 8, k), 0.0), 0.0)
        assert [self.award(f"t{k}").board for k in range(3)] == ["b", "a", "a"]
        self.tell(Started("t0", "b"), 0.01)
        self.tell(Started("t1", "a"), 0.01)
