"""One loop, one thread, many boards: a probing campaign on each, side by side.

Each board is a QemuLink with its own CampaignState (probes/campaign_state.py).
The loop selects on every board's probe line, feeds each state what its board
sent, writes what the state hands back and keeps each state's deadline, so the
boards go at their own pace and none waits for another.

A board's items come from a source.  A list (any iterable) is a fixed campaign:
once it is drawn dry the board finishes when its last result is in.  An `Intake`
is open: work is put into it while the loop serves (a `Work`, several probes whose
results are handed back together, in order, once each has one: a task of 10,000
vectors is 20 batch probes), a board with nothing to do waits for more, and only
`close()` ends it.  Boards are added while serving (`BoardLoop.add`, a board
not booted yet is booted from the loop as a restart is) and ended (`end`).

A board that dies (its QEMU exits: the line closes) or stops answering is
restarted without stalling the others -- unless its job says `restart=False`:
then it stays dead, and its `on_end` is told why at once (a killed board of the
motherboard is not brought back; its tasks go elsewhere).  The slow part of a
boot that cannot be fed from a selector -- ending the old QEMU and starting the
new one, which waits until QEMU has taken its command line -- runs in a worker
thread; the boot to FINAL is the sans-IO BootReader (link/boot.py), fed from the
same selector; then the board's campaign reruns its suspects as it always does.
A board whose boot fails is set aside with its BootError; the others go on.

Items are drawn from each board's source whenever its campaign wants more, in
the loop's thread: they must not block (pre-vetted lists, an Intake, or queues
another thread fills), or every board waits.  Asking QEMU whether a silent board
is gone (QMP, at most 0.1 s) is the one short wait left in the loop.  Whoever
drives the loop beside its boards (a market, messages from other processes)
does so from `run`'s hook and from files it watches (`watch`), in the same thread.
"""

from __future__ import annotations

import selectors
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import Enum

from link.boot import EXIT_TIMEOUT, BootError, BootReader
from link.qemu_link import QemuLink
from probes.campaign import CampaignReport, draw
from probes.campaign_state import (
    CampaignError,
    CampaignResult,
    CampaignState,
    Counters,
    Item,
    Output,
    Policy,
)
from probes.probe import Probe
from qemu.errors import BoardError, QemuError

SPAWN_POLL = 0.01  # seconds between looks at a QEMU being started in the worker thread
LINE_CLOSED = "QEMU exited"  # why a board whose line closed is restarted


# -- work handed over as it comes ---------------------------------------------------------------

@dataclass(frozen=True)
class Work:
    """Probes whose results belong together (one task): handed back as one `WorkDone`."""

    key: Hashable
    items: tuple[Item, ...]


@dataclass(frozen=True)
class WorkDone:
    """A Work's results in the order of its items, or why it has none (one of its probes
    was quarantined: the board died while it ran alone)."""

    key: Hashable
    results: tuple[CampaignResult, ...] = ()
    error: str | None = None


@dataclass
class _Slots:
    """An open work's results in the order of its items, and how many are still to come:
    counted down, not looked for in the slots on every result (a task of 80 probes looked
    3,200 times; 6% of a board host's CPU)."""

    results: list[CampaignResult | None]
    missing: int


class Intake:
    """An open source of work for one board (sans-IO: no thread, no clock).  `put` work
    as it comes, `close` when no more will; `draw` hands a CampaignState the items it
    wants, and `answered` turns the results and quarantines of its Outputs into
    completed work.  Nothing put in yet is not the end: the board waits for more."""

    def __init__(self) -> None:
        self.closed = False
        self._waiting: deque[Item] = deque()
        # id(probe) -> (its work's key, its place): the submitted probe object itself comes
        # back in its result (two probes of one work may be equal: repeated inputs)
        self._place: dict[int, tuple[Hashable, int]] = {}
        self._open: dict[Hashable, _Slots] = {}

    def put(self, work: Work) -> None:
        if self.closed:
            raise ValueError("work put into a closed intake: it would never run")
        if work.key in self._open:
            raise ValueError(f"work {work.key!r} is already in this intake")
        self._open[work.key] = _Slots([None] * len(work.items), len(work.items))
        for index, item in enumerate(work.items):
            self._place[id(item[0])] = (work.key, index)
        self._waiting.extend(work.items)

    def close(self) -> None:
        self.closed = True

    def withdraw(self, key: Hashable) -> bool:
        """Take back work not done yet (its task went elsewhere): its items still waiting
        are never submitted, and the results of those already out come back to nobody,
        even once work of the same key is put in again.  False when no such work is
        open."""
        if self._open.pop(key, None) is None:
            return False
        gone = {probe_id for probe_id, (owner, _) in self._place.items() if owner == key}
        for probe_id in gone:
            del self._place[probe_id]
        self._waiting = deque(item for item in self._waiting if id(item[0]) not in gone)
        return True

    @property
    def pending(self) -> tuple[Hashable, ...]:
        """The keys of the work put in and not done yet, oldest first."""
        return tuple(self._open)

    def draw(self, state: CampaignState) -> bool:
        """Hand `state` what it wants of the waiting items (and, once closed and drained,
        say there are no more); whether anything changed for it."""
        wanted, moved = state.wants, False
        while wanted > 0 and self._waiting:
            state.submit(*self._waiting.popleft())
            wanted -= 1
            moved = True
        if self.closed and not self._waiting and wanted > 0:
            state.end_of_items()
            moved = True
        return moved

    def answered(self, out: Output) -> list[WorkDone]:
        """The work `out`'s results and quarantines complete."""
        done = []
        for batch in out.batches:
            for result in batch:
                place = self._place.pop(id(result.probe), None)
                if place is None or place[0] not in self._open:
                    continue  # of work already ended by a quarantine
                key, index = place
                slots = self._open[key]
                slots.results[index] = result
                slots.missing -= 1
                if not slots.missing:
                    del self._open[key]
                    done.append(WorkDone(key, tuple(slots.results)))  # type: ignore[arg-type]
        for probe, why in out.quarantined:
            place = self._place.pop(id(probe), None)
            if place is not None and self._open.pop(place[0], None) is not None:
                done.append(WorkDone(place[0], error=f"probe quarantined: {why}"))
        return done


