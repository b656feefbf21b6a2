"""One loop, one thread, many boards: a probing campaign on each, side by side.

Each board is a QemuLink with its own CampaignState (probes/campaign_state.py).
The loop selects on every board's probe line, feeds each state what its board
sent, writes what the state hands back and keeps each state's deadline, so the
boards go at their own pace and none waits for another.

A board that dies (its QEMU exits: the line closes) or stops answering is
restarted without stalling the others.  The slow part of a restart that cannot
be fed from a selector -- ending the old QEMU and starting the new one, which
waits until QEMU has taken its command line -- runs in a worker thread; the boot
to FINAL is the sans-IO BootReader (link/boot.py), fed from the same selector; then
the board's campaign reruns its suspects as it always does.  A board whose
restart fails is set aside with its BootError; the others go on.

Items are drawn from each board's iterable whenever its campaign wants more, in
the loop's thread: they must not block (pre-vetted lists, or queues another
thread fills), or every board waits.  Asking QEMU whether a silent board is gone
(QMP, at most 0.1 s) is the one short wait left in the loop.
"""

from __future__ import annotations

import selectors
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum

from link.boot import EXIT_TIMEOUT, BootError, BootReader
from link.qemu_link import QemuLink
from probes.campaign import CampaignReport, draw
from probes.campaign_state import CampaignResult, CampaignState, Counters, Item, Output, Policy
from probes.probe import Probe
from qemu.errors import QemuError

SPAWN_POLL = 0.01  # seconds between looks at a QEMU being started in the worker thread
LINE_CLOSED = "QEMU exited"  # why a board whose line closed is restarted


@dataclass
class BoardJob:
    """One board's part: its link (booted), what to run on it, where results go."""

    link: QemuLink
    items: Iterable[Item]
    on_batch: Callable[[list[CampaignResult]], None] | None = None
    on_quarantine: Callable[[Probe, str], None] | None = None


@dataclass
class BoardOutcome:
    """What one board did: its report, and the error that set it aside, if any."""

    report: CampaignReport = field(default_factory=CampaignReport)
    error: BootError | None = None


class _Phase(Enum):
    SERVING = "serving"  # the campaign runs on the probe line
    SPAWNING = "spawning"  # the worker thread ends the old QEMU and starts a new one
    BOOTING = "booting"  # the new boot is fed from the selector until FINAL
    FINISHED = "finished"  # every item done, or set aside after a failed restart


@dataclass(eq=False)
class _Served:
    job: BoardJob
    state: CampaignState
    source: Iterator[Item]
    outcome: BoardOutcome = field(default_factory=BoardOutcome)
    phase: _Phase = _Phase.SERVING
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
    return _BoardLoop(jobs, policy or Policy()).run()


def _restart(link: QemuLink) -> BootReader:
    """The worker thread's part of a restart: end the old QEMU, start the new one."""
    link.kill()
    return link.spawn()


class _BoardLoop:
    def __init__(self, jobs: list[BoardJob], policy: Policy) -> None:
        self.policy = policy
        self.boards = [_Served(job, CampaignState(policy), iter(job.items)) for job in jobs]
        self.selector = selectors.DefaultSelector()
        self.pool = ThreadPoolExecutor(max_workers=max(1, len(jobs)), thread_name_prefix="restart")

    def run(self) -> list[BoardOutcome]:
        try:
            now = time.monotonic()
            for board in self.boards:
                self._watch(board, board.link.fileno())
                self._act(board, board.state.start(now))
                self._service(board, now)  # its first items, before the first wait
            while any(b.phase != _Phase.FINISHED for b in self.boards):
                for key, mask in self.selector.select(self._timeout()):
                    self._ready(key.data, mask)
                now = time.monotonic()
                for board in self.boards:
                    self._service(board, now)
        finally:
            self.pool.shutdown(wait=True)
            self.selector.close()
        for board in self.boards:
            board.outcome.report.count(Counters(), board.state.counters)
        return [b.outcome for b in self.boards]

    # -- one board ------------------------------------------------------------------------

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
        """What is due without a byte arriving: items to hand over, deadlines, restarts."""
        if board.phase == _Phase.SERVING:
            drew = draw(board.state, board.source)
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
        link, state, outcome = board.link, board.state, board.outcome
        while True:
            for data in out.send:
                link.send(data)
            outcome.report.take(out, board.job.on_batch, board.job.on_quarantine)
            if out.restart is not None:
                self._begin_restart(board)
                return
            if not out.check_board:
                break
            out = state.board_stopped(link.stopped(), time.monotonic())
        board.deadline = out.deadline
        link.flush()
        if out.done:
            board.phase = _Phase.FINISHED
            self._watch(board, None)
        else:
            self._watch(board, link.fileno(), write=link.wants_write)

    # -- restarts -------------------------------------------------------------------------

    def _begin_restart(self, board: _Served) -> None:
        self._watch(board, None)
        board.phase = _Phase.SPAWNING
        board.spawned = self.pool.submit(_restart, board.link)

    def _spawned(self, board: _Served, spawned: Future[BootReader], now: float) -> None:
        board.spawned = None
        try:
            board.boot = spawned.result()
        except BootError as error:
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
            self._act(board, board.state.restarted(now))
        elif not data and (readable or not link.machine.running):  # QEMU left before FINAL
            self._watch(board, None)
            try:
                boot.run.exit_status = link.machine.wait_exit(EXIT_TIMEOUT)
                failure = boot.failure()
            except QemuError as error:
                failure = boot.failure(error)
            assert failure is not None  # no FINAL: always a failure
            self._set_aside(board, failure)

    def _set_aside(self, board: _Served, error: BootError) -> None:
        self._watch(board, None)
        board.link.close()
        board.outcome.error = error
        board.phase = _Phase.FINISHED

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

    def _timeout(self) -> float:
        now = time.monotonic()
        waits = [self.policy.poll_interval]
        for board in self.boards:
            if board.phase == _Phase.SERVING and board.deadline is not None:
                waits.append(board.deadline - now)
            elif board.phase == _Phase.SPAWNING:
                waits.append(SPAWN_POLL)
            elif board.phase == _Phase.BOOTING and board.boot is not None:
                waits.append(board.boot.deadline - now)
        return max(0.0, min(waits))
