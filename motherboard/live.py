"""Live QEMU boards behind the motherboard's messages.

`parse_boards` reads a spec string such as `q35:qemu64,q35:Haswell,q35-kvm:host,
virt:rv64,virt:rv64-nozb`: a board profile (qemu/boards.py), `-kvm` to run it under
KVM (skipped, with the reason, where /dev/kvm cannot run it), and a QEMU CPU model
or one of CPU_ALIASES.  Boards without `-kvm` run under TCG.

Each live board is a process of its own (its threads, its QEMU, its agent); nothing
is shared with the motherboard but the messages (messages.py) on two queues, so the
same board could be a Ray actor on another machine, and the motherboard's work
(checking answers with the interpreter) does not slow the boards' Python down.  Its
runner thread boots the QEMU board (QemuLink), reads the discovery inventory,
fingerprint and CPU features (the board's report: which implementations it has for
each routine), then runs the tasks its agent hands it as batch probes
(probes/routine.py) over one campaign, and measures each run.  Its agent answers
bids at once, even while a task runs.

A board's runs are vetted once per (routine, implementation): the first batch probe
of each form, a full one of generated inputs, goes through the Unicorn vetter; later
probes carry the same code and other inputs.  A routine's memory accesses are at
constant offsets from the pointer inputs, which the form always points at its
scratch area, so what the vetter checked does not depend on the inputs; the
guest's containment (page tables, PMP) stays the backstop, as for every probe.

A killed board (its QEMU gone: `kill()` sends SIGKILL) is not restarted: its link
refuses to, the campaign stops, and the agent tells the motherboard it was killed
(what a transport such as Ray reports when an actor dies).

The loop (`run_live`) drives a Motherboard from one thread: it delivers what boards
say, submits the workload's tasks as they arrive, ticks the motherboard's deadlines,
and can kill a board, make it leave, or start a new one at given times.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import os
import queue
import random
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from arch import Arch
from discovery.fingerprint import fingerprint_of
from discovery.inventory import Inventory
from kernel.guest import Guest
from link.qemu_link import QemuLink
from motherboard import batch
from motherboard.adversary import Liar, LyingAgent
from motherboard.agent import AwardedJob, BoardAgent
from motherboard.energy import Rapl, model_for, rapl
from motherboard.heft import heft, random_schedule, round_robin
from motherboard.history import CALIBRATION_SAMPLES
from motherboard.implementations import (
    StoredCode,
    board_code,
    features_of,
    lowered_code,
    stored_code,
)
from motherboard.market import MarketConfig, Motherboard, TaskEntry
from motherboard.messages import (
    Award,
    Bid,
    BidRequest,
    BoardMessage,
    Cancel,
    DiscoveryReport,
    EnergySource,
    Exit,
    Inputs,
    Offer,
    Onboard,
    Result,
    Settle,
)
from motherboard.oracle import run_check
from motherboard.routines import RoutineBook
from motherboard.workload import TaskSpec, Workload
from probes.campaign import Campaign
from probes.campaign_state import CampaignError
from probes.routine import BatchForm, batch_form
from probes.run import POLICY
from probes.vet import vet
from qemu.boards import Board, board, kvm_problem
from qemu.errors import BoardError, QemuError
from sem.store import SemStore
from sem.vectors import generate

CPU_ALIASES = {
    # QEMU's rv64 has the bit-manipulation extensions on by default (7.x)
    "rv64-nozb": "rv64,zba=false,zbb=false,zbc=false,zbs=false",
}
_WAKE = object()  # what an agent's inbox "says" when its wake-up time comes first
IDLE_POLL = 0.05  # seconds an idle runner waits for work before it looks at its QEMU
KILL_BUSY_WAIT = 30.0  # seconds a "kill-busy" plan waits for its board to hold a task
DEFAULT_MIX = ("hd:p01", "hd:p23", "sort:sort3")


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
            chosen = board(profile, cpu=CPU_ALIASES.get(cpu, cpu) or None,
                           accel="kvm" if kvm else "tcg")
        except BoardError as error:
            raise BoardSpecError(f"board spec {spec!r}: {error}") from None
        problem = kvm_problem(chosen.arch) if kvm else ""
        out.append(BoardChoice(spec, None if problem else chosen, problem))
    if not out:
        raise BoardSpecError("no boards given: e.g. --boards q35:qemu64,virt:rv64")
    return out


def identities(choices: Sequence[BoardChoice]) -> list[str]:
    """A name per board: its spec, numbered when a spec appears more than once."""
    seen: dict[str, int] = {}
    names = []
    for c in choices:
        seen[c.spec] = seen.get(c.spec, 0) + 1
        names.append(c.spec if [x.spec for x in choices].count(c.spec) == 1
                     else f"{c.spec}#{seen[c.spec]}")
    return names


# -- what the board's two threads tell each other -------------------------------------------

@dataclass(frozen=True)
class _Booted:
    report: DiscoveryReport


@dataclass(frozen=True)
class _Finished:
    job: AwardedJob
    outputs: bytes | None
    seconds: float
    cycles: int
    error: str | None
    joules: float | None = None  # metered (RAPL), when the board has a meter


@dataclass(frozen=True)
class _Dead:
    reason: str


@dataclass(frozen=True)
class _Leave:
    pass


class BoardLost(QemuError):
    """The board's QEMU is gone and this board is not to be restarted."""