class _Fixed:
    """A fixed list of items: the board finishes once they are all done."""

    def __init__(self, items: Iterable[Item]) -> None:
        self.items: Iterator[Item] = iter(items)

    def draw(self, state: CampaignState) -> bool:
        return draw(state, self.items)


@dataclass
class BoardJob:
    """One board's part: its link, what to run on it, where results go.  A link not
    launched yet (QemuLink(launch=False)) is booted by the loop."""

    link: QemuLink
    items: Iterable[Item] | Intake
    on_batch: Callable[[list[CampaignResult]], None] | None = None
    on_quarantine: Callable[[Probe, str], None] | None = None
    on_work: Callable[[WorkDone], None] | None = None  # an Intake's completed work
    on_up: Callable[[QemuLink], None] | None = None  # booted to FINAL (and after restarts)
    on_end: Callable[[str], None] | None = None  # the board is finished, and why
    restart: bool = True  # False: a board that dies stays dead (ended, `on_end` told)


@dataclass
class BoardOutcome:
    """What one board did: its report, and the error that set it aside, if any."""

    report: CampaignReport = field(default_factory=CampaignReport)
    error: BootError | BoardError | None = None  # BoardError: QEMU refused an option
    died: str | None = None  # a board not to be restarted that died: why


class _Phase(Enum):
    SERVING = "serving"  # the campaign runs on the probe line
    SPAWNING = "spawning"  # the worker thread (ends the old QEMU and) starts a new one
    BOOTING = "booting"  # the new boot is fed from the selector until FINAL
    FINISHED = "finished"  # every item done, or set aside, or ended


@dataclass(eq=False)
class _Served:
    job: BoardJob
    state: CampaignState
    source: Intake | _Fixed
    outcome: BoardOutcome = field(default_factory=BoardOutcome)
    phase: _Phase = _Phase.SERVING
    started: bool = False  # its campaign has started (it was up once)
    deadline: float | None = None
    spawned: Future[BootReader] | None = None
    boot: BootReader | None = None
    fd: int | None = None  # registered with the selector

    @property
    def link(self) -> QemuLink:
        return self.job.link


def serve(jobs: list[BoardJob], policy: Policy | None = None) -> list[BoardOutcome]:
    """Run every job's items on its board, all from this thread; returns each board's
    outcome, in the order of `jobs`.  The links stay open (their owner closes them)."""
    loop = BoardLoop(policy)
    try:
        for job in jobs:
            loop.add(job)
        return loop.run()
    finally:
        loop.close()


def _restart(link: QemuLink) -> BootReader:
    """The worker thread's part of a restart: end the old QEMU, start the new one."""
    link.kill()
    return link.spawn()


@dataclass(eq=False)
class _Watched:
    """A file the loop watches for its driver (not a board's)."""

    on_ready: Callable[[], None]


Hook = Callable[[float], float | None]  # called with the time each turn; its next deadline


