"""The motherboard: boards onboard, bid, earn trust, and leave, as a sans-IO state machine.

`Motherboard` is fed what boards say (`handle(message, now)`), the workload's tasks as
they arrive (`submit(spec, now)`) and the time (`tick(now)`); every call returns the
messages to send (Envelopes) and the time by which to call `tick` again is
`deadline()`.  It never touches a socket, a thread or a clock, so the same code
serves simulated boards on a virtual clock (motherboard/sim.py) and live QEMU boards
(motherboard/live.py), and boards may live anywhere a message can reach.

A board joins with its discovery report (Onboard): registered with neutral trust and
no evidence, it first runs calibration tasks -- generated inputs, every answer checked
-- for each routine of the workload it offers, CALIBRATION_SAMPLES each (StarPU's
history models calibrate about as long); they are awarded to it alone, without
payment, and look to it like any other task.  Once a routine is calibrated the board
bids for that routine's tasks.

One auction runs at a time, so each bid knows the bidder's queue (as dmda predicts
finish times from each worker's queue): the ready task of highest priority (graphs:
upward rank from the measured history, as HEFT ranks; streams: arrival order) is
announced to every eligible board -- or, when it and others have their inputs there and
boards are idle, a batch of them, one for each idle board, closed together in order, a
board that won an earlier one passed over for a later one while a trusted board that
won none bids (a graph's roots: awarded at once, where one at a time they had begun
over ~25 ms); the bids are weighed by trust (trust.py) and the
trust-weighted Vickrey auction (auction.py) picks the winner and its payment, paid in
credits once the answer is accepted.  The oracle (oracle.py) measures the time and
checks the answer; a wrong one is never accepted: the task is announced again
without that board.  A promise is held to the run and to the oracle's record of the
board's runs (`measured`); a bid the record shows cannot be kept is refuted as the
auction closes (_shortfall).  A board that leaves (Exit, graceful or killed), or holds a task
far past its promise, has its tasks in flight announced again at once; a result that
comes after its task went elsewhere is ignored, so no task is lost and none is
accepted twice, and the board's history and trust stay in this motherboard's view.

A graph task is announced once its parents are awarded, told when its inputs are
expected, and awarded without them; they go out (Inputs) the moment its parents'
answers arrive, composed from those answers while they are still being checked.  It
is accepted only once its parents are (HELD until then); if a parent's answer is
found wrong, what was composed from it is voided and redone (_void_children).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from motherboard import batch
from motherboard.agent import holds_up
from motherboard.auction import Sealed, vickrey
from motherboard.entries import Attempt, BoardEntry, BoardStatus, Payment, TaskEntry, TaskState
from motherboard.history import CALIBRATION_SAMPLES
from motherboard.messages import (
    Award,
    Bid,
    BidRequest,
    BoardMessage,
    Cancel,
    Decline,
    DiscoveryReport,
    Envelope,
    Exit,
    Inputs,
    Onboard,
    Result,
    Settle,
    Started,
)
from motherboard.oracle import (
    FULL,
    BoardRecords,
    Check,
    CheckRequest,
    Oracle,
    OraclePolicy,
    run_check,
)
from motherboard.routines import RoutineBook
from motherboard.trust import TrustView
from motherboard.workload import TaskSpec

# Vectors a calibration task is made of at most, repeated to its size (see _calibration_inputs)
CALIBRATION_DISTINCT = 256
# Auctions of a calibration task its board lets close without a word before it is dropped
# (and the board never bids for that routine): a board whose bid comes late -- the host's
# one loop vetting another board's code at load -- is asked again
CALIBRATION_ASKS = 3
# Calibration runs of a routine a board may fail (answer with an error: a probe's watchdog
# firing while the loaded host had its QEMU descheduled, say) before it is taken to
# decline the routine; each failed one is replaced by a new one.  Before, one failure left
# the board owing a sample it was never asked for again, so it never bid for that routine
# (bench B of 2026-12-06 15:40: rv64 without Zb* and sort5, after one probe's TIMEOUT)
CALIBRATION_FAILURES = 3
# A task moves to an idle board (Motherboard._move) only if that ends it sooner by this
# share of its run on its own board: a gain within the bids' own error is no gain
MOVE_GAIN = 0.1
# A run past its predicted end is taken to go on for this share of what it has taken so
# far (runs here are log-normal about their prediction, and a late one is a long one)
OVERDUE_SHARE = 0.25


class MarketError(ValueError):
    """A message or task the motherboard cannot take as given."""


@dataclass(frozen=True)
class MarketConfig:
    calibration_samples: int = CALIBRATION_SAMPLES
    # cycled over a routine's samples; workload.calibration_sizes gives a workload's own
    calibration_sizes: tuple[int, ...] = (1, 16, 128, 512)
    bid_timeout: float = 0.5  # seconds an auction waits for bids it asked for
    retry_after: float = 0.05  # seconds before a task nobody bid for is announced again
    # A board still holding a task this many times past its promise (and at least
    # min_patience seconds after the award) is presumed stuck: the task goes elsewhere.
    patience: float = 20.0
    min_patience: float = 10.0
    # A bidder weighed below this is distrusted: it wins only when no trusted board bids
    # and none is still calibrating for the routine (so no task waits forever).  Honest
    # boards are weighed 0.8-0.95 once calibrated; a board caught cheating on 10% of its
    # answers about 0.45, one late on most promises below 0.3.
    min_weight: float = 0.5
    # A task whose inputs are there while its board is busy with another goes to a board
    # with nothing to run, when that one's own bid says it ends the task sooner (_move)
    move_to_idle: bool = True
    # Before the workload, a board done calibrating runs more samples while another still
    # owes some (_calibrate_under_load): for boards that share a host's cores (live.py)
    calibrate_under_load: bool = False
    oracle: OraclePolicy = field(default_factory=OraclePolicy)
    seed: int = 0


class Motherboard:
    def __init__(self, book: RoutineBook, mix: Iterable[str], config: MarketConfig | None = None,
                 observer: str = "motherboard", check_inline: bool = True) -> None:
        """`check_inline`: check answers inside `handle` (simulations, tests); else the
        checks wait in `take_checks()` for the driver to run (oracle.run_check, anywhere)
        and hand back through `checked`, so the loop is not held up meanwhile."""
        self.check_inline = check_inline
        self._checks: list[CheckRequest] = []
        self._results: dict[str, Result] = {}  # task -> the result being checked
        self.book = book
        self.config = config or MarketConfig()
        self.mix = [book.resolve(r) for r in mix]  # routines boards calibrate for
        self.rng = random.Random(self.config.seed)
        self.oracle = Oracle(self.config.oracle, random.Random(self.config.seed + 1))
        self.trust = TrustView(observer)
        self.records = BoardRecords(self.config.calibration_samples)
        self.boards: dict[str, BoardEntry] = {}
        self.tasks: dict[str, TaskEntry] = {}
        # the tasks not yet accepted or dropped (both final), pruned as they are looked at
        # (_open): the loop asks for deadlines on every turn, and scanning every task of
        # a run -- a thousand calibration tasks and every earlier graph run -- took two
        # thirds of the motherboard's CPU in bench B's rounds (0.22 of 0.44 s over four)
        self._unfinished: dict[str, TaskEntry] = {}
        # (routine, size) -> mean predicted seconds over the boards (_mean_cost), until the
        # oracle's record changes
        self._mean_costs: dict[tuple[str, int], float] = {}
        self.order: list[str] = []  # workload task ids in submission order
        self.payments: list[Payment] = []
        self.events: list[tuple[float, str, str, str]] = []  # (time, kind, board, task/detail)
        # the workload tasks being auctioned: one, or a batch of ready ones announced
        # together while boards are idle (_pump), closed together in rank order
        self._auctions: list[str] = []
        self._batch_won: set[str] = set()  # boards that won a task of the latest batch
        self._calibration_serial = 0
        self._successors: dict[str, list[str]] = {}  # workload task -> tasks after it
        # own inputs packed ahead (prepare), by what they are made from: (routine ID, size,
        # seed), so a task re-timed after it was prepared (a graph run again) still finds
        # them; kept, as the same inputs may be submitted again (another run of the graph)
        self._prepared: dict[tuple[str, int, int], bytes] = {}

    # -- the board side ---------------------------------------------------------------------------

    def handle(self, message: BoardMessage, now: float) -> list[Envelope]:
        out: list[Envelope] = []
        match message:
            case Onboard(report):
                self._onboard(report, now)
            case Bid():
                self._bid(message, now, out)
            case Decline():
                self._decline(message, now, out)
            case Started():
                self._started(message, now)
            case Result():
                self._result(message, now, out)
            case Exit():
                self._exit(message, now, out)
            case _:
                raise MarketError(f"a board sent {type(message).__name__}, which is no board"
                                  " message")
        self._pump(now, out)
        return out

    def _onboard(self, report: DiscoveryReport, now: float) -> None:
        known = self.boards.get(report.board)
        if known is not None and known.status == BoardStatus.ACTIVE:
            raise MarketError(f"board {report.board!r} is already on board; a board joins once"
                              " (leave first, or join under another identity)")
        entry = BoardEntry(report, now)
        if known is not None:  # the same identity back: its history and trust are kept
            entry.calibrated = known.calibrated
            entry.won, entry.accepted, entry.credits = known.won, known.accepted, known.credits
            entry.vectors, entry.busy = known.vectors, known.busy
        self.boards[report.board] = entry
        self.trust.joined(report.board, now)
        self.records.join(report.board)
        sizes = self.config.calibration_sizes
        for rid in self.mix:
            if not entry.offers(rid):
                continue
            for k in range(entry.calibrated[rid], self._samples(entry, rid)):
                entry.calibration.append(self._calibration_task(entry, rid, sizes[k % len(sizes)],
                                                                now).id)
        self.events.append((now, "join", report.board, report.spec))

    def _calibration_task(self, entry: BoardEntry, rid: str, size: int,
                          now: float) -> TaskEntry:
        self._calibration_serial += 1
        task = TaskEntry(f"c{self._calibration_serial}", rid, size, self.rng.randrange(2**31),
                         -1, calibrating=entry.id, arrived=now, state=TaskState.READY)
        task.own = task.packed = self._calibration_inputs(task)
        task.composed = True
        self.tasks[task.id] = self._unfinished[task.id] = task
        return task

    def _calibrate_again(self, task: TaskEntry, now: float, out: list[Envelope]) -> None:
        """A calibration run failed or got stuck: the board is asked for another of its
        size, first of its calibration, or, after CALIBRATION_FAILURES, taken to decline
        the routine (it cannot run it here), so that it neither owes samples nor bids for
        it."""
        entry = self.boards[task.calibrating]
        entry.calibration_failures[task.routine] += 1
        if entry.calibration_failures[task.routine] >= CALIBRATION_FAILURES:
            self._decline(Decline(entry.id, (task.routine,)), now, out)
            return
        entry.calibration.appendleft(self._calibration_task(entry, task.routine, task.size,
                                                            now).id)

    def _bid(self, bid: Bid, now: float, out: list[Envelope]) -> None:
        task = self.tasks.get(bid.task)
        if task is None or task.state != TaskState.BIDDING or bid.board not in task.asked:
            return  # an answer to an auction already closed
        task.bids[bid.board] = bid
        task.answered.add(bid.board)
        trip = now - task.announced
        self.records.bid_came(bid.board, trip)
        self._answered(task, now, out)

    def _started(self, started: Started, now: float) -> None:
        task = self.tasks.get(started.task)
        attempt = task.current if task is not None else None
        if attempt is not None and attempt.board == started.board and attempt.started is None:
            attempt.started = now

    def _decline(self, decline: Decline, now: float, out: list[Envelope]) -> None:
        entry = self._entry(decline.board)
        if decline.routines:
            entry.declined.update(decline.routines)
            for tid in list(entry.calibration):
                if self.tasks[tid].routine in decline.routines:
                    entry.calibration.remove(tid)
                    self.tasks[tid].state = TaskState.DROPPED
            self.events.append((now, "decline", decline.board, ",".join(
                self.book.short(r) for r in decline.routines)))
        for task in self._bidding():
            if task.id == decline.task or (task.routine in decline.routines
                                           and decline.board in task.asked):
                task.answered.add(decline.board)
                self._answered(task, now, out)

    def _result(self, result: Result, now: float, out: list[Envelope]) -> None:
        known = self.boards.get(result.board)
        free_at = known.free_at if known is not None else 0.0
        if known is not None:
            known.free_at = now  # whatever the result is for, the board was busy until now
        task = self.tasks.get(result.task)
        if task is None:
            return
        attempt = task.current
        if attempt is None or attempt.board != result.board or task.state != TaskState.AWARDED:
            # the task went elsewhere (or was accepted) meanwhile: ignored, never accepted twice
            for a in task.attempts:
                if a.board == result.board:
                    a.late = True
            self.events.append((now, "late", result.board, task.id))
            return
        entry = self.boards[result.board]
        entry.inflight.discard(task.id)
        attempt.ended = now
        sent = attempt.sent if attempt.sent is not None else attempt.awarded
        attempt.measured, attempt.run = now - sent, now - max(sent, free_at)
        attempt.joules = result.joules
        self._rate_time(result.board, task, attempt, attempt.measured, now)
        kind = FULL if task.calibrating else self.oracle.how(self.trust.of(result.board))
        r = self.book.routine(task.routine)
        if result.outputs is None or batch.count(r, result.outputs) != task.size:
            self._judge(task, result, Check(kind, 0, task.size, 0), now, out)
            return
        request = CheckRequest.of(task.id, result.board, r, task.routine, kind,
                                  self.oracle.positions(kind, task.size), task.packed,
                                  result.outputs)
        if not task.calibrating:
            # Its children need not wait for the check: their inputs are composed from these
            # outputs now, and they may run meanwhile; none is accepted before this answer
            # is, and they are redone should it be found wrong (_void_children).
            task.draft = result.outputs
            self._release_children(task, now, out)
        if self.check_inline:
            self._judge(task, result, run_check(self.book, request), now, out)
            return
        task.state = TaskState.CHECKING
        self._results[task.id] = result
        self._checks.append(request)

    def take_checks(self) -> list[CheckRequest]:
        """The checks waiting to be run (with `check_inline` off)."""
        out, self._checks = self._checks, []
        return out

    def checked(self, task_id: str, check: Check, now: float) -> list[Envelope]:
        """A check's verdict, back from wherever it ran."""
        out: list[Envelope] = []
        task = self.tasks[task_id]
        result = self._results.pop(task_id, None)
        if result is not None:  # else the answer was voided meanwhile (_void_children)
            self._judge(task, result, check, now, out)
        self._pump(now, out)
        return out

    def _judge(self, task: TaskEntry, result: Result, check: Check, now: float,
               out: list[Envelope]) -> None:
        """Accept the answer (once the parents' answers are), or announce the task again
        without its board."""
        attempt = task.current
        attempt.check = check
        if result.outputs is None or not check.ok:
            out.append(Envelope(result.board, Settle(task.id, result.board, attempt.measured,
                                                     False, 0.0)))
            self._void_children(task, now, out)
            task.draft = None
        if result.outputs is None:
            attempt.outcome = "failed"
            self.trust.of(result.board).correct.rate(0.0)
            self.events.append((now, "failed", result.board, f"{task.id}: {result.error}"))
            self._again(task, now, exclude=result.board)
            if task.calibrating:
                self._calibrate_again(task, now, out)
            return
        if not check.ok:
            attempt.outcome = "wrong"
            self.trust.verified(result.board, False, now)
            self.events.append((now, "wrong", result.board, task.id))
            self._again(task, now, exclude=result.board)
            return
        if check.kind == FULL:
            self.trust.verified(result.board, True, now)
        self.records.ran(result.board, task.routine, result.implementation, task.size,
                         attempt.run, result.cycles)
        self._mean_costs.clear()
        if any(self.tasks[p].state != TaskState.ACCEPTED for p in task.after):
            task.state, task.held = TaskState.HELD, (result, check)
            return
        self._accept(task, result, now, out)

    def _accept(self, task: TaskEntry, result: Result, now: float, out: list[Envelope]) -> None:
        attempt = task.current
        entry = self.boards[result.board]
        out.append(Envelope(result.board, Settle(task.id, result.board, attempt.measured,
                                                 True, attempt.payment)))
        attempt.outcome = "accepted"
        task.state, task.outputs, task.accepted_at = TaskState.ACCEPTED, result.outputs, now
        task.draft, task.held = None, None
        if task.calibrating:
            entry.calibrated[task.routine] += 1
            return
        entry.accepted += 1
        entry.vectors += task.size
        entry.busy += attempt.measured
        entry.credits += attempt.payment
        self.payments.append(Payment(result.board, entry.report.fingerprint, task.id,
                                     attempt.payment, now))
        self._release_children(task, now, out)
        for child in self._children(task):
            if child.state == TaskState.HELD and all(
                    self.tasks[p].state == TaskState.ACCEPTED for p in child.after):
                assert child.held is not None
                self._accept(child, child.held[0], now, out)

    def _void_children(self, task: TaskEntry, now: float, out: list[Envelope]) -> None:
        """The current answer of `task` is found wrong: every task whose inputs were composed
        from it (and, in turn, theirs) goes back to wait for its parents, whatever it was
        doing -- announced, running (cancelled), checked and held.  Not its board's fault:
        its trust is untouched."""
        serial = len(task.attempts) - 1
        for child in self._children(task):
            if child.basis.get(task.id) != serial or child.state == TaskState.WAITING:
                continue
            self._void_children(child, now, out)
            attempt = child.current
            if child.id in self._auctions:
                self._auctions.remove(child.id)
            if attempt is not None:
                attempt.outcome, attempt.ended = "void", attempt.ended or now
                self.boards[attempt.board].inflight.discard(child.id)
                if child.state == TaskState.AWARDED:
                    out.append(Envelope(attempt.board, Cancel(child.id, attempt.board)))
                else:
                    out.append(Envelope(attempt.board, Settle(child.id, attempt.board,
                                                              attempt.measured or 0.0, False,
                                                              0.0)))
            self._results.pop(child.id, None)
            child.state, child.packed, child.basis = TaskState.WAITING, b"", {}
            child.composed = False
            child.draft, child.held, child.retry_at = None, None, 0.0
            self.events.append((now, "void", attempt.board if attempt else "", child.id))

    def _exit(self, exit_: Exit, now: float, out: list[Envelope]) -> None:
        entry = self.boards.get(exit_.board)
        if entry is None or entry.status == BoardStatus.LEFT:
            return
        entry.status, entry.left_at = BoardStatus.LEFT, now
        entry.exit_reason = ("left: " if exit_.graceful else "killed: ") + exit_.reason
        self.events.append((now, "exit" if exit_.graceful else "killed", exit_.board, exit_.reason))
        for tid in list(entry.inflight):
            task = self.tasks[tid]
            attempt = task.current
            if attempt is not None and attempt.board == exit_.board:
                attempt.outcome, attempt.ended = "rerouted", now
                if task.calibrating:
                    task.state = TaskState.DROPPED
                    continue
                task.reroutes.append((now, None))
                self._again(task, now)
        entry.inflight.clear()
        for tid in entry.calibration:
            self.tasks[tid].state = TaskState.DROPPED
        entry.calibration.clear()
        for task in self._bidding():
            if exit_.board in task.asked:
                task.asked.discard(exit_.board)
                task.bids.pop(exit_.board, None)
                self._answered(task, now, out)

    # -- the workload side ----------------------------------------------------------------------

    def submit(self, spec: TaskSpec, now: float) -> list[Envelope]:
        return self.submit_many([spec], now)

    def submit_many(self, specs: Iterable[TaskSpec], now: float) -> list[Envelope]:
        """Tasks that arrive together (a graph's roots), each registered before any is
        announced, so that the ready ones are announced together to idle boards (_pump)."""
        out: list[Envelope] = []
        for spec in specs:
            if spec.id in self.tasks:
                raise MarketError(f"task {spec.id!r} was submitted before; task ids are unique")
            rid = self.book.resolve(spec.routine)
            task = TaskEntry(spec.id, rid, spec.size, spec.seed, len(self.order), spec.after,
                             arrived=now)
            missing = [p for p in spec.after if p not in self.tasks]
            if missing:
                raise MarketError(f"task {spec.id!r} comes after {missing}, never submitted")
            # now (or earlier: prepare), so that composing it later is all it takes
            task.own = self._prepared.get((rid, spec.size, spec.seed)) or self._own_inputs(task)
            self.tasks[spec.id] = self._unfinished[spec.id] = task
            self.order.append(spec.id)
            for parent in spec.after:
                self._successors.setdefault(parent, []).append(spec.id)
            task.rank = self._rank(task)
            self._release(task, now, out)
        self._pump(now, out)
        return out

    def prepare(self, specs: Iterable[TaskSpec]) -> None:
        """Generate the own inputs of tasks still to be submitted (a driver calls this while
        its boards boot), so that submitting them costs nothing then: a graph's tasks all
        arrive at once (drawn as arrays: `graph-long`'s 900,000 vectors in 0.13 s)."""
        for spec in specs:
            rid = self.book.resolve(spec.routine)
            self._prepared[(rid, spec.size, spec.seed)] = self.book.packed_inputs(
                rid, spec.size, spec.seed)

    def tick(self, now: float) -> list[Envelope]:
        out: list[Envelope] = []
        for task in self._bidding():
            if task.state != TaskState.BIDDING or now < task.bid_deadline:
                continue  # (closed with its batch meanwhile)
            if task.id in self._auctions:
                self._close_batch(now, out, timed_out=True)
            else:
                self._close(task, now, out)
        for entry in self.boards.values():
            for tid in list(entry.inflight):
                task = self.tasks[tid]
                attempt = task.current
                if attempt is not None and now >= self._patience_deadline(attempt):
                    attempt.outcome, attempt.ended = "stuck", now
                    self._rate_time(entry.id, task, attempt, now - attempt.awarded, now)
                    entry.inflight.discard(tid)
                    out.append(Envelope(entry.id, Cancel(tid, entry.id)))
                    self.events.append((now, "stuck", entry.id, tid))
                    if task.calibrating:
                        task.state = TaskState.DROPPED
                        self._calibrate_again(task, now, out)
                    else:  # not excluded: it may only be slow, and it may be the only board
                        task.reroutes.append((now, None))
                        self._again(task, now)
        self._pump(now, out)
        return out

    def deadline(self) -> float | None:
        times = [t.bid_deadline for t in self._bidding()]
        times += [t.retry_at for t in self._open()
                  if t.state == TaskState.READY and t.retry_at > 0]
        for entry in self.boards.values():
            for tid in entry.inflight:
                attempt = self.tasks[tid].current
                if attempt is not None and attempt.sent is not None:
                    times.append(self._patience_deadline(attempt))
        return min(times) if times else None

    @property
    def done(self) -> bool:
        """Every submitted workload task accepted (a workload task is never dropped, and
        stays accepted: one not accepted is among the unfinished, which are few, where
        scanning every task of the run on each turn of the loop was the motherboard's
        main cost past a few thousand tasks)."""
        return all(t.calibrating for t in self._open())

    # -- scheduling -----------------------------------------------------------------------------

    def _pump(self, now: float, out: list[Envelope]) -> None:
        """Announce what can be announced: each board's next calibration task, and the
        workload's highest-priority ready task when no auction is open; and move what
        waits behind a busy board to an idle one (_move)."""
        if self.config.move_to_idle:
            self._move(now, out)
        self._calibrate_under_load(now)
        for entry in self.boards.values():
            if entry.status != BoardStatus.ACTIVE or not entry.calibration:
                continue
            if any(t.calibrating == entry.id and t.state in (
                    TaskState.BIDDING, TaskState.AWARDED) for t in self._open()):
                continue  # one calibration run at a time, so its measure is its own (the
                # check of the last one's answer may go on meanwhile)
            self._announce(self.tasks[entry.calibration.popleft()], {entry.id}, now, out)
        ready = [t for t in self._open() if t.state == TaskState.READY and not t.calibrating]
        for task in ready:
            if task.retry_at <= now:
                task.retry_at = 0.0  # due: no timer needed for it any more
        if self._auctions:
            return
        ready = [t for t in ready if t.retry_at == 0.0]
        # Highest rank first, but a task whose inputs are there before one whose inputs are
        # still to come: its auction is all that stands between it and its run.
        ordered = sorted(ready, key=lambda t: (not t.composed, -t.rank, t.index))
        for task in ordered:
            if not any(self._eligible(e, task) for e in self.boards.values()):
                continue  # nobody can take it yet: it waits until a board is ready (any
                # message pumps again)
            batch = [task]
            if task.composed:
                # Ready tasks whose inputs are there, one for each idle board, are announced
                # together: one auction at a time, a graph's last root began 17-30 ms after
                # its first (bench B), where a list schedule awards them all at once.
                idle = sum(e.status == BoardStatus.ACTIVE and not e.inflight
                           and not e.calibration for e in self.boards.values())
                batch += [t for t in ordered if t is not task and t.composed and any(
                    self._eligible(e, t) for e in self.boards.values())][:max(0, idle - 1)]
            self._auctions, self._batch_won = [t.id for t in batch], set()
            for t in batch:
                self._announce(t, {e.id for e in self.boards.values() if self._eligible(e, t)},
                               now, out)
            return

    def _calibrate_under_load(self, now: float) -> None:
        """Before the workload's first task: a board done with its calibration while
        another still owes samples runs one more sample of its routines (cycling through
        them and the sizes), so that every board calibrates with the others busy, as the
        workload will find them.  Without it the board that finished last took its last
        samples alone: on four TCG boards sharing two cores, rv64's last 50 of 190 runs
        with 0.84 other boards busy on average against 2.2-2.6 for the others, its bids in
        the graph's first run then a log 0.47 under its runs (qemu64's, done first, 0.51
        over), and it won 12 of the 31 tasks."""
        if not self.config.calibrate_under_load or self.order:
            return
        active = [e for e in self.boards.values() if e.status == BoardStatus.ACTIVE]
        idle = [e for e in active if not e.calibration]
        if not idle:  # every board has calibration runs queued (most of the time)
            return
        busy = self._calibrating_boards()
        # owing samples and still running for them: one whose calibration tasks were
        # dropped (it never bid for them) owes samples nobody will ask for again
        owing = {e.id for e in active if e.id in busy
                 and any(self._calibrating_for(e, r) for r in self.mix)}
        if not owing:
            return
        sizes = self.config.calibration_sizes
        for entry in idle:
            if entry.id in busy:
                continue
            routines = [r for r in self.mix if entry.offers(r)]
            if not routines:
                continue
            k = entry.extra_samples
            entry.extra_samples += 1
            entry.calibration.append(self._calibration_task(
                entry, routines[k % len(routines)], sizes[(k // len(routines)) % len(sizes)],
                now).id)

    def _move(self, now: float, out: list[Envelope]) -> None:
        """Work stealing, as StarPU's schedulers do it: a task is awarded on its bids'
        predictions, often long before its inputs come, and runs are noisy (on four TCG
        boards sharing two cores one run of a task spreads 2.3x, max over min), so when
        its inputs are there its board may still be busy with another while a board
        that bid for it has nothing to run.  Such a task (not begun: boards say when
        they begin, Started) goes to the idle board whose own bid for it, its run alone,
        ends it soonest, if that is sooner than its board would by MOVE_GAIN of its run
        (its board ends it after the run it is in and the ready tasks its plan puts first):
        a Cancel to the one, an Award with the inputs to the other, paid its own price
        (no auction was held).  The highest ranked first.  Only to a bidder whose answers
        this motherboard trusts as it trusts those it only samples (OraclePolicy.
        trusted_lower: a newcomer, a liar under a new identity or one caught cheating is
        not) and whose run the oracle's record does not refute (an overstater's), and only
        where the task would run at once: the idle board's own plan (its awarded tasks
        whose inputs are still to come) would not hold it back (agent.holds_up).
        No auction, no message waited for: the bids are those of the task's auction.  A
        board whose Started was still on the way (it had just begun the task) stops that
        run when the Cancel comes, so the task does not take two boards' CPU."""
        idle = [e for e in self.boards.values() if e.status == BoardStatus.ACTIVE
                and not any(self.tasks[t].composed for t in e.inflight)]
        if not idle:
            return
        waiting = []  # (task, its attempt, when its board is expected to end it)
        for entry in self.boards.values():
            running = [a for t in entry.inflight if (a := self.tasks[t].current) is not None
                       and a.started is not None and a.board == entry.id]
            if not running:
                continue  # the board starts what it has as soon as it may
            busy_until = max(self._expected_end(a, now) for a in running)
            if busy_until - now < self.records.transit(entry.id):
                continue  # it ends before a Cancel would reach it: it will begin the next itself
            ready = []
            for tid in entry.inflight:
                task = self.tasks[tid]
                a = task.current
                if a is None or a.started is not None or not task.composed or task.calibrating \
                        or task.state != TaskState.AWARDED:
                    continue
                ready.append((task, a))
            # each after the current run and the ready ones its board's plan runs first (in
            # the order of the finishes their bids promised): a task passed over by the
            # board's own plan waits for all of them, not just for the run
            ready.sort(key=lambda w: (w[0].inputs_at + w[1].bid.seconds, w[0].index))
            ends = busy_until
            for task, a in ready:
                ends += a.bid.run
                waiting.append((task, a, ends))
        for task, attempt, ends in sorted(waiting, key=lambda w: (-w[0].rank, w[0].index)):
            best: tuple[float, Bid] | None = None
            for entry in idle:
                bid = task.bids.get(entry.id)
                if bid is None or bid.run <= 0 or not self._free_for(entry, bid.run, now) or \
                        not self._eligible(entry, task) or \
                        self.trust.of(entry.id).correct.lower() < self.config.oracle.trusted_lower \
                        or self._shortfall(bid, task, bid.run) > 1.0:
                    continue
                there = now + self.records.transit(entry.id) + bid.run
                if there < ends - MOVE_GAIN * attempt.bid.run and (best is None or there < best[0]):
                    best = (there, bid)
            if best is None:
                continue
            bid = best[1]
            source = self.boards[attempt.board]
            attempt.outcome, attempt.ended = "moved", now
            source.inflight.discard(task.id)
            source.won -= 1
            out.append(Envelope(source.id, Cancel(task.id, source.id)))
            self.events.append((now, "moved", source.id, f"{task.id} to {bid.board}"))
            self._award(task, bid, bid.price, now, out)
            self.boards[bid.board].won += 1
            idle = [e for e in idle if e.id != bid.board]

    def _expected_end(self, attempt: Attempt, now: float) -> float:
        """When a begun run should end: as its bid said; once past that, a run already
        late is taken to go on for OVERDUE_SHARE of what it has taken so far."""
        assert attempt.started is not None
        due = attempt.started + attempt.bid.run
        return due if due > now else now + OVERDUE_SHARE * (now - attempt.started)

    def _free_for(self, entry: BoardEntry, run: float, now: float) -> bool:
        """Whether a board with nothing to run would begin a run of `run` seconds at once:
        none of its awarded tasks whose inputs are still to come is expected within `run`
        of now (else its agent holds the run back for it: agent.holds_up)."""
        return not any(holds_up(self.tasks[t].inputs_at, run, now) for t in entry.inflight)

    def _samples(self, entry: BoardEntry, routine: str) -> int:
        """Calibration runs a board owes for a routine: the samples for each implementation
        it offers (its agent tries them in turn)."""
        impls = sum(o.routine == routine for o in entry.report.offers)
        return self.config.calibration_samples * impls

    def _calibrating_for(self, entry: BoardEntry, routine: str) -> bool:
        return (entry.status == BoardStatus.ACTIVE and entry.offers(routine)
                and entry.calibrated[routine] < self._samples(entry, routine))

    def _eligible(self, entry: BoardEntry, task: TaskEntry) -> bool:
        return (entry.status == BoardStatus.ACTIVE and entry.offers(task.routine)
                and entry.id not in task.excluded
                and entry.calibrated[task.routine] >= self._samples(entry, task.routine))

    def _announce(self, task: TaskEntry, boards: set[str], now: float,
                  out: list[Envelope]) -> None:
        task.state = TaskState.BIDDING
        task.asked, task.bids, task.answered = set(boards), {}, set()
        task.announced = now
        task.bid_deadline = now + self.config.bid_timeout
        after = self._inputs_expected(task, now, {}) - now
        task.inputs_at = now + after
        for board in sorted(boards):
            out.append(Envelope(board, BidRequest(task.id, task.routine, task.size, after)))

    def _inputs_expected(self, task: TaskEntry, now: float, memo: dict[str, float]) -> float:
        """When a task's inputs should be there: now once composed, else when the last of
        its parents is expected to answer (its inputs' sending, expected the same way
        when still to come, plus its board's promise)."""
        if task.composed:
            return now
        if task.id not in memo:
            ends = []
            for p in (self.tasks[q] for q in task.after):
                attempt = p.current
                if p.outputs is not None or p.draft is not None or attempt is None:
                    continue  # answered (or, being announced again, not yet awarded: unknown)
                start = attempt.sent if attempt.sent is not None else \
                    self._inputs_expected(p, now, memo)
                ends.append(start + attempt.bid.seconds)
            memo[task.id] = max([now, *ends])
        return memo[task.id]

    def _answered(self, task: TaskEntry, now: float, out: list[Envelope]) -> None:
        """A board asked about `task` answered (or left): once all have, its auction
        closes, and a batch's once each of its auctions has every answer."""
        if task.answered < task.asked:
            return
        if task.id in self._auctions:
            self._close_batch(now, out)
        else:
            self._close(task, now, out)

    def _close_batch(self, now: float, out: list[Envelope], timed_out: bool = False) -> None:
        """Close the open auctions together, in rank order, once each has every answer (or
        their time is up): each winner then counts against the later ones (_close)."""
        tasks = [self.tasks[t] for t in self._auctions]
        if not timed_out and any(t.answered < t.asked for t in tasks):
            return
        for task in tasks:
            if task.state == TaskState.BIDDING:
                self._close(task, now, out)

    def _close(self, task: TaskEntry, now: float, out: list[Envelope]) -> None:
        """End an auction: award the winner, or put the task back to wait."""
        if task.id in self._auctions:
            self._auctions.remove(task.id)
        live = [b for name, b in sorted(task.bids.items())
                if self.boards[name].status == BoardStatus.ACTIVE]
        if not live:
            task.state = TaskState.READY
            task.retry_at = now + self.config.retry_after
            task.unanswered += int(not task.answered)
            if task.calibrating:
                entry = self.boards[task.calibrating]
                if task.answered or task.unanswered >= CALIBRATION_ASKS or \
                        not self._calibrating_for(entry, task.routine):
                    task.state = TaskState.DROPPED  # it would not bid for its own calibration
                else:  # its bid did not come in time: asked again, first of its calibration
                    entry.calibration.appendleft(task.id)
            return
        if task.calibrating:  # awarded to the board it calibrates, unpaid
            self._award(task, live[0], 0.0, now, out)
            return
        # In a batch, a board that won an earlier task of it bid for this one as if it had
        # not (its queue then was empty): it is passed over while a board that won none
        # bids whose answers this motherboard trusts as it trusts those it only samples;
        # only those compete then, so a newcomer, a liar under a new identity or one
        # caught cheating never gains by it (with trust weight at min_weight as the test,
        # bench A gave 1 of its last 100 tasks to a liar, against none in the ten runs
        # before; one run).
        if self._batch_won:
            fresh = [b for b in live if b.board not in self._batch_won and self.trust.of(
                b.board).correct.lower() >= self.config.oracle.trusted_lower]
            if fresh and len(fresh) < len(live):
                live = fresh
        # A promise this motherboard's own record of the board already shows it cannot
        # keep counts as late at once, and is taken only if no other is (so no task waits
        # forever): a tenfold overstater's every bid, which the run alone would let
        # through whenever the record is too long for the run (taken under load).  When
        # every bid is refuted, those nearest their records (within twice the nearest's
        # shortfall) are taken: a record taken under a load since gone is as far from
        # every honest promise, and a board must run to bring its record's pace up to
        # date (BoardRecords.recorded), while an overstater stays ten times further.
        shortfall = {b.board: self._shortfall(b, task) for b in live}
        refuted = [b for b in live if shortfall[b.board] > 1.0]
        for b in refuted:
            self.trust.refuted(b.board, now)
            self.events.append((now, "refuted", b.board, task.id))
        nearest = min(shortfall.values())
        live = [b for b in live if b not in refuted] or \
            [b for b in live if shortfall[b.board] <= 2.0 * nearest]
        sealed = [Sealed(b.board, b.price, max(self.trust.of(b.board).weight, 1e-12)) for b in live]
        trusted = [s for s in sealed if s.weight >= self.config.min_weight]
        coming = any(self._calibrating_for(e, task.routine) for e in self.boards.values())
        if not trusted and coming:
            task.state, task.retry_at = TaskState.READY, now + self.config.retry_after
            return  # only distrusted bidders, and a board is still calibrating: wait for it
        result = vickrey(trusted or sealed)
        assert result is not None
        bid = next(b for b in live if b.board == result.winner.bidder)
        self._award(task, bid, result.payment, now, out)
        self.boards[bid.board].won += 1
        self._batch_won.add(bid.board)

    def _award(self, task: TaskEntry, bid: Bid, payment: float, now: float,
               out: list[Envelope]) -> None:
        task.state = TaskState.AWARDED
        task.attempts.append(Attempt(bid.board, bid, payment, now,
                                     sent=now if task.composed else None))
        if task.reroutes and task.reroutes[-1][1] is None:
            task.reroutes[-1] = (task.reroutes[-1][0], now)
        self.boards[bid.board].inflight.add(task.id)
        out.append(Envelope(bid.board, Award(task.id, bid.board, task.routine, bid.implementation,
                                             task.size, task.packed if task.composed else None)))
        if not task.calibrating:
            self._release_children(task, now, out)  # they may be announced now

    def _again(self, task: TaskEntry, now: float, exclude: str | None = None) -> None:
        """Announce the task again (after a wrong answer, a failure, an exit)."""
        if exclude is not None:
            task.excluded.add(exclude)
            self.boards[exclude].inflight.discard(task.id)
        if task.calibrating:
            task.state = TaskState.DROPPED
            return
        task.state, task.retry_at = TaskState.READY, 0.0

    def _release(self, task: TaskEntry, now: float, out: list[Envelope]) -> None:
        """Ready to be announced once every parent is awarded; its inputs composed once
        every parent has an answer (accepted, or being checked: see _result) from theirs
        (workload.compose_inputs, on the packed records), and sent at once to the board
        it was awarded to meanwhile, if any."""
        parents = [self.tasks[p] for p in task.after]
        if task.state == TaskState.WAITING and all(
                p.state not in (TaskState.WAITING, TaskState.READY, TaskState.BIDDING)
                for p in parents):
            task.state = TaskState.READY
        if task.composed or any(p.outputs is None and p.draft is None for p in parents):
            return
        task.packed = task.own
        if parents:
            task.packed = batch.compose(
                self.book.routine(task.routine), task.own,
                [(self.book.routine(p.routine), p.outputs if p.outputs is not None else p.draft)
                 for p in parents])
            task.basis = {p.id: len(p.attempts) - 1 for p in parents}
        task.composed = True
        attempt = task.current
        if task.state == TaskState.AWARDED and attempt is not None and attempt.sent is None:
            attempt.sent = now
            out.append(Envelope(attempt.board, Inputs(task.id, attempt.board, task.packed)))

    def _calibration_inputs(self, task: TaskEntry) -> bytes:
        """A calibration task's inputs: at most CALIBRATION_DISTINCT vectors, repeated to
        its size: a run's time does not depend on which vectors it is given, and a
        calibration samples every routine, implementation and size several times on every
        board, so its inputs are drawn small and copied."""
        distinct = self.book.packed_inputs(task.routine, min(task.size, CALIBRATION_DISTINCT),
                                           task.seed)
        stride = len(distinct) // min(task.size, CALIBRATION_DISTINCT)
        return (distinct * -(-task.size * stride // len(distinct)))[:task.size * stride]

    def _own_inputs(self, task: TaskEntry) -> bytes:
        return self.book.packed_inputs(task.routine, task.size, task.seed)

    def _release_children(self, parent: TaskEntry, now: float, out: list[Envelope]) -> None:
        for child in self._children(parent):
            self._release(child, now, out)

    def _children(self, parent: TaskEntry) -> list[TaskEntry]:
        return [self.tasks[c] for c in self._successors.get(parent.id, ())]

    def _rank(self, task: TaskEntry) -> float:
        """Upward rank over the tasks submitted so far (HEFT's priority), in predicted
        seconds: a task's own mean cost plus the costliest path to the exit after it."""
        if not task.after and not self._successors.get(task.id):
            return 0.0
        memo: dict[str, float] = {}

        def rank(tid: str) -> float:
            if tid not in memo:
                t = self.tasks[tid]
                memo[tid] = self._mean_cost(t) + max(
                    (rank(c) for c in self._successors.get(tid, ())), default=0.0)
            return memo[tid]

        for t in self._open():
            if t.index >= 0 and t.state in (TaskState.WAITING, TaskState.READY):
                t.rank = rank(t.id)
        return rank(task.id)

    def _mean_cost(self, task: TaskEntry) -> float:
        """Mean predicted seconds over the boards that measured the routine (else its size)."""
        key = (task.routine, task.size)
        if key not in self._mean_costs:
            self._mean_costs[key] = self.records.mean_prediction(task.routine, task.size)
        return self._mean_costs[key]

    def _shortfall(self, bid: Bid, task: TaskEntry, promise: float | None = None) -> float:
        """How far the bid's promise (or `promise`: its run alone, say) falls short of the
        oracle's record of the board (BoardRecords.shortfall): above 1 the record shows
        the promise cannot be kept."""
        return self.records.shortfall(bid.board, task.routine, bid.implementation, task.size,
                                      bid.seconds if promise is None else promise,
                                      self.config.oracle.record_tolerance)

    def _rate_time(self, board: str, task: TaskEntry, attempt: Attempt, measured: float,
                   now: float) -> None:
        """Judge a promise: the board promised its run; the messages' round trip (as long as
        its bids take to come back) is not its to promise.  It is held to this run and to
        the oracle's record of the board (_shortfall), so that a promise of a tenth of the
        record is late even when this run happened to be that quick."""
        self.trust.timeliness(board, attempt.bid.seconds, measured, self.config.oracle.tolerance,
                              now, transit=self.records.transit(board),
                              refuted=self._shortfall(attempt.bid, task) > 1.0)

    def _patience_deadline(self, attempt: Attempt) -> float:
        """Never while its inputs are still to come (its parents' boards answer for that)."""
        if attempt.sent is None:
            return float("inf")
        return attempt.sent + max(self.config.min_patience,
                                  self.config.patience * attempt.bid.seconds)

    def _bidding(self) -> list[TaskEntry]:
        return [t for t in self._open() if t.state == TaskState.BIDDING]

    def _open(self) -> list[TaskEntry]:
        """The tasks not yet accepted or dropped, in the order they came (see _unfinished)."""
        for tid in [t for t, task in self._unfinished.items()
                    if task.state in (TaskState.ACCEPTED, TaskState.DROPPED)]:
            del self._unfinished[tid]
        return list(self._unfinished.values())

    def _entry(self, board: str) -> BoardEntry:
        entry = self.boards.get(board)
        if entry is None:
            raise MarketError(f"board {board!r} never onboarded: send Onboard first")
        return entry

    # -- what happened --------------------------------------------------------------------------

    def calibrating(self, board: str) -> bool:
        """Whether the board still has calibration tasks to run or answers to be judged."""
        return bool(self.boards[board].calibration) or board in self._calibrating_boards()

    def _calibrating_boards(self) -> set[str]:
        """The boards with a calibration task queued, bid for, in flight or being judged
        (one pass over the open tasks, for every board)."""
        out = {e.id for e in self.boards.values() if e.calibration}
        in_flight = (t for e in self.boards.values() for t in e.inflight)
        out.update(c for t in (*in_flight, *self._results) if (c := self.tasks[t].calibrating))
        # a calibration task being bid for is neither queued nor in flight, and counts
        out.update(t.calibrating for t in self._bidding() if t.calibrating)
        return out

    def workload_tasks(self) -> list[TaskEntry]:
        return [self.tasks[t] for t in self.order]
