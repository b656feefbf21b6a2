"""Simulated boards on a virtual clock, behind the same messages as live ones.

A SimBoard is an agent (agent.py, maybe a liar's) on a machine whose run times come
from a cost profile -- per routine, an overhead plus a time per vector, with
log-normal noise, and a time per vector for the way to the guest and back that the
guest's cycle count leaves out -- and whose answers come from the interpreter, so the oracle's
checks are real.  Profiles can be written by hand (tests) or taken from what live
boards measured (the bench replays a live run's per-board times).

`simulate` runs a workload through a Motherboard as a discrete-event simulation:
messages take `latency` virtual seconds each way, boards run one task at a time,
and boards may join, leave (gracefully or killed) at given times.  With `cores` the
boards share a host of that many cores, as live boards share this one: a run that
starts while k boards run (itself included) takes max(1, k / cores) times as long
(fixed at its start), so ten boards calibrating side by side on a small host measure
runs several times longer than they take once the stream spreads them out.  With
`host_cpu` the boards also read each run's CPU (its time alone) and are told the host's
share of a CPU, as live boards and their board host do (history.py).
Everything is deterministic for a seed.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from motherboard import batch
from motherboard.adversary import Liar, LyingAgent
from motherboard.agent import AwardedJob, BoardAgent
from motherboard.energy import model_for
from motherboard.history import CALIBRATION_SAMPLES, Smoothed
from motherboard.market import MarketConfig, Motherboard
from motherboard.messages import (
    Award,
    BidRequest,
    BoardMessage,
    Cancel,
    DiscoveryReport,
    Envelope,
    Exit,
    Inputs,
    Offer,
    Onboard,
    Settle,
    Started,
)
from motherboard.routines import RoutineBook
from motherboard.workload import Workload

KILL_NOTICE = 0.3  # virtual seconds between a kill and the motherboard hearing of it


@dataclass(frozen=True)
class RunTimeLine:
    """Run time of one implementation of one routine: overhead + per_vector * size."""

    overhead: float
    per_vector: float

    def seconds(self, size: int) -> float:
        return self.overhead + self.per_vector * size


@dataclass(frozen=True)
class SimProfile:
    """A kind of simulated board: its implementations and how long they take."""

    spec: str
    arch: str = "x86_64"
    features: tuple[str, ...] = ()
    default: RunTimeLine = RunTimeLine(0.002, 2e-6)
    # routine name or ID -> implementation -> RunTimeLine
    lines: dict[str, dict[str, RunTimeLine]] = field(default_factory=dict)
    noise: float = 0.1  # sigma of the log-normal factor on every run
    # How many times as long the board's first runs take: a shared host as its boards
    # start, all calibrating at once (live, ten boards side by side measured runs of 1-14 s
    # of one size), which drags a mean -- and the line fitted through it -- far above
    # what the later runs take.
    first_runs: tuple[float, ...] = ()
    clock_hz: float = 2e9
    # seconds per vector of a task's way to the guest and back: the same whatever the
    # implementation, and outside the guest's count of the run's cycles (a live board
    # counts cycles around each batch probe's run)
    transport: float = 0.0

    def implementations(self, book: RoutineBook, rid: str) -> dict[str, RunTimeLine]:
        own = self.lines.get(rid) or self.lines.get(book.name(rid)) or \
            self.lines.get(book.short(rid))
        return dict(own) if own else {"lowered": self.default}


class SimBoard:
    """One simulated board: an agent, its profile, and the job it is running."""

    def __init__(self, board_id: str, profile: SimProfile, book: RoutineBook, seed: int,
                 liar: str | None = None, declines: tuple[str, ...] = (),
                 explore: int = CALIBRATION_SAMPLES, patient: bool = False) -> None:
        self.profile, self.book = profile, book
        self.rng = random.Random(seed)
        offers = tuple(Offer(rid, impl) for rid in book.routines
                       for impl in profile.implementations(book, rid))
        report = DiscoveryReport(board_id, profile.spec, profile.arch,
                                 f"sim:{profile.spec}", "sim", profile.features, offers,
                                 model_for(profile.arch), f"simulated {profile.spec}")
        self.agent = BoardAgent(report, explore)
        self.liar = None if liar is None else LyingAgent(self.agent,
                                                         Liar(liar, random.Random(seed + 1),
                                                              patient))
        self.declines = tuple(book.resolve(r) for r in declines)
        self.running: AwardedJob | None = None
        self.contention = 1.0  # of the running job's run
        self.reports_cpu = False  # whether its runs' CPU is read, as a live board's QEMU's is
        # the time its latest settled task spent outside its run, where known (pooled by
        # the host, as the board host pools its boards')
        self.outside: float | None = None
        self.runs = 0  # started so far
        self.alive = True
        self.identities = [board_id]

    @property
    def id(self) -> str:
        return self.agent.board

    def join(self) -> list[BoardMessage]:
        out: list[BoardMessage] = [Onboard(self.agent.report)]
        if self.declines:
            out.append(self.agent.decline(self.declines))
        return out

    def receive(self, message: object, now: float) -> list[BoardMessage]:
        if not self.alive:
            return []
        match message:
            case BidRequest():
                if self.liar is None:
                    return [self.agent.on_request(message, now)]
                out: list[BoardMessage] = [self.liar.on_request(message, now)]
                if self.liar.liar.wants_new_identity:
                    out += self.new_identity()
                return out
            case Award():
                if message.board != self.id:
                    return []  # meant for an identity this board has shed
                (self.liar or self.agent).on_award(message, now)
            case Inputs():
                self.agent.on_inputs(message, now)
            case Cancel():
                if self.agent.on_cancel(message) and self.running is not None \
                        and self.running.award.task == message.task:
                    self.running = None  # its run stops: its end finds it gone (finish)
            case Settle():
                self.outside = self.agent.on_settle(message)
        return []

    def start(self, now: float, contention: float = 1.0) -> tuple[AwardedJob, float] | None:
        """The next job and when it will end, if the board is idle; `contention`: how many
        times as long as alone its run takes on the shared host."""
        if not self.alive or self.running is not None:
            return None
        job = self.agent.next_job(now)
        if job is None:
            return None
        self.running, self.contention = job, contention
        noise = math.exp(self.rng.gauss(0.0, self.profile.noise)) if self.profile.noise else 1.0
        if self.runs < len(self.profile.first_runs):
            noise *= self.profile.first_runs[self.runs]
        self.runs += 1
        _, whole = self._times(job)
        return job, now + whole * noise * contention

    def _times(self, job: AwardedJob) -> tuple[float, float]:
        """(the guest's part, the whole) of the job's time before noise: the whole adds the
        vectors' way to the guest and back, which the guest's cycle count leaves out."""
        lines = self.profile.implementations(self.book, job.award.routine)
        guest = lines.get(job.award.implementation, self.profile.default).seconds(job.award.size)
        return guest, guest + self.profile.transport * job.award.size

    def finish(self, job: AwardedJob, now: float) -> list[BoardMessage]:
        if self.running is not job:
            return []  # stopped by a Cancel
        self.running = None
        if not self.alive or job.started is None:
            return []
        rid = job.award.routine
        outputs = self.book.answers(rid, job.award.inputs)
        seconds = now - job.started
        guest, whole = self._times(job)
        cycles = int(seconds * (guest / whole if whole > 0 else 1.0) * self.profile.clock_hz)
        # the CPU a run took is its time alone: contention only stretched it
        cpu = seconds / self.contention if self.reports_cpu else None
        result = self.agent.finished(job, outputs, seconds, cycles, cpu=cpu)
        if job.award.board != self.id:
            return []  # finished for an identity it has shed: the motherboard rerouted it
        if self.liar is not None:
            result = self.liar.result(result, batch.out_stride(self.book.routine(rid)))
        out: list[BoardMessage] = [result]
        if self.liar is not None and self.liar.liar.wants_new_identity:
            out += self.new_identity()
        return out

    def new_identity(self) -> list[BoardMessage]:
        """Leave and join again as someone else (the whitewashing liar)."""
        old = self.id
        self.identities.append(f"{self.identities[0]}~{len(self.identities)}")
        self.agent.report = replace(self.agent.report, board=self.identities[-1])
        self.agent.queue.clear()
        self.liar.liar.lost_in_a_row = 0
        return [Exit(old, True, "leaving"), *self.join()]

    def kill(self) -> None:
        self.alive = False
        self.running = None


@dataclass(frozen=True)
class BoardPlan:
    """A board in a simulation: when it joins, and whether/when it leaves."""

    board: str
    profile: SimProfile
    join: float = 0.0
    leave: float | None = None  # graceful exit at this time
    kill: float | None = None  # killed at this time
    liar: str | None = None  # adversary kind
    patient: bool = False  # the liar lies only once calibrated (adversary.Liar.patient)
    declines: tuple[str, ...] = ()


@dataclass
class SimRun:
    motherboard: Motherboard
    boards: dict[str, SimBoard]
    end: float  # virtual seconds until every task was accepted (or the horizon)
    kills: dict[str, float]  # board -> when it was killed
    liars: dict[str, str]  # every identity a liar used -> its kind
    start: float  # when the workload's clock started


def simulate(workload: Workload, plans: Sequence[BoardPlan], book: RoutineBook | None = None,
             config: MarketConfig | None = None, latency: float = 0.001, seed: int = 0,
             horizon: float = 3600.0, warm_up: bool = False, cores: int | None = None,
             on_event: Callable[[float, Motherboard], None] | None = None,
             host_cpu: bool = False) -> SimRun:
    """Run `workload` on simulated boards; returns when every task is accepted or at
    `horizon` virtual seconds.  With `warm_up` the workload's clock starts once the
    boards there at time 0 have calibrated (`SimRun.start`).  `cores`: the host's cores
    the boards share (see the module's docstring); None, a core each.  `host_cpu`: boards
    read each run's CPU (its time alone) and the host tells every board the share of a
    CPU runs get and the time a task spends outside its run (each smoothed over every
    board's), as live boards and their board host do (history.py)."""
    book = book or RoutineBook.library()
    mb = Motherboard(book, workload.routines(), config)
    boards: dict[str, SimBoard] = {}
    counter = itertools.count()
    events: list[tuple[float, int, str, object]] = []

    def at(t: float, kind: str, payload: object) -> None:
        heapq.heappush(events, (t, next(counter), kind, payload))

    liars: dict[str, str] = {}
    for i, plan in enumerate(plans):
        board = SimBoard(plan.board, plan.profile, book, seed * 104729 + 2 * i, plan.liar,
                         plan.declines, mb.config.calibration_samples, plan.patient)
        board.reports_cpu = host_cpu
        at(plan.join, "join", board)
        if plan.leave is not None:
            at(plan.leave, "leave", board)
        if plan.kill is not None:
            at(plan.kill, "kill", board)
    def release(t0: float) -> None:
        for spec in workload.tasks:
            at(t0 + spec.arrival, "task", spec)

    initial = {p.board for p in plans if p.join == 0.0}
    start: float | None = None
    if not warm_up:
        start = 0.0
        release(0.0)

    kills: dict[str, float] = {}
    now = 0.0
    host_share, host_outside = Smoothed(), Smoothed()

    def tell() -> None:
        """Every board gets the host's figures as they stand, as the board host tells its
        boards (None: none yet)."""
        for b in set(boards.values()):
            b.agent.history.host_share = host_share.value if host_share.count else None
            b.agent.history.host_outside = host_outside.value if host_outside.count else None

    def to_boards(envelopes: list[Envelope], t: float) -> None:
        for env in envelopes:
            at(t + latency, "to_board", env)

    def to_motherboard(messages: list[BoardMessage], t: float) -> None:
        for m in messages:
            at(t + latency, "to_mb", m)

    def kick(board: SimBoard, t: float) -> None:
        contention = 1.0
        if cores is not None:
            running = 1 + sum(b.running is not None for b in set(boards.values()) if b is not board)
            contention = max(1.0, running / cores)
        started = board.start(t, contention)
        if started is not None:
            at(started[1], "done", (board, started[0]))
            if started[0].award.board == board.id:
                to_motherboard([Started(started[0].award.task, board.id)], t)
        elif board.alive and (wake := board.agent.wake_at(t)) is not None:
            at(wake, "wake", board)

    while events:
        now, _, kind, payload = heapq.heappop(events)
        if now > horizon:
            break
        if kind == "task":
            due = [payload]  # with every other task arriving at this instant (a graph's roots)
            while events and events[0][0] == now and events[0][2] == "task":
                due.append(heapq.heappop(events)[3])
            to_boards(mb.submit_many(due, now), now)
        elif kind == "join":
            boards[payload.id] = payload
            if payload.liar is not None:
                liars[payload.id] = payload.liar.liar.kind
            to_motherboard(payload.join(), now)
        elif kind == "to_mb":
            if isinstance(payload, Onboard):
                board = next(b for b in boards.values() if payload.report.board in b.identities)
                boards[payload.report.board] = board
                if board.liar is not None:
                    liars[payload.report.board] = board.liar.liar.kind
            to_boards(mb.handle(payload, now), now)
        elif kind == "to_board":
            board = boards.get(payload.to)
            if board is not None:
                to_motherboard(board.receive(payload.message, now), now)
                if host_cpu and isinstance(payload.message, Settle) and board.outside is not None:
                    host_outside.add(board.outside)
                    tell()
                kick(board, now)
        elif kind == "done":
            board, job = payload
            if host_cpu and board.alive and board.agent.history.warmed:
                host_share.add(1.0 / board.contention)
                tell()
            to_motherboard(board.finish(job, now), now)
            kick(board, now)
        elif kind == "leave" and payload.alive:
            payload.kill()  # it stops working ...
            to_motherboard([Exit(payload.id, True, "leaving")], now)  # ... and says so
        elif kind == "kill" and payload.alive:
            payload.kill()
            kills[payload.id] = now
            at(now + KILL_NOTICE, "to_mb", Exit(payload.id, False, "its transport saw it die"))
        elif kind == "wake":
            kick(payload, now)
        elif kind == "tick":
            to_boards(mb.tick(now), now)
        if on_event is not None:
            on_event(now, mb)
        if start is None and initial <= set(mb.boards) and not any(
                mb.calibrating(b) for b in initial):
            start = now
            release(now)
        if start is not None and mb.done and not any(k == "task" for _, _, k, _ in events):
            break
        deadline = mb.deadline()
        if deadline is not None and not any(k == "tick" and t <= deadline for t, _, k, _ in events):
            at(max(deadline, now), "tick", None)
    return SimRun(mb, boards, now, kills, liars, start if start is not None else now)