class BoardLoop:
    """The loop.  `add` boards (before `run` or from its thread while it runs), `run`
    until every board is finished -- or, with `keep_serving`, until `stop` -- then
    `close`.  Boards' links stay open unless ended (`end`) or set aside."""

    def __init__(self, policy: Policy | None = None, *, keep_serving: bool = False) -> None:
        self.policy = policy or Policy()
        self.keep_serving = keep_serving
        self.boards: list[_Served] = []
        self.selector = selectors.DefaultSelector()
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="boot")
        self._stopping = False
        self._running = False

    def add(self, job: BoardJob) -> None:
        # a board under KVM gets the KVM floors of the silence timers (Policy.under), as a
        # Campaign on its link does
        policy = self.policy.under(getattr(job.link, "accelerator", None))
        if isinstance(job.items, Intake):  # its work is answered as results come, not batched
            policy = replace(policy, batch_size=1)
        source = job.items if isinstance(job.items, Intake) else _Fixed(job.items)
        board = _Served(job, CampaignState(policy), source)
        self.boards.append(board)
        if job.link.machine is None:  # not launched: boot it from the loop
            board.phase = _Phase.SPAWNING
            board.spawned = self.pool.submit(job.link.spawn)
        elif self._running:
            self._begin(board, time.monotonic())

    def end(self, job: BoardJob) -> None:
        """Finish the board of `job` now (it leaves), closing its link."""
        board = next(b for b in self.boards if b.job is job)
        if board.phase == _Phase.FINISHED:
            return
        if board.spawned is not None:  # let the spawn finish before closing what it made
            board.spawned.exception()
            board.spawned = None
        self._watch(board, None)
        board.phase = _Phase.FINISHED
        board.job.link.close()

    def watch(self, fd: int, on_ready: Callable[[], None]) -> None:
        """Call `on_ready` (in the loop's thread) whenever `fd` is readable."""
        self.selector.register(fd, selectors.EVENT_READ, _Watched(on_ready))

    def stop(self) -> None:
        """End `run` after its current turn (from the loop's thread: its hook, a callback)."""
        self._stopping = True

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.selector.close()

    def outcome(self, job: BoardJob) -> BoardOutcome:
        return next(b.outcome for b in self.boards if b.job is job)

    def run(self, hook: Hook | None = None) -> list[BoardOutcome]:
        """Serve; returns every board's outcome in the order added.  `hook(now)` is called
        every turn and returns when it wants to be called next at the latest."""
        self._running, self._stopping = True, False
        now = time.monotonic()
        for board in self.boards:
            if board.phase == _Phase.SERVING and not board.started:
                self._begin(board, now)
        hook_at: float | None = None
        while not self._stopping and (self.keep_serving or any(
                b.phase != _Phase.FINISHED for b in self.boards)):
            for key, mask in self.selector.select(self._timeout(hook_at)):
                if isinstance(key.data, _Watched):
                    key.data.on_ready()
                else:
                    self._guarded(key.data, self._ready, mask)
            now = time.monotonic()
            for board in self.boards:
                self._guarded(board, self._service, now)
            if hook is not None:
                hook_at = hook(now)
        self._running = False
        for board in self.boards:
            board.outcome.report.count(Counters(), board.state.counters)
        return [b.outcome for b in self.boards]

    # -- one board ------------------------------------------------------------------------

    def _guarded(self, board: _Served, step: Callable, arg: object) -> None:
        """`step(board, arg)`; a campaign that gives up on a board not to be restarted
        (a run resent past reason while the board kept answering) ends that board."""
        try:
            step(board, arg)
        except CampaignError as error:
            if board.job.restart:
                raise
            self._watch(board, None)
            self._died(board, str(error))

    def _begin(self, board: _Served, now: float) -> None:
        """The board is up for the first time: its campaign starts."""
        board.started = True
        self._watch(board, board.link.fileno())
        self._act(board, board.state.start(now))
        self._service(board, now)  # its first items, before the first wait

    def _ready(self, board: _Served, mask: int) -> None:
        now = time.monotonic()
        if board.phase == _Phase.BOOTING:
            self._boot_bytes(board, now, readable=True)
            return
        if board.phase != _Phase.SERVING:
            return
        if mask & selectors.EVENT_WRITE:
            board.link.flush()
            self._watch(board, board.fd, write=board.link.wants_write)
        if mask & selectors.EVENT_READ:
            data = board.link.receive()
            if data:
                self._act(board, board.state.feed(data, now))
            else:  # readable and empty: the line closed, QEMU is gone
                self._watch(board, None)
                self._act(board, board.state.board_stopped(LINE_CLOSED, now))

    def _service(self, board: _Served, now: float) -> None:
        """What is due without a byte arriving: items to hand over, deadlines, boots."""
        if board.phase == _Phase.SERVING:
            drew = board.source.draw(board.state)
            if (drew and board.state.has_room) or (board.deadline is not None
                                                    and now >= board.deadline):
                self._act(board, board.state.tick(now))
        elif board.phase == _Phase.SPAWNING:
            assert board.spawned is not None
            if board.spawned.done():
                self._spawned(board, board.spawned, now)
        elif board.phase == _Phase.BOOTING:
            assert board.boot is not None
            if now > board.boot.deadline:
                self._set_aside(board, board.boot.silence())

    def _act(self, board: _Served, out: Output) -> None:
        """Do what the state asks, until it asks nothing more of the loop."""
        link, state, job = board.link, board.state, board.job
        while True:
            for data in out.send:
                link.send(data)
            board.outcome.report.take(out, job.on_batch, job.on_quarantine)
            if isinstance(board.source, Intake) and (out.batches or out.quarantined):
                for done in board.source.answered(out):
                    if job.on_work is not None:
                        job.on_work(done)
            if out.restart is not None:
                if job.restart:
                    self._begin_restart(board)
                else:
                    self._died(board, out.restart)
                return
            if not out.check_board:
                break
            out = state.board_stopped(link.stopped(), time.monotonic())
        board.deadline = out.deadline
        link.flush()
        if out.done:
            self._finish(board, "done")
        else:
            self._watch(board, link.fileno(), write=link.wants_write)

    def _finish(self, board: _Served, why: str) -> None:
        board.phase = _Phase.FINISHED
        self._watch(board, None)
        if board.job.on_end is not None:
            board.job.on_end(why)

    def _died(self, board: _Served, why: str) -> None:
        """A board not to be restarted died: it stays dead, and says so."""
        board.link.close()
        board.outcome.died = why
        self._finish(board, why)

    # -- boots and restarts ----------------------------------------------------------------

    def _begin_restart(self, board: _Served) -> None:
        self._watch(board, None)
        board.phase = _Phase.SPAWNING
        board.spawned = self.pool.submit(_restart, board.link)

    def _spawned(self, board: _Served, spawned: Future[BootReader], now: float) -> None:
        board.spawned = None
        try:
            board.boot = spawned.result()
        except (BootError, BoardError) as error:
            self._set_aside(board, error)
            return
        board.phase = _Phase.BOOTING
        self._watch(board, board.link.boot_fileno())
        self._boot_bytes(board, now, readable=False)  # what arrived before the line was watched

    def _boot_bytes(self, board: _Served, now: float, *, readable: bool) -> None:
        """Feed the boot what the serial port holds; `readable`: the selector said it
        holds something (so nothing at all means the line closed)."""
        boot, link = board.boot, board.link
        assert boot is not None and link.machine is not None
        data = link.boot_receive()
        boot.feed(data, now)
        if boot.reached_final:
            self._watch(board, None)
            try:
                link.finish_boot()
            except BootError as error:
                self._set_aside(board, error)
                return
            board.boot, board.phase = None, _Phase.SERVING
            if board.job.on_up is not None:
                board.job.on_up(link)
                # (it may have taken a while -- the motherboard vets the board's forms --
                # and a campaign started with an old time would count that as silence)
                now = time.monotonic()
            if board.started:
                self._act(board, board.state.restarted(now))
            else:
                self._begin(board, now)
        elif not data and (readable or not link.machine.running):  # QEMU left before FINAL
            self._watch(board, None)
            try:
                boot.run.exit_status = link.machine.wait_exit(EXIT_TIMEOUT)
                failure = boot.failure()
            except QemuError as error:
                failure = boot.failure(error)
            assert failure is not None  # no FINAL: always a failure
            self._set_aside(board, failure)

    def _set_aside(self, board: _Served, error: BootError | BoardError) -> None:
        board.link.close()
        board.outcome.error = error
        self._finish(board, str(error).splitlines()[0] if str(error) else type(error).__name__)

    # -- the selector -----------------------------------------------------------------------

    def _watch(self, board: _Served, fd: int | None, *, write: bool = False) -> None:
        """Watch `fd` for `board` (reading, and writing when `write`), or nothing (None)."""
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if write else 0)
        if board.fd is not None and board.fd != fd:
            self.selector.unregister(board.fd)
            board.fd = None
        if fd is None:
            return
        if board.fd is None:
            self.selector.register(fd, events, board)
            board.fd = fd
        elif self.selector.get_key(fd).events != events:
            self.selector.modify(fd, events, board)

    def _timeout(self, hook_at: float | None) -> float:
        now = time.monotonic()
        waits = [self.policy.poll_interval]
        if hook_at is not None:
            waits.append(hook_at - now)
        for board in self.boards:
            if board.phase == _Phase.SERVING and board.deadline is not None:
                waits.append(board.deadline - now)
            elif board.phase == _Phase.SPAWNING:
                waits.append(SPAWN_POLL)
            elif board.phase == _Phase.BOOTING and board.boot is not None:
                waits.append(board.boot.deadline - now)
        return max(0.0, min(waits))
