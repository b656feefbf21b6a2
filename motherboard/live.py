"""Live QEMU boards behind the motherboard's messages.

`parse_boards` reads a spec string such as `q35:qemu64,q35:Haswell,q35-kvm:host,
virt:rv64,virt:rv64-nozb`: a board profile (qemu/boards.py), `-kvm` to run it under
KVM (skipped, with the reason, where /dev/kvm cannot run it or runs it slower than
TCG would), and a QEMU CPU model
or one of CPU_ALIASES.  Boards without `-kvm` run under TCG.

Every live board is served by one process, the board host (board_host.py): one
loop holding every board's link and agent.  Nothing is shared with the motherboard
but the messages (messages.py), down one pipe addressed to a board and back on one
queue, so a board could as well be a Ray actor on another machine, and the
motherboard's work does not slow the boards' Python down.  A killed board (its QEMU
SIGKILLed: `LiveBoard.kill()`) is not restarted: the host tells the motherboard it
died at once (what a transport such as Ray reports when an actor dies).

The loop (`run_live`) drives a Motherboard from one thread: it delivers what boards
say, submits the workload's tasks as they arrive, ticks the motherboard's deadlines,
and can kill a board, make it leave, or start a new one at given times.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import itertools
import multiprocessing
import os
import queue
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from arch import Arch
from kernel.guest import Guest
from motherboard.board_host import (
    SWITCH_INTERVAL,
    Code,
    HostedBoard,
    Leave,
    QemuPid,
    host_main,
)
from motherboard.entries import BoardStatus
from motherboard.implementations import lowered_code, stored_code
from motherboard.live_schedules import EXECUTE_ROUNDS, Reach, execute, list_schedules, profile
from motherboard.market import MarketConfig, Motherboard
from motherboard.messages import BoardMessage, Exit, Onboard
from motherboard.oracle import run_check
from motherboard.routines import RoutineBook
from motherboard.workload import TaskSpec, Workload
from qemu.boards import Board, board, kvm_problem, kvm_slower_than_tcg, unknown_cpu_model
from qemu.errors import BoardError
from sem.store import SemStore

CPU_ALIASES = {
    # QEMU's rv64 has the bit-manipulation extensions on by default (7.x)
    "rv64-nozb": "rv64,zba=false,zbb=false,zbc=false,zbs=false",
}
KILL_BUSY_WAIT = 30.0  # seconds a "kill-busy" plan waits for its board to hold a task
# A "kill-busy" plan's board: whichever honest board holds the most tasks, once one does
# (a named board may win nothing: with bids that know the boards, the slowest here won
# no task of bench A's stream after its third second in one run)
BUSIEST_HONEST = "busiest-honest"


class BoardSpecError(ValueError):
    """A board spec that names no board this host can start."""


@dataclass(frozen=True)
class BoardChoice:
    spec: str  # as written, e.g. "q35-kvm:host"
    board: Board | None  # None: skipped
    skipped: str = ""  # why


def parse_boards(text: str) -> list[BoardChoice]:
    """Board specs, comma-separated: PROFILE[-kvm]:CPU."""
    out = []
    for spec in (s.strip() for s in text.split(",")):
        if not spec:
            continue
        profile, _, cpu = spec.partition(":")
        kvm = profile.endswith("-kvm")
        profile = profile.removesuffix("-kvm")
        try:
            problem = _kvm_unfit(board(profile)) if kvm else ""
            chosen = None if problem else board(profile, cpu=CPU_ALIASES.get(cpu, cpu) or None,
                                                accel="kvm" if kvm else "tcg")
        except BoardError as error:
            raise BoardSpecError(f"board spec {spec!r}: {error}") from None
        out.append(BoardChoice(spec, chosen, problem))
    if not out:
        raise BoardSpecError("no boards given: e.g. --boards q35:qemu64,virt:rv64")
    return out


def check_models(choices: Sequence[BoardChoice]) -> None:
    """Refuse a spec whose CPU model QEMU does not list (`-cpu help`, a QEMU process per
    binary), so that a mistyped model is found before any board boots rather than as
    that board failing to onboard."""
    for choice in choices:
        if choice.board is not None and (unknown := unknown_cpu_model(choice.board)):
            raise BoardSpecError(f"board spec {choice.spec!r}: {unknown}")


def _kvm_unfit(chosen: Board) -> str:
    """Why a KVM board would not serve here, or "".  Where KVM runs our guests slower than
    TCG (`--accel auto` picks TCG there too), a KVM board is skipped: measured on this
    project's nested kvm_pvm host, which emulates the guest kernel's ring-0 code (the
    probe line's frames are encoded and decoded there, byte by byte), a batch task took
    430 µs a vector under KVM against 1-3 µs under TCG, so a graph's calibration at its
    own sizes (20,000-50,000 vectors, ten runs a routine) would take the board about an
    hour, and `./run motherboard`'s stream of 200 tasks on four TCG boards took 16.8 s
    with it beside them, 9.7 s without (84 s and 26 s in all)."""
    problem = kvm_problem(chosen.arch)
    if problem:
        return problem
    slow = kvm_slower_than_tcg(chosen.arch)
    return f"KVM here runs a board slower than TCG: {slow}" if slow else ""


def identities(choices: Sequence[BoardChoice]) -> list[str]:
    """A name per board: its spec, numbered when a spec appears more than once."""
    seen: dict[str, int] = {}
    names = []
    for c in choices:
        seen[c.spec] = seen.get(c.spec, 0) + 1
        names.append(c.spec if [x.spec for x in choices].count(c.spec) == 1
                     else f"{c.spec}#{seen[c.spec]}")
    return names


# -- the boards' handles ---------------------------------------------------------------------

# Bytes the board host's command pipe holds.  A graph task's inputs go down it in one
# message (50,000 vectors of two 8-byte inputs: 800 KB), and with the kernel's 64 KiB the
# loop's send waited, a pipeful at a time, for the board host to read it, while the host
# was busy with the boards' lines on this shared host: in bench B's graph-long the loop sat
# in these sends 93-172 ms of each 0.46-0.72 s run of the graph (no result taken, no
# bid, no other task's inputs sent meanwhile), and 15-27 ms with 1 MiB (one run each).
PIPE_BYTES = 1 << 20


def roomy(connection) -> None:
    """Let the pipe under `connection` hold PIPE_BYTES (Linux's F_SETPIPE_SZ), so that a
    message up to that size is sent without waiting for the reader; where the kernel
    refuses (a pipe-max-size below it, for a user without CAP_SYS_RESOURCE), the pipe
    stays as it was and sends wait as before."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(connection.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


class BoardHostHandle:
    """The loop's side of the board host (board_host.py): one process serving every live
    board from one loop.  Messages to boards go down one pipe, addressed to a board
    (roomy: the loop does not wait for the host to read a task's inputs); what boards say
    comes back on the loop's outbox."""

    def __init__(self, guests: dict[Arch, Guest], book: RoutineBook, code: Code, outbox,
                 context, boards: list[HostedBoard]) -> None:
        self._receive, self._send = context.Pipe(duplex=False)
        roomy(self._send)
        self.process = context.Process(
            target=host_main, name="board host", daemon=True,
            args=(guests, book, code, self._receive, outbox, boards))

    def start(self) -> None:
        self.process.start()
        self._receive.close()  # the host's end

    def send(self, board: str, message: object) -> None:
        try:
            self._send.send((board, message))
        except (BrokenPipeError, OSError):
            pass  # the host is gone: check_processes says so to the motherboard

    def stop(self, timeout: float = 10.0) -> None:
        try:
            self._send.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
        self._send.close()


class LiveBoard:
    """The loop's handle on one live board, served by the board host: its messages are
    addressed to it down the host's pipe, and nothing else is shared (a Ray actor would
    take its place)."""

    def __init__(self, name: str, host: BoardHostHandle, *, liar: str | None = None) -> None:
        self.name, self.host, self.liar_kind = name, host, liar
        self.qemu_pid: int | None = None
        self.exited = False  # it said Exit (or the loop said it for it)

    def tell(self, message: object) -> None:
        self.host.send(self.name, message)

    def kill(self) -> bool:
        """SIGKILL the board's QEMU; False when it is not running."""
        if self.qemu_pid is None:
            return False
        try:
            os.kill(self.qemu_pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def leave(self) -> None:
        self.tell(Leave())


# -- the loop ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """Something to do to a board during a run, at `at` seconds after the start."""

    at: float
    # "kill"; "kill-busy": kill it once it holds a task, from `at` on (at most
    # KILL_BUSY_WAIT seconds later), so that something is rerouted; "leave"; "join"
    action: str
    board: str  # the board's name (for join: a spec, started then; BUSIEST_HONEST)


@dataclass
class LiveRun:
    motherboard: Motherboard
    boards: dict[str, LiveBoard]  # by name: the handles on the board processes
    skipped: list[BoardChoice]
    start: float  # monotonic time the workload started (all times are relative to it)
    onboarded: float  # seconds from launching the boards to the last initial Onboard
    kills: dict[str, float] = field(default_factory=dict)  # board -> when killed (relative)
    liars: dict[str, str] = field(default_factory=dict)  # every liar identity -> its kind
    failed: dict[str, str] = field(default_factory=dict)  # boards that never onboarded -> why
    timed_out: bool = False
    interrupted: bool = False  # ended by Ctrl-C (SIGINT)
    # why the run ended with tasks outstanding before its timeout: no board was left to
    # run them, and none was to join
    stranded: str = ""
    profile: dict[str, dict[str, float]] = field(default_factory=dict)  # task -> board -> s
    # list scheduler -> the first round's graph run live as it schedules it on the profile
    # (seconds from the first award to the last result; None: a board left meanwhile)
    executed: dict[str, float | None] = field(default_factory=dict)  # median of EXECUTE_ROUNDS
    executed_runs: dict[str, list[float | None]] = field(default_factory=dict)  # each run's
    # task -> board -> every profiling run's seconds (`profile` holds their medians)
    profile_runs: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    between: list[float] = field(default_factory=list)  # when each turn of the list schedules began
    rounds: list[list[str]] = field(default_factory=list)  # the workload's task ids, per round


def prepare_code(book: RoutineBook, routines: Sequence[str], arches: set[Arch],
                 store: SemStore | None = None) -> Code:
    """The routines lowered (and vetted) for each architecture, once, and the proven
    implementations the semantic store holds for them."""
    return Code({(rid, arch): lowered_code(book.routine(rid), rid, arch, store)
                 for rid in routines for arch in arches},
                {(rid, arch): stored_code(store, rid, arch)
                 for rid in routines for arch in arches})




def _switching_threads_fast(run: Callable[..., LiveRun]) -> Callable[..., LiveRun]:
    """Run with Python's threads switching every SWITCH_INTERVAL (the default is 5 ms):
    every message the loop sends waits for a queue's feeder thread, and every message
    it receives for the receiver thread, while the loop's own thread holds the GIL."""
    @functools.wraps(run)
    def switching(*args, **kwargs) -> LiveRun:
        interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            return run(*args, **kwargs)
        finally:
            sys.setswitchinterval(interval)

    return switching


@_switching_threads_fast
def run_live(choices: Sequence[BoardChoice], workload: Workload, *,
             config: MarketConfig | None = None, book: RoutineBook | None = None,
             liars: int = 0, plans: Sequence[Plan] = (),
             declines: dict[str, tuple[str, ...]] | None = None,
             timeout: float = 600.0, store: SemStore | None = None, seed: int = 0,
             profile: bool = False,
             warm_up: bool = True, rounds: int = 1,
             on_update: Callable[[LiveRun, float], None] | None = None,
             update_every: float = 0.25) -> LiveRun:
    """Boot the boards, onboard them, run the workload, return what happened.  With
    `rounds` above 1 the workload runs again, on the same boards, each time the last
    run is done (its task ids prefixed "2/", "3/", ...: the same tasks, the same
    inputs).  With `profile`, every task of the first round is run, once that round
    is done, PROFILE_ROUNDS times more on every board still there (the same inputs),
    each board working through them in turn, so HEFT and the other list schedulers can
    be given the measured time of every task on every board; then, after each of the
    motherboard's rounds, the first round's tasks run once more as each of them
    schedules them on that table (after the last round until each has run
    EXECUTE_ROUNDS times; `executed`: the medians), on the same boards, so their
    makespans are measured as the motherboard's is, taking turns with it.
    With `warm_up` the workload starts once the first boards have calibrated, each with
    the others busy (MarketConfig.calibrate_under_load: they share this host).  Ctrl-C
    ends the run where it is (`interrupted`).  The board host, the checkers and the
    receiver are stopped however the run ends."""
    book = book or RoutineBook.library()
    # the boards share this host's cores: each calibrates with the others busy
    config = replace(config or MarketConfig(), calibrate_under_load=True)
    usable = [c for c in choices if c.board is not None]
    if not usable:
        raise BoardSpecError("no board can start here: " + "; ".join(
            f"{c.spec}: {c.skipped}" for c in choices))
    declines = named_declines(usable, plans, declines or {}, book)
    runs = [_round(workload.tasks, k) for k in range(1, rounds + 1)]
    session = _LiveSession(choices, workload, book, config, liars, plans, declines,
                           store, seed, timeout, on_update, update_every)
    try:
        for specs in runs:
            session.mb.prepare(specs)  # while the boards boot
        session.onboard(warm_up)
        session.serve(runs, plans, profile)
    except KeyboardInterrupt:  # Ctrl-C ends the run as a timeout would: what it did is kept
        session.run.interrupted = True
    finally:
        session.close()
    return session.run


def named_declines(usable: Sequence[BoardChoice], plans: Sequence[Plan],
                    declines: dict[str, tuple[str, ...]],
                    book: RoutineBook) -> dict[str, tuple[str, ...]]:
    """The declines with their routines as IDs, once every board a plan or a decline
    names is one of the run's (BoardSpecError) and every routine is known
    (UnknownRoutineName): found before a board boots, not as a plan that never comes
    due or as the board host failing on its first board."""
    names = identities(usable)
    joining = [f"{p.board}@{p.at:g}s" for p in plans if p.action == "join"]
    for plan in plans:
        if plan.action != "join" and plan.board != BUSIEST_HONEST and \
                plan.board not in names + joining:
            raise BoardSpecError(f"--{plan.action} {plan.board}@{plan.at:g}: no board"
                                 f" {plan.board!r} in this run; its boards are "
                                 + ", ".join(names + joining))
    for name, routines in declines.items():
        if name not in names:
            raise BoardSpecError(f"--decline {name}={'+'.join(routines)}: no board"
                                 f" {name!r} in this run; its boards are " + ", ".join(names))
    return {name: tuple(book.resolve(r) for r in routines)
            for name, routines in declines.items()}


class _LiveSession:
    """One live run's machinery and its loop's steps: the motherboard, the board host and
    the boards' handles, the oracle's checkers, and the receiver thread stamping what
    comes back.  Everything is started in __init__ (the processes forked before any
    thread starts) and stopped in `close`."""

    def __init__(self, choices: Sequence[BoardChoice], workload: Workload, book: RoutineBook,
                 config: MarketConfig, liars: int, plans: Sequence[Plan],
                 declines: dict[str, tuple[str, ...]], store: SemStore | None, seed: int,
                 timeout: float, on_update: Callable[[LiveRun, float], None] | None,
                 update_every: float) -> None:
        from kernel.guest import build_guest
        from motherboard.adversary import liar_kinds

        usable = [c for c in choices if c.board is not None]
        names = identities(usable)
        arches = {c.board.arch for c in usable}
        arches |= {parse_boards(p.board)[0].board.arch for p in plans if p.action == "join"
                   and parse_boards(p.board)[0].board is not None}
        guests = {arch: build_guest(arch) for arch in arches}
        mix = [book.resolve(r) for r in workload.routines()]
        code = prepare_code(book, mix, arches, store)
        self.config, self.seed, self.timeout = config, seed, timeout
        self.on_update, self.update_every = on_update, update_every
        self.mb = Motherboard(book, mix, config, check_inline=False)
        # fork: the board host starts from this process as it is (the code prepared, the
        # guests built); it is then a process of its own, serving every board from one loop
        context = multiprocessing.get_context("fork")
        self.outbox = context.Queue()
        kinds = liar_kinds(liars)
        # the liars are the last boards given, so a spec lists the honest ones first
        liar_of = {name: kinds[i] for i, name in enumerate(reversed(names[len(names) - liars:]))}
        hosted = [HostedBoard(name, choice.spec, choice.board, liar_of.get(name),
                              seed * 1000 + i, declines.get(name, ()),
                              config.calibration_samples)
                  for i, (name, choice) in enumerate(zip(names, usable, strict=True))]
        self.host = BoardHostHandle(guests, book, code, self.outbox, context, hosted)
        self.boards = {h.name: LiveBoard(h.name, self.host, liar=h.liar) for h in hosted}
        self.joined = itertools.count(len(self.boards))  # seeds of boards joining later
        self.launched = time.monotonic()
        self.run = LiveRun(self.mb, self.boards, [c for c in choices if c.board is None],
                           self.launched, 0.0)
        self.route: dict[str, str] = {}  # identity -> the LiveBoard speaking for it
        self.chosen: dict[tuple[str, str], str] = {}  # (task, board) -> its implementation
        self.schedules: dict[str, dict[str, list[str]]] = {}  # list scheduler -> schedule
        self.offset = 0.0  # the motherboard's clock runs from the launch; the workload's
        # from the end of onboarding
        # The oracle's checks run in processes of their own, so the loop goes on meanwhile
        # (two checks at once on two cores); verdicts come back on the outbox.  Like the
        # boards they are forked before this process starts any thread.
        self.checks = context.Queue()
        self.checkers = [context.Process(target=_checker_main, args=(self.checks, self.outbox),
                                         daemon=True, name=f"checker {i}")
                         for i in range(CHECKERS)]
        for process in self.checkers:
            process.start()
        self.host.start()
        # What boards say is stamped when it arrives, by a thread of its own: the loop may
        # be busy checking an answer with the interpreter meanwhile, and that must not
        # count against the boards whose results wait (a network stack would stamp them
        # the same).
        self.arrived: queue.Queue = queue.Queue()
        self.receiver = threading.Thread(target=self._receive, name="receiver", daemon=True)
        self.receiver.start()

    def _receive(self) -> None:
        while (item := self.outbox.get()) is not None:
            self.arrived.put((time.monotonic() - self.launched, *item))

    def now(self) -> float:
        return time.monotonic() - self.launched

    def close(self) -> None:
        # The run is over, and with it the checks still queued (a timeout, Ctrl-C): taken
        # back so that the checkers see their stop at once, and never waited for at exit,
        # where a queue's feeder thread is joined and would block for good on a pipe no
        # checker reads any more.
        with contextlib.suppress(queue.Empty):
            while True:
                self.checks.get(timeout=0.1)
        self.checks.cancel_join_thread()
        for process in self.checkers:
            self.checks.put(None)
            # back from SCHED_IDLE, which on a host kept busy (another run, a compile)
            # gives them no CPU to stop with: they lingered past their 5 s, in the suite
            with contextlib.suppress(OSError):
                os.sched_setscheduler(process.pid, os.SCHED_OTHER, os.sched_param(0))
        self.host.stop()
        for process in self.checkers:
            process.join(5.0)
            if process.is_alive():
                process.kill()
                # it may have died holding the outbox's lock: do not wait on it at exit
                self.outbox.cancel_join_thread()
        self.outbox.put(None)
        self.receiver.join(5.0)

    # -- messages ---------------------------------------------------------------------------

    def deliver(self, envelopes) -> None:
        for env in envelopes:
            self.tell(env.to, env.message)
        for request in self.mb.take_checks():
            self.checks.put(request)

    def tell(self, board: str, message: object) -> None:
        """Send to the board of this identity (the LiveBoard speaking for it), if there is
        one."""
        target = self.boards.get(self.route.get(board, ""))
        if target is not None:
            target.tell(message)

    def take(self, sender: str, message: BoardMessage | QemuPid, now: float) -> None:
        mb, boards = self.mb, self.boards
        if sender == ORACLE:
            task, check = message
            self.deliver(mb.checked(task, check, now))
            return
        if isinstance(message, QemuPid):
            boards[sender].qemu_pid = message.pid
            return
        if isinstance(message, Onboard):
            self.route[message.report.board] = sender
            boards[sender].exited = False
            if boards[sender].liar_kind is not None:
                self.run.liars[message.report.board] = boards[sender].liar_kind
        if isinstance(message, Exit) and message.board not in mb.boards:
            self.run.failed[sender] = message.reason
            boards[sender].exited = True
            return
        if isinstance(message, Exit) and message.board == self._speaking_as(sender):
            boards[sender].exited = True
        self.deliver(mb.handle(message, now))

    def _speaking_as(self, sender: str) -> str:
        mb = self.mb
        return max((i for i, s in self.route.items() if s == sender), default=sender,
                   key=lambda i: mb.boards[i].joined if i in mb.boards else -1.0)

    def drain(self) -> None:
        """What came meanwhile, in the order it came: a bid that arrived in time (stamped
        before the auction's deadline) while the loop was busy counts."""
        while True:
            try:
                stamp, sender, message = self.arrived.get_nowait()
            except queue.Empty:
                return
            self.take(sender, message, stamp)

    def check_processes(self, now: float) -> None:
        """Boards whose host died without a word are gone (what a transport reports)."""
        code = self.host.process.exitcode
        if code is None:
            return
        for name, b in self.boards.items():
            if not b.exited:
                b.exited = True
                b.kill()
                self.take(name, Exit(self._speaking_as(name), False,
                                     f"its host process ended (exit code {code})"), now)

    def update(self, now: float) -> None:
        if self.on_update is not None:
            self.on_update(self.run, now)

    # -- the run ----------------------------------------------------------------------------

    def onboard(self, warm_up: bool) -> None:
        """Every initial board boots, reports (or fails) and, with `warm_up`, calibrates,
        before the workload's clock starts."""
        mb, waiting = self.mb, set(self.boards)
        while (waiting or (warm_up and any(mb.calibrating(b) for b in mb.boards))) and \
                self.now() < self.timeout:
            try:
                stamp, sender, message = self.arrived.get(timeout=0.1)
            except queue.Empty:
                self.deliver(mb.tick(self.now()))
                continue
            self.take(sender, message, stamp)
            if isinstance(message, Onboard | Exit):
                waiting.discard(sender)
            self.update(self.now())
        self.run.onboarded = self.offset = self.now()
        self.run.start = time.monotonic()

    def list_schedules_live(self, last: bool) -> None:
        """After each of the motherboard's rounds: the profile once (after the first, whose
        answers are the later tasks' inputs), then each list scheduler's schedule run live
        once (after the last round, until each has run EXECUTE_ROUNDS times), so that the
        list schedules and the motherboard take turns on the host: on this shared host
        the load changes from minute to minute (measured: runs of the same task on the
        same board, minutes apart, differed by 1.3-1.6x)."""
        run, mb = self.run, self.mb
        first = [mb.tasks[t] for t in run.rounds[0]]
        reach = Reach(self.tell, self.arrived, self.take,
                      lambda b: b in mb.boards and mb.boards[b].status == BoardStatus.ACTIVE,
                      self.now, self.timeout)
        if not run.profile:
            active = [b for b in mb.boards if reach.alive(b)]
            run.profile, run.profile_runs, found = profile(first, active, reach)
            self.chosen.update(found)
            self.schedules.update(list_schedules(first, run.profile, self.seed))
        run.between.append(self.now())
        while True:
            k = len(next(iter(run.executed_runs.values()), []))
            names = list(self.schedules)  # a different one first each time after the motherboard
            for name in names[k % len(names):] + names[:k % len(names)] if names else ():
                run.executed_runs.setdefault(name, []).append(execute(
                    f"{name}/{k}", self.schedules[name], first, self.chosen, reach).makespan)
            if not names or not last or k + 1 >= EXECUTE_ROUNDS:
                return

    def carry_out(self, plan: Plan, now: float) -> None:
        """A plan come due: kill a board, make it leave, or start a new one."""
        boards = self.boards
        if plan.action in ("kill", "kill-busy") and plan.board in boards and \
                boards[plan.board].kill():
            self.run.kills[plan.board] = now
        elif plan.action == "leave" and plan.board in boards:
            boards[plan.board].leave()
        elif plan.action == "join":
            (choice,) = parse_boards(plan.board)
            if choice.board is not None:
                name = f"{choice.spec}@{plan.at:g}s"
                boards[name] = LiveBoard(name, self.host)
                self.host.send(name, HostedBoard(name, choice.spec, choice.board,
                                                 seed=self.seed * 1000 + next(self.joined),
                                                 explore=self.config.calibration_samples))

    def serve(self, runs: list[list[TaskSpec]], plans: Sequence[Plan], profile: bool) -> None:
        """The workload's rounds: tasks submitted as they arrive, plans carried out as they
        come due, the motherboard's deadlines ticked, and what boards say delivered, until
        every round is done (and, with `profile`, the list schedules have run after each),
        the timeout passes, or no board is left."""
        mb, run, boards, offset = self.mb, self.run, self.boards, self.offset
        arrivals = sorted(runs[0], key=lambda t: t.arrival)
        run.rounds = [[t.id for t in runs[0]]]
        todo = sorted(plans, key=lambda p: p.at)
        next_task, next_plan, last_update = 0, 0, 0.0
        boardless_since: float | None = None  # when the last board left (none to join)
        while True:
            now = self.now()
            rel = now - offset
            due = []
            while next_task < len(arrivals) and arrivals[next_task].arrival <= rel:
                due.append(arrivals[next_task])
                next_task += 1
            if due:  # together: the ready ones are announced together (a graph's roots)
                self.deliver(mb.submit_many(due, now))
            while next_plan < len(todo) and todo[next_plan].at <= rel:
                plan = todo[next_plan]
                if plan.board == BUSIEST_HONEST:
                    plan = replace(plan, board=_busiest_honest(mb, run.liars))
                if plan.action == "kill-busy" and plan.board in mb.boards and \
                        not mb.boards[plan.board].inflight and rel < plan.at + KILL_BUSY_WAIT:
                    break  # not yet: it holds no task (the plans after it wait too)
                next_plan += 1
                self.carry_out(plan, now)
            deadline = mb.deadline()
            if deadline is not None and deadline <= now:
                self.drain()
                self.deliver(mb.tick(self.now()))
            self.check_processes(now)
            if now - last_update >= self.update_every:
                self.update(now)
                last_update = now
            if next_task == len(arrivals) and mb.done and profile and \
                    len(run.between) < len(run.rounds):
                self.list_schedules_live(last=len(run.rounds) == len(runs))
                continue  # the clock has moved on: the next round's arrivals count from now
            if next_task == len(arrivals) and mb.done and len(run.rounds) < len(runs):
                again = runs[len(run.rounds)]  # the next round, its clock from now
                arrivals += sorted((replace(t, arrival=t.arrival + rel) for t in again),
                                   key=lambda t: t.arrival)
                run.rounds.append([t.id for t in again])
                continue
            if next_task == len(arrivals) and mb.done:
                break
            if rel > self.timeout:
                run.timed_out = True
                break
            if any(not b.exited for b in boards.values()) or \
                    any(p.action == "join" for p in todo[next_plan:]):
                boardless_since = None
            elif not mb.boards:
                run.stranded = "no board onboarded"
                break
            elif boardless_since is None:
                boardless_since = now
            elif now - boardless_since > BOARDLESS_GRACE:
                run.stranded = "every board left"
                break
            waits = [now + self.update_every]
            if next_task < len(arrivals):
                waits.append(arrivals[next_task].arrival + offset)
            if next_plan < len(todo):
                waits.append(max(todo[next_plan].at + offset, now + 0.005))
            if deadline is not None:
                waits.append(deadline)
            try:
                stamp, sender, message = self.arrived.get(timeout=max(0.0, min(waits) - self.now()))
            except queue.Empty:
                continue
            self.take(sender, message, stamp)
        self.update(self.now())
        run.executed = {name: None if None in times else statistics.median(times)
                        for name, times in run.executed_runs.items()}


# Seconds without a board before a run with tasks outstanding ends: a liar leaving to
# rejoin under a new identity is gone for a moment between its Exit and its Onboard
BOARDLESS_GRACE = 5.0
ORACLE = "oracle"  # the sender of check verdicts on the loop's queue
CHECKERS = 2  # worker processes checking answers with the interpreter


def _checker_main(requests, outbox) -> None:
    """A checker process: checks answers with the interpreter until told to stop."""
    # Below the boards: a graph task's children run on its answer while it is checked,
    # so a check is seldom on the critical path, and the boards share the host's cores.
    # SCHED_IDLE: it runs only on CPU no other task of the host wants.  A full check of
    # a 35,000-vector answer is ~2 s of interpreter, and in bench B two checkers were
    # busy 1.0-1.6 of a round's time on average: at nice +5 the rounds took 1.32-2.07 s,
    # slower than every list schedule run live without checks beside them; at nice 19
    # (weight 15 against the boards' 110 at nice 10, still a share) the boards' runs
    # had 0.33 of their wall time on a CPU during the rounds against 0.41-0.49 in the
    # list schedules' runs, and with SCHED_IDLE 0.44 against 0.36-0.49 (one run each).
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    # Ctrl-C reaches the terminal's whole process group: the run's own process stops this
    # one when it has ended the run (a checker's traceback would only add noise)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    book = RoutineBook.library()
    while (request := requests.get()) is not None:
        outbox.put((ORACLE, (request.task, run_check(book, request))))


def _round(tasks: Sequence[TaskSpec], k: int) -> list[TaskSpec]:
    """The workload's tasks for its k-th run (from 1): ids prefixed from the second on."""
    if k == 1:
        return list(tasks)
    return [replace(t, id=f"{k}/{t.id}", after=tuple(f"{k}/{a}" for a in t.after))
            for t in tasks]


def _busiest_honest(mb: Motherboard, liars: dict[str, str]) -> str:
    """The active honest board holding the most tasks ("" when there is none)."""
    honest = [(len(e.inflight), name) for name, e in mb.boards.items()
              if name not in liars and e.status == BoardStatus.ACTIVE]
    return max(honest, default=(0, ""))[1]