class _OneLife(QemuLink):
    """A QemuLink that is never restarted: a killed board stays dead."""

    def restart(self) -> None:
        raise BoardLost(f"board {self.board.name} died ({self.died_at and 'QEMU exited'});"
                        " a killed board is not restarted")


@dataclass(frozen=True)
class Code:
    """Every routine's lowered machine code per architecture, and the proven ones the
    semantic store holds (read once, in the motherboard's process, and shared
    read-only by the boards' runners)."""

    lowered: dict[tuple[str, Arch], bytes]
    stored: dict[tuple[str, Arch], tuple[StoredCode, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Pid:
    """The board's QEMU process id, for whoever may kill it (the demo's "killed")."""

    pid: int


class LiveBoard:
    """The loop's handle on one live board, which runs in a process of its own: the
    board's messages go through its inbox and come back on the shared outbox, and
    nothing else is shared (a Ray actor would take its place)."""

    def __init__(self, name: str, choice: BoardChoice, guest: Guest, book: RoutineBook,
                 code: Code, outbox, context, *, liar: str | None = None, seed: int = 0,
                 declines: tuple[str, ...] = (), explore: int = CALIBRATION_SAMPLES) -> None:
        self.name, self.liar_kind = name, liar
        self.inbox = context.Queue()
        self.qemu_pid: int | None = None
        self.exited = False  # it said Exit (or the loop said it for it)
        self.process = context.Process(
            target=_board_main, name=f"board {name}", daemon=True,
            args=(name, choice, guest, book, code, self.inbox, outbox, liar, seed, declines,
                  explore))

    def start(self) -> None:
        self.process.start()

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
        self.inbox.put(_Leave())

    def stop(self, timeout: float = 10.0) -> None:
        self.inbox.put(None)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.kill()


def _board_main(name: str, choice: BoardChoice, guest: Guest, book: RoutineBook, code: Code,
                inbox, outbox, liar: str | None, seed: int, declines: tuple[str, ...],
                explore: int) -> None:
    """A board process: its agent in this thread, its runner (and QEMU) in another."""
    # The runner's Python (the campaign) would hold the agent's answer to a bid request
    # for up to the default 5 ms switch interval; a bid is on the motherboard's path.
    sys.setswitchinterval(SWITCH_INTERVAL)
    _LiveBoard(name, choice, guest, book, code, inbox, outbox, liar=liar, seed=seed,
           declines=declines, explore=explore).run()


class _LiveBoard:
    """One live QEMU board, inside its process: a runner thread (its link, its runs) and
    the agent (its messages)."""

    def __init__(self, name: str, choice: BoardChoice, guest: Guest, book: RoutineBook,
                 code: Code, inbox, outbox, *, liar: str | None = None, seed: int = 0,
                 declines: tuple[str, ...] = (), explore: int = CALIBRATION_SAMPLES) -> None:
        assert choice.board is not None
        self.explore = explore
        self.name, self.choice, self.guest = name, choice, guest
        self.book, self.code, self.inbox, self.outbox = book, code, inbox, outbox
        self.liar_kind, self.seed = liar, seed
        self.declines = tuple(book.resolve(r) for r in declines)
        self._jobs: queue.Queue = queue.Queue()
        self.identities = [name]
        self.meter: Rapl | None = None

    def run(self) -> None:
        runner = threading.Thread(target=self._guarded, args=(self._runner_loop,),
                                  name=f"runner {self.name}")
        runner.start()
        self._guarded(self._agent_loop)
        self._jobs.put(None)
        runner.join()

    def _say(self, message: object) -> None:
        self.outbox.put((self.name, message))

    def _guarded(self, loop: Callable[[], None]) -> None:
        """A loop that fails tells the motherboard so (as a transport would)."""
        try:
            loop()
        except Exception as error:  # noqa: BLE001 -- any failure ends the board, reported
            self._say(Exit(self.identities[-1], False, f"{type(error).__name__}: {error}"))
            self.inbox.put(None)
            self._jobs.put(None)

    # -- the runner: the link, the runs ---------------------------------------------------------

    def _runner_loop(self) -> None:
        chosen = self.choice.board
        with _OneLife(chosen, self.guest) as link:
            if link.machine is not None and link.machine.pid is not None:
                self._say(_Pid(link.machine.pid))
            inventory = Inventory.from_boot(link.first_boot)
            forms: dict[tuple[str, str], BatchForm] = {}
            self.inbox.put(_Booted(self._report(link, inventory, forms)))
            campaign = Campaign(link, POLICY)
            while True:
                try:
                    job = self._jobs.get(timeout=IDLE_POLL)
                except queue.Empty:
                    if link.machine is None or not link.machine.running:
                        self.inbox.put(_Dead("its QEMU exited"))
                        return
                    continue
                if job is None:
                    return
                try:
                    self.inbox.put(self._run(link, campaign, forms, job))
                except (BoardLost, CampaignError) as error:
                    self.inbox.put(_Dead(str(error)))
                    return

    def _report(self, link: QemuLink, inventory: Inventory,
                forms: dict[tuple[str, str], BatchForm]) -> DiscoveryReport:
        """What the board offers: each implementation its features allow, its batch form
        built and vetted now, before any run is timed."""
        arch = link.board.arch
        features = features_of(inventory)
        offers = []
        self._code: dict[tuple[str, str], bytes] = {}
        for rid in dict.fromkeys(r for r, _ in self.code.lowered):  # the routines it may run
            offered = board_code(self.book.short(rid), arch, features,
                                 self.code.lowered[(rid, arch)],
                                 self.code.stored.get((rid, arch), ()))
            for label, code in offered.items():
                self._code[(rid, label)] = code
        for rid, implementation in self._code:
            try:
                self._form(forms, rid, implementation, arch)
            except ValueError:
                continue  # the vetter refused it: not offered
            offers.append(Offer(rid, implementation))
        fp = fingerprint_of(inventory, link.board.name)
        summary = dict(inventory.cpu.summary()) if inventory.cpu else {}
        cpu = summary.get("Model name") or summary.get("ISA") or link.board.cpu
        return DiscoveryReport(self.name, self.choice.spec, arch.name, fp.digest.hex(),
                               link.accelerator, features, tuple(offers), self._energy(link),
                               str(cpu))

    def _energy(self, link: QemuLink) -> EnergySource:
        """The model; a KVM board on a host with a readable RAPL counter is metered too."""
        model = model_for(link.board.arch.name)
        self.meter = rapl() if link.accelerator == "kvm" else None
        if self.meter is None:
            return model
        return replace(model, kind="rapl", detail=f"metered: RAPL {self.meter.counter} (the"
                       " whole package over each run, the host's other work included); "
                       + model.detail)

    def _form(self, forms: dict, routine: str, implementation: str, arch: Arch) -> BatchForm:
        key = (routine, implementation)
        if key not in forms:
            r = self.book.routine(routine)
            form = batch_form(r, arch, self._code[key])
            verdict = vet(form.probe(generate(r, form.capacity, seed=1)))
            if not verdict.accepted:
                raise ValueError(f"the vetter rejects {self.book.name(routine)}"
                                 f" ({implementation}): {verdict.reason}")
            forms[key] = form
        return forms[key]

    def _run(self, link: QemuLink, campaign: Campaign, forms: dict, job: AwardedJob) -> _Finished:
        award = job.award
        try:
            form = self._form(forms, award.routine, award.implementation, link.board.arch)
        except ValueError as error:
            return _Finished(job, None, 0.0, 0, str(error))
        started = time.monotonic()  # the run, from its inputs to its outputs (not the
        probes = [form.packed_probe(c) for c in form.packed_chunks(award.inputs)]  # vetting)
        before = self.meter.read_uj() if self.meter is not None else 0
        report = campaign.run([(p, None) for p in probes])
        outputs = bytearray()
        cycles = 0
        for probe in probes:
            result = report.results.get(probe.content_hash)
            obs = result.observation if result else None
            if obs is None or obs.outcome != 0 or obs.status != 0:
                what = "no result" if obs is None else f"{obs.outcome.name} status {obs.status}"
                return _Finished(job, None, time.monotonic() - started, cycles,
                                 f"a batch probe ended: {what}")
            outputs += obs.output[:probe.output_size]
            cycles += obs.cycles or 0
        joules = None
        if self.meter is not None:
            joules = self.meter.joules_between(before, self.meter.read_uj())
        return _Finished(job, bytes(outputs), time.monotonic() - started, cycles, None, joules)

    # -- the agent: the messages ----------------------------------------------------------------

    def _agent_loop(self) -> None:
        agent: BoardAgent | None = None
        speaker: BoardAgent | LyingAgent | None = None
        running = False
        while True:
            wake = agent.wake_at(time.monotonic()) if agent is not None and not running \
                else None
            try:
                item = self.inbox.get(timeout=None if wake is None else
                                      max(wake - time.monotonic(), 0.0))
            except queue.Empty:
                item = _WAKE  # a job held back for another's inputs may run now
            now = time.monotonic()
            if item is None:
                return
            if item is _WAKE:
                pass
            elif isinstance(item, _Booted):
                agent = BoardAgent(item.report, self.explore)
                speaker = agent
                if self.liar_kind is not None:
                    speaker = LyingAgent(agent, Liar(self.liar_kind, random.Random(self.seed)))
                self._join(agent)
            elif isinstance(item, _Dead):
                self._say(Exit(self.identities[-1], False, item.reason))
                return
            elif isinstance(item, _Leave):
                self._say(Exit(self.identities[-1], True, "leaving"))
                self._jobs.put(None)
                return
            elif agent is None or speaker is None:
                continue  # not booted yet: nothing was asked of it
            elif isinstance(item, _Finished):
                running = False
                result = agent.finished(item.job, item.outputs, item.seconds, item.cycles,
                                        item.error, item.joules)
                if isinstance(speaker, LyingAgent):
                    routine = self.book.routine(item.job.award.routine)
                    result = speaker.result(result, batch.out_stride(routine))
                self._say(result)
            elif isinstance(item, BidRequest):
                self._say(speaker.on_request(item, now))
                if isinstance(speaker, LyingAgent) and speaker.liar.wants_new_identity:
                    self._new_identity(agent, speaker)
            elif isinstance(item, Award):
                if item.board == agent.board:
                    speaker.on_award(item, now)
            elif isinstance(item, Inputs):
                agent.on_inputs(item, now)
            elif isinstance(item, Cancel):
                agent.on_cancel(item)
            elif isinstance(item, Settle):
                agent.on_settle(item)
            if not running and agent is not None:
                job = agent.next_job(time.monotonic())
                if job is not None:
                    running = True
                    self._jobs.put(job)

    def _join(self, agent: BoardAgent) -> None:
        self._say(Onboard(agent.report))
        if self.declines:
            self._say(agent.decline(self.declines))

    def _new_identity(self, agent: BoardAgent, speaker: LyingAgent) -> None:
        """Leave and join again as someone else (the whitewashing liar)."""
        self._say(Exit(agent.board, True, "leaving"))
        self.identities.append(f"{self.name}~{len(self.identities)}")
        agent.report = replace(agent.report, board=self.identities[-1])
        agent.queue = type(agent.queue)(j for j in agent.queue if j.started is not None)
        speaker.liar.lost_in_a_row = 0
        self._join(agent)


# -- the loop ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """Something to do to a board during a run, at `at` seconds after the start."""

    at: float
    # "kill"; "kill-busy": kill it once it holds a task, from `at` on (at most
    # KILL_BUSY_WAIT seconds later), so that something is rerouted; "leave"; "join"
    action: str
    board: str  # the board's name (for join: a spec, started then)


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


SWITCH_INTERVAL = 0.0005  # seconds a thread may hold the GIL while another waits for it


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
    With `warm_up` the workload starts once the first boards have calibrated."""
    from kernel.guest import build_guest
    from motherboard.adversary import liar_kinds

    book = book or RoutineBook.library()
    config = config or MarketConfig()
    usable = [c for c in choices if c.board is not None]
    if not usable:
        raise BoardSpecError("no board can start here: " + "; ".join(
            f"{c.spec}: {c.skipped}" for c in choices))
    names = identities(usable)
    arches = {c.board.arch for c in usable}
    arches |= {parse_boards(p.board)[0].board.arch for p in plans if p.action == "join"
               and parse_boards(p.board)[0].board is not None}
    guests = {arch: build_guest(arch) for arch in arches}
    mix = [book.resolve(r) for r in workload.routines()]
    code = prepare_code(book, mix, arches, store)
    mb = Motherboard(book, mix, config, check_inline=False)
    # fork: the boards start from this process as it is (the code prepared, the guests
    # built); each is then a process of its own
    context = multiprocessing.get_context("fork")
    outbox = context.Queue()
    kinds = liar_kinds(liars)
    # the liars are the last boards given, so a spec lists the honest ones first
    liar_of = {name: kinds[i] for i, name in enumerate(reversed(names[len(names) - liars:]))}
    boards: dict[str, LiveBoard] = {}
    for i, (name, choice) in enumerate(zip(names, usable, strict=True)):
        boards[name] = LiveBoard(name, choice, guests[choice.board.arch], book, code, outbox,
                                 context, liar=liar_of.get(name), seed=seed * 1000 + i,
                                 declines=(declines or {}).get(name, ()),
                                 explore=config.calibration_samples)
    launched = time.monotonic()
    run = LiveRun(mb, boards, [c for c in choices if c.board is None], launched, 0.0)
    route: dict[str, str] = {}  # identity -> the LiveBoard speaking for it
    # The oracle's checks run in processes of their own, so the loop goes on meanwhile
    # (two checks at once on two cores); verdicts come back on the outbox.  Like the
    # boards they are forked before this process starts any thread.
    checks = context.Queue()
    checkers = [context.Process(target=_checker_main, args=(checks, outbox), daemon=True,
                                name=f"checker {i}") for i in range(CHECKERS)]
    for process in checkers:
        process.start()
    for board_ in boards.values():
        board_.start()
    # What boards say is stamped when it arrives, by a thread of its own: the loop may be
    # busy checking an answer with the interpreter meanwhile, and that must not count
    # against the boards whose results wait (a network stack would stamp them the same).
    arrived: queue.Queue = queue.Queue()

    def receive() -> None:
        while (item := outbox.get()) is not None:
            arrived.put((time.monotonic() - launched, *item))

    receiver = threading.Thread(target=receive, name="receiver", daemon=True)
    receiver.start()

    def deliver(envelopes) -> None:
        for env in envelopes:
            target = boards.get(route.get(env.to, ""))
            if target is not None:
                target.inbox.put(env.message)
        for request in mb.take_checks():
            checks.put(request)

    def take(sender: str, message: BoardMessage | _Pid, now: float) -> None:
        if sender == ORACLE:
            task, check = message
            deliver(mb.checked(task, check, now))
            return
        if isinstance(message, _Pid):
            boards[sender].qemu_pid = message.pid
            return
        if isinstance(message, Onboard):
            route[message.report.board] = sender
            boards[sender].exited = False
            if boards[sender].liar_kind is not None:
                run.liars[message.report.board] = boards[sender].liar_kind
        if isinstance(message, Exit) and message.board not in mb.boards:
            run.failed[sender] = message.reason
            boards[sender].exited = True
            return
        if isinstance(message, Exit) and message.board == _speaking_as(sender):
            boards[sender].exited = True
        deliver(mb.handle(message, now))

    def _speaking_as(sender: str) -> str:
        return max((i for i, s in route.items() if s == sender), default=sender,
                   key=lambda i: mb.boards[i].joined if i in mb.boards else -1.0)

    def check_processes(now: float) -> None:
        """A board whose process died without a word is gone (what a transport reports)."""
        for name, b in boards.items():
            if not b.exited and b.process.exitcode is not None:
                b.exited = True
                b.kill()
                take(name, Exit(_speaking_as(name), False,
                                f"its process ended (exit code {b.process.exitcode})"), now)

    runs = [_round(workload.tasks, k) for k in range(1, rounds + 1)]
    for specs in runs:
        mb.prepare(specs)  # while the boards boot
    # onboarding: every initial board boots, reports (or fails) and, with `warm_up`,
    # calibrates, before the workload's clock starts
    waiting = set(boards)
    while (waiting or (warm_up and any(mb.calibrating(b) for b in mb.boards))) and \
            time.monotonic() - launched < timeout:
        try:
            stamp, sender, message = arrived.get(timeout=0.1)
        except queue.Empty:
            deliver(mb.tick(time.monotonic() - launched))
            continue
        take(sender, message, stamp)
        if isinstance(message, Onboard | Exit):
            waiting.discard(sender)
        if on_update is not None:
            on_update(run, time.monotonic() - launched)
    run.onboarded = time.monotonic() - launched
    run.start = time.monotonic()
    offset = run.onboarded  # the motherboard's clock runs from the launch; the workload's from here

    def now_() -> float:
        return time.monotonic() - launched

    chosen: dict[tuple[str, str], str] = {}  # (task, board) -> implementation, from the profile
    schedules: dict[str, dict[str, list[str]]] = {}

    def list_schedules_live(last: bool) -> None:
        """After each of the motherboard's rounds: the profile once (after the first, whose
        answers are the later tasks' inputs), then each list scheduler's schedule run live
        once (after the last round, until each has run EXECUTE_ROUNDS times), so that the
        list schedules and the motherboard take turns on the host: on this shared host
        the load changes from minute to minute (measured: runs of the same task on the
        same board, minutes apart, differed by 1.3-1.6x)."""
        first = [mb.tasks[t] for t in run.rounds[0]]
        if not run.profile:
            run.profile, run.profile_runs, found = _profile(mb, first, boards, route, arrived,
                                                            now_, timeout)
            chosen.update(found)
            schedules.update(_schedules(first, run.profile, seed))
        run.between.append(now_())
        while True:
            k = len(next(iter(run.executed_runs.values()), []))
            names = list(schedules)  # a different one first each time after the motherboard
            for name in names[k % len(names):] + names[:k % len(names)] if names else ():
                run.executed_runs.setdefault(name, []).append(_execute(
                    f"{name}/{k}", schedules[name], first, chosen, boards, route, arrived,
                    now_, timeout).makespan)
            if not names or not last or k + 1 >= EXECUTE_ROUNDS:
                return

    arrivals = sorted(runs[0], key=lambda t: t.arrival)
    run.rounds = [[t.id for t in runs[0]]]
    todo = sorted(plans, key=lambda p: p.at)
    next_task, next_plan, last_update = 0, 0, 0.0
    joined = itertools.count(len(boards))
    while True:
        now = now_()
        rel = now - offset
        while next_task < len(arrivals) and arrivals[next_task].arrival <= rel:
            deliver(mb.submit(arrivals[next_task], now))
            next_task += 1
        while next_plan < len(todo) and todo[next_plan].at <= rel:
            plan = todo[next_plan]
            if plan.action == "kill-busy" and plan.board in mb.boards and \
                    not mb.boards[plan.board].inflight and rel < plan.at + KILL_BUSY_WAIT:
                break  # not yet: it holds no task (the plans after it wait too)
            next_plan += 1
            if plan.action in ("kill", "kill-busy") and plan.board in boards and \
                    boards[plan.board].kill():
                run.kills[plan.board] = now
            elif plan.action == "leave" and plan.board in boards:
                boards[plan.board].leave()
            elif plan.action == "join":
                (choice,) = parse_boards(plan.board)
                if choice.board is not None:
                    name = f"{choice.spec}@{plan.at:g}s"
                    arch = choice.board.arch
                    boards[name] = LiveBoard(name, choice, guests[arch], book, code, outbox,
                                             context, seed=seed * 1000 + next(joined),
                                             explore=config.calibration_samples)
                    boards[name].start()
        deadline = mb.deadline()
        if deadline is not None and deadline <= now:
            deliver(mb.tick(now))
        check_processes(now)
        if on_update is not None and now - last_update >= update_every:
            on_update(run, now)
            last_update = now
        if next_task == len(arrivals) and mb.done and profile and \
                len(run.between) < len(run.rounds):
            list_schedules_live(last=len(run.rounds) == len(runs))
            continue  # the clock has moved on: the next round's arrivals count from now
        if next_task == len(arrivals) and mb.done and len(run.rounds) < len(runs):
            again = runs[len(run.rounds)]  # the next round, its clock from now
            arrivals += sorted((replace(t, arrival=t.arrival + rel) for t in again),
                               key=lambda t: t.arrival)
            run.rounds.append([t.id for t in again])
            continue
        if next_task == len(arrivals) and mb.done:
            break
        if rel > timeout:
            run.timed_out = True
            break
        waits = [now + update_every]
        if next_task < len(arrivals):
            waits.append(arrivals[next_task].arrival + offset)
        if next_plan < len(todo):
            waits.append(max(todo[next_plan].at + offset, now + 0.005))
        if deadline is not None:
            waits.append(deadline)
        try:
            stamp, sender, message = arrived.get(timeout=max(0.0, min(waits) - now_()))
        except queue.Empty:
            continue
        take(sender, message, stamp)
    if on_update is not None:
        on_update(run, now_())
    run.executed = {name: None if None in runs else statistics.median(runs)
                    for name, runs in run.executed_runs.items()}
    for _ in checkers:
        checks.put(None)
    for board_ in boards.values():
        board_.stop()
    for process in checkers:
        process.join(5.0)
    outbox.put(None)
    receiver.join(5.0)
    return run


PROFILE = "profile/"  # task ids of profiling runs, which the motherboard never sees
# runs of each task on each board in the profile: HEFT fits the table's noise (computed on
# one run's times its schedule made 0.72-0.84 s there and 0.99-1.18 s on the others' medians)
PROFILE_ROUNDS = 5
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
    book = RoutineBook.library()
    while (request := requests.get()) is not None:
        outbox.put((ORACLE, (request.task, run_check(book, request))))


def _round(tasks: Sequence[TaskSpec], k: int) -> list[TaskSpec]:
    """The workload's tasks for its k-th run (from 1): ids prefixed from the second on."""
    if k == 1:
        return list(tasks)
    return [replace(t, id=f"{k}/{t.id}", after=tuple(f"{k}/{a}" for a in t.after))
            for t in tasks]


def _profile(mb: Motherboard, tasks: list[TaskEntry], boards: dict[str, LiveBoard],
             route: dict[str, str], arrived: queue.Queue, clock: Callable[[], float],
             timeout: float) -> tuple[dict[str, dict[str, float]],
                                      dict[str, dict[str, list[float]]],
                                      dict[tuple[str, str], str]]:
    """Every accepted workload task PROFILE_ROUNDS times on every active board, timed as
    the graph's runs are: the graph run live as a rotation, task i on board (i + k) mod n
    for k = 0 .. n-1 (each task on each board once per n runs, each board its tasks in
    order, each awarded with its inputs once its board and its parents are done), the
    seconds from the award to the result.  So a task's time is taken with the other
    boards as busy as a run of the graph keeps them.  (With every board working through
    the whole list side by side, as until this change, ~2.6 other boards were busy
    during a run against ~2 in the graph's runs, and the same task on the same board took
    0.5-0.9x that table's time in the graph's runs; with four TCG boards on two cores a
    run's time depends on how many others run.)  The table is the median of each task's
    runs on each board; each board runs the implementation it bids for the task."""
    tasks = [t for t in tasks if t.outputs is not None]
    active = [b for b, e in mb.boards.items() if e.status.value == "active"]
    runs: dict[str, dict[str, list[float]]] = {t.id: {} for t in tasks}
    chosen = _bids(tasks, active, boards, route, arrived, timeout)
    active = [b for b in active if all((t.id, b) in chosen for t in tasks)]
    for r in range(PROFILE_ROUNDS):
        for k, schedule in enumerate(rotations([t.id for t in tasks], active)):
            done = _execute(f"{PROFILE}{r}/{k}", schedule, tasks, chosen, boards, route,
                            arrived, clock, timeout)
            for b, ids in schedule.items():
                for t in ids:
                    if t in done.seconds:
                        runs[t].setdefault(b, []).append(done.seconds[t])
    table = {t: {b: statistics.median(r) for b, r in row.items()} for t, row in runs.items()}
    return table, runs, chosen


def rotations(tasks: Sequence[str], boards: Sequence[str]) -> list[dict[str, list[str]]]:
    """The n round-robin schedules that together place every task on every board once:
    the k-th puts task i on board (i + k) mod n, each board's tasks in the given order
    (a topological one, so no board waits for a task queued behind it)."""
    n = len(boards)
    return [{b: [t for i, t in enumerate(tasks) if (i + k) % n == j] for j, b in enumerate(boards)}
            for k in range(n)]


def _bids(tasks: list[TaskEntry], active: list[str], boards: dict[str, LiveBoard],
          route: dict[str, str], arrived: queue.Queue,
          timeout: float) -> dict[tuple[str, str], str]:
    """(task, board) -> the implementation the board bids for the task (its own best)."""
    chosen: dict[tuple[str, str], str] = {}
    asked = {(t.id, b) for t in tasks for b in active}
    for t in tasks:
        for b in active:
            boards[route[b]].inbox.put(BidRequest(f"{PROFILE}{t.id}", t.routine, t.size))
    started = time.monotonic()
    while len(chosen) < len(asked) and time.monotonic() - started < timeout:
        try:
            _, _, message = arrived.get(timeout=1.0)
        except queue.Empty:
            continue
        if isinstance(message, Exit):
            asked = {(t, b) for t, b in asked if b != message.board}
        elif isinstance(message, Bid) and message.task.startswith(PROFILE):
            chosen[(message.task.removeprefix(PROFILE), message.board)] = message.implementation
    return chosen


EXECUTE_ROUNDS = 3  # live runs of each list scheduler's schedule (their median is its figure)
EXECUTED = "executed/"  # task ids of the list schedulers' runs, which the motherboard never sees


def _schedules(tasks: list[TaskEntry], table: dict[str, dict[str, float]],
               seed: int) -> dict[str, dict[str, list[str]]]:
    """HEFT's, round-robin's and random's schedules of the graph on the table: each
    board's tasks in the order it runs them (compare.py makes the same from the same
    table)."""
    rows = [row for row in table.values() if row]
    boards = sorted(set.intersection(*(set(row) for row in rows))) if rows else []
    if not boards or len(rows) < len(tasks):
        return {}
    costs = {t.id: {b: table[t.id][b] for b in boards} for t in tasks}
    succ: dict[str, list[str]] = {t.id: [] for t in tasks}
    for t in tasks:
        for p in t.after:
            succ[p].append(t.id)
    return {"heft": heft(costs, succ).order(), "round_robin": round_robin(costs, succ).order(),
            "random": random_schedule(costs, succ, seed).order()}


@dataclass(frozen=True)
class _Executed:
    makespan: float | None  # first award to last result; None: not every task answered
    seconds: dict[str, float]  # task -> its award to its result


def _execute(name: str, schedule: dict[str, list[str]], tasks: list[TaskEntry],
             chosen: dict[tuple[str, str], str], boards: dict[str, LiveBoard],
             route: dict[str, str], arrived: queue.Queue, clock: Callable[[], float],
             timeout: float) -> _Executed:
    """Run the graph live as `schedule` places it: each board its tasks in order, each
    awarded (with its inputs, as the motherboard composed them in the first round) the
    moment its board's previous task and its parents have answered.  No auction, no
    check: the time from the first award to the last result is the schedule's own,
    taken on the host as it is, as the motherboard's run is.  `name` starting with
    PROFILE makes the task ids the profile's, else EXECUTED's."""
    tag = name + "/" if name.startswith(PROFILE) else f"{EXECUTED}{name}/"
    awarded: dict[str, float] = {}
    seconds: dict[str, float] = {}
    by_id = {t.id: t for t in tasks}
    position = dict.fromkeys(schedule, 0)
    busy = dict.fromkeys(schedule, False)
    done: set[str] = set()
    first: float | None = None
    last = 0.0

    def award_ready() -> None:
        nonlocal first
        for board_id, order in schedule.items():
            if busy[board_id] or position[board_id] >= len(order):
                continue
            t = by_id[order[position[board_id]]]
            if all(p in done for p in t.after):
                busy[board_id] = True
                awarded[t.id] = clock()
                first = awarded[t.id] if first is None else first
                boards[route[board_id]].inbox.put(Award(
                    tag + t.id, board_id, t.routine, chosen[(t.id, board_id)], t.size,
                    t.packed))

    award_ready()
    started = time.monotonic()
    while len(done) < len(tasks) and time.monotonic() - started < timeout:
        try:
            stamp, _, message = arrived.get(timeout=1.0)
        except queue.Empty:
            continue
        if isinstance(message, Exit) and message.board in schedule:
            return _Executed(None, seconds)
        if not isinstance(message, Result) or not message.task.startswith(tag):
            continue
        if message.outputs is None:
            return _Executed(None, seconds)
        task = message.task.removeprefix(tag)
        done.add(task)
        seconds[task] = stamp - awarded[task]
        busy[message.board], last = False, stamp
        position[message.board] += 1
        award_ready()
    if len(done) < len(tasks) or first is None:
        return _Executed(None, seconds)
    return _Executed(last - first, seconds)
