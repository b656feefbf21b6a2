"""Every live board of a motherboard served from one process by one loop.

The board host is a process of its own (forked from the motherboard's, so the
motherboard's work -- auctions, composing inputs -- does not slow the boards'
Python down).  It holds every board's QemuLink in one BoardLoop
(probes/board_loop.py): one selector thread boots each board (the boot to FINAL fed
from the loop), reads its discovery (inventory, fingerprint, CPU features: the
board's report, which implementations it has for each routine), and runs the tasks
its agent takes as batch probes (probes/routine.py), each task one Work of an open
Intake, its result the probes' outputs joined in order.  A board's agent
(agent.py, wrapped by adversary.py for a liar) is a sans-IO object in the same loop:
it answers a bid request the moment it arrives, even while the board's task runs.

Nothing is shared with the motherboard but messages (messages.py): frozen records of
plain data, in on one pipe (addressed `(board, message)`), out on one queue
(`(board, message)`, as each board would say it), so a board could as well be a Ray
actor on another machine.

A board's runs are vetted once per (routine, architecture, code): the first batch
probe of each form, a full one of generated inputs, goes through the Unicorn
vetter; later probes carry the same code and other inputs.  A routine's memory
accesses are at constant offsets from the pointer inputs, which the form always
points at its scratch area, so what the vetter checked does not depend on the
inputs; the guest's containment (page tables, PMP) stays the backstop, as for every
probe.  Boards of one architecture share the vetted forms.

A killed board (its QEMU gone: SIGKILLed by whoever holds its pid) is not restarted:
the loop sees its line close, and the host tells the motherboard it was killed at
once (what a transport such as Ray reports when an actor dies).
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection

from arch import Arch
from discovery.fingerprint import fingerprint_of
from discovery.inventory import Inventory
from kernel.guest import Guest
from link.qemu_link import QemuLink
from motherboard import batch
from motherboard.adversary import Liar, LyingAgent
from motherboard.agent import AwardedJob, BoardAgent
from motherboard.energy import Rapl, model_for, rapl
from motherboard.history import CALIBRATION_SAMPLES, Smoothed, share_of
from motherboard.implementations import StoredCode, board_code, features_of
from motherboard.messages import (
    Award,
    BidRequest,
    Cancel,
    DiscoveryReport,
    EnergySource,
    Exit,
    Inputs,
    Offer,
    Onboard,
    Settle,
    Started,
)
from motherboard.routines import RoutineBook
from probes.board_loop import BoardJob, BoardLoop, Intake, Work, WorkDone
from probes.routine import BatchForm, batch_form
from probes.run import POLICY
from probes.vet import vet
from qemu.boards import Board
from sem.vectors import generate

# The loop's Python would hold a message for up to the default 5 ms switch interval while
# a boot thread runs; a bid is on the motherboard's path.
SWITCH_INTERVAL = 0.0005  # seconds a thread may hold the GIL while another waits for it


@dataclass(frozen=True)
class Code:
    """Every routine's lowered machine code per architecture, and the proven ones the
    semantic store holds (read once, in the motherboard's process, and shared
    read-only by the boards)."""

    lowered: dict[tuple[str, Arch], bytes]
    stored: dict[tuple[str, Arch], tuple[StoredCode, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class HostedBoard:
    """What the host needs to start one board (plain data, as a message)."""

    name: str
    spec: str  # as written, e.g. "q35:Haswell"
    board: Board
    liar: str | None = None
    seed: int = 0
    declines: tuple[str, ...] = ()  # routine IDs
    explore: int = CALIBRATION_SAMPLES


@dataclass(frozen=True)
class Leave:
    """The board is to leave gracefully (it says Exit and its QEMU is shut down)."""


@dataclass(frozen=True)
class QemuPid:
    """The board's QEMU process id, for whoever may kill it (the demo's "killed")."""

    pid: int


def host_main(guests: dict[Arch, Guest], book: RoutineBook, code: Code, inbox: Connection,
              outbox, boards: list[HostedBoard]) -> None:
    """The board host's process: serve `boards` (and those started later) until told to
    stop (None on the inbox, or the inbox closing)."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    # Ctrl-C reaches the terminal's whole process group: the motherboard's process ends
    # the run and then stops this one, which would otherwise die mid-message
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _BoardHost(guests, book, code, inbox, outbox).run(boards)


class _BoardHost:
    def __init__(self, guests: dict[Arch, Guest], book: RoutineBook, code: Code,
                 inbox: Connection, outbox) -> None:
        self.guests, self.book, self.code = guests, book, code
        self.inbox, self.outbox = inbox, outbox
        self.loop = BoardLoop(POLICY, keep_serving=True)
        self.boards: dict[str, _Hosted] = {}
        self.forms: dict[tuple[str, Arch, bytes], BatchForm | str] = {}  # str: why refused
        # the share of a CPU runs on this host get now, and the time a task spends outside
        # its run, over every board's latest (history.py: a board that runs nothing
        # predicts with them, not with its own stale ones)
        self.share = Smoothed()
        self.outside = Smoothed()

    def ran(self, share: float) -> None:
        """A board's run got `share` of a CPU: every agent here predicts with the news."""
        self.share.add(share)
        self._tell()

    def settled(self, outside: float) -> None:
        """A board's task spent `outside` seconds outside its run (its messages and
        inputs on their way): every agent here predicts with the news."""
        self.outside.add(outside)
        self._tell()

    def _tell(self) -> None:
        """Every agent here gets the host's figures as they stand (None: none yet)."""
        for hosted in self.boards.values():
            if hosted.agent is not None:
                history = hosted.agent.history
                history.host_share = self.share.value if self.share.count else None
                history.host_outside = self.outside.value if self.outside.count else None

    def run(self, boards: list[HostedBoard]) -> None:
        for spec in boards:
            self.start(spec)
        self.loop.watch(self.inbox.fileno(), self._messages)
        try:
            self.loop.run(self._tick)
        finally:
            for hosted in self.boards.values():
                self.loop.end(hosted.job)
            self.loop.close()

    def say(self, name: str, message: object) -> None:
        self.outbox.put((name, message))

    def start(self, spec: HostedBoard) -> None:
        link = QemuLink(spec.board, self.guests[spec.board.arch], launch=False)
        hosted = _Hosted(self, spec, link)
        self.boards[spec.name] = hosted
        self.loop.add(hosted.job)

    def form(self, routine: str, arch: Arch, code: bytes) -> BatchForm:
        """The batch form of `routine` in `code`, vetted once (ValueError: the vetter
        refuses it)."""
        key = (routine, arch, code)
        if key not in self.forms:
            r = self.book.routine(routine)
            form = batch_form(r, arch, code)
            verdict = vet(form.probe(generate(r, form.capacity, seed=1)))
            self.forms[key] = form if verdict.accepted else \
                f"the vetter rejects {self.book.name(routine)}: {verdict.reason}"
        found = self.forms[key]
        if isinstance(found, str):
            raise ValueError(found)
        return found

    def _messages(self) -> None:
        """Everything the inbox holds now, each to its board."""
        try:
            while self.inbox.poll(0):
                item = self.inbox.recv()
                if item is None:
                    self.loop.stop()
                    return
                name, message = item
                if isinstance(message, HostedBoard):
                    self.start(message)
                elif name in self.boards:
                    self.boards[name].take(message)
        except EOFError:  # the motherboard is gone
            self.loop.stop()

    def _tick(self, now: float) -> float | None:
        """Jobs held back for another's inputs that may run now; when to look again.
        (Every turn of the loop: each board's wake-up time is kept, not worked out.)"""
        soonest = None
        for hosted in self.boards.values():
            wake = hosted.wake_time
            if wake is not None and wake <= now:
                hosted.wake(now)
                wake = hosted.wake_time
            if wake is not None and (soonest is None or wake < soonest):
                soonest = wake
        return soonest


class _Hosted:
    """One board in the host: its link (served by the host's loop), its agent, its work."""

    def __init__(self, host: _BoardHost, spec: HostedBoard, link: QemuLink) -> None:
        self.host, self.spec, self.link = host, spec, link
        self.declines = spec.declines
        self.intake = Intake()
        self.job = BoardJob(link, self.intake, on_work=self._guard(self._done),
                            on_up=self._guard(self._up), on_end=self._ended, restart=False)
        self.agent: BoardAgent | None = None
        self.speaker: BoardAgent | LyingAgent | None = None
        self.identities = [spec.name]
        self.code: dict[tuple[str, str], bytes] = {}
        self.meter: Rapl | None = None
        self.running: _Running | None = None
        self.gone = False  # it said Exit
        # when a job held back for another's inputs may run, though no message comes
        self.wake_time: float | None = None

    def say(self, message: object) -> None:
        self.host.say(self.spec.name, message)

    def _guard(self, step: Callable) -> Callable:
        """A step that fails ends the board and tells the motherboard so (as a transport
        would)."""
        def guarded(*args) -> None:
            try:
                step(*args)
            except Exception as error:  # noqa: BLE001 -- any failure ends the board, reported
                self._exit(False, f"{type(error).__name__}: {error}")
        return guarded

    def _exit(self, graceful: bool, reason: str) -> None:
        if self.gone:
            return
        self.gone = True
        self.say(Exit(self.identities[-1], graceful, reason))
        self.host.loop.end(self.job)

    # -- the link ---------------------------------------------------------------------------

    def _up(self, link: QemuLink) -> None:
        """Booted to FINAL: the board reports what it is and joins."""
        if self.agent is not None:
            return  # (a board of the motherboard is never restarted)
        if link.machine is not None and link.machine.pid is not None:
            self.say(QemuPid(link.machine.pid))
            _batch_scheduled(link.machine.pid)
        self.agent = BoardAgent(self._report(link, Inventory.from_boot(link.first_boot)),
                                self.spec.explore)
        self.speaker = self.agent
        if self.spec.liar is not None:
            self.speaker = LyingAgent(self.agent, Liar(self.spec.liar,
                                                       random.Random(self.spec.seed)))
        self._join(self.agent)

    def _ended(self, why: str) -> None:
        """The loop finished the board: its QEMU died (killed), or never booted."""
        if not self.gone:
            self.gone = True
            reason = "its QEMU exited" if why == "QEMU exited" else why
            self.say(Exit(self.identities[-1], False, reason))

    def _report(self, link: QemuLink, inventory: Inventory) -> DiscoveryReport:
        """What the board offers: each implementation its features allow whose batch form
        the vetter accepts (vetted now, before any run is timed)."""
        arch = link.board.arch
        features = features_of(inventory)
        offers = []
        for rid in dict.fromkeys(r for r, _ in self.host.code.lowered):
            offered = board_code(self.host.book.short(rid), arch, features,
                                 self.host.code.lowered[(rid, arch)],
                                 self.host.code.stored.get((rid, arch), ()))
            for label, code in offered.items():
                try:
                    self.host.form(rid, arch, code)
                except ValueError:
                    continue  # the vetter refused it: not offered
                self.code[(rid, label)] = code
                offers.append(Offer(rid, label))
        fp = fingerprint_of(inventory, link.board.name)
        summary = dict(inventory.cpu.summary()) if inventory.cpu else {}
        cpu = summary.get("Model name") or summary.get("ISA") or link.board.cpu
        return DiscoveryReport(self.spec.name, self.spec.spec, arch.name, fp.digest.hex(),
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

    # -- the agent ----------------------------------------------------------------------------

    def take(self, message: object) -> None:
        """A message for this board."""
        if self.gone:
            return
        self._guard(self._take)(message)

    def _take(self, message: object) -> None:
        now = time.monotonic()
        if isinstance(message, Leave):
            self._exit(True, "leaving")
            return
        agent, speaker = self.agent, self.speaker
        if agent is None or speaker is None:
            return  # not booted yet: nothing was asked of it
        if isinstance(message, BidRequest):
            self.say(speaker.on_request(message, now))
            if isinstance(speaker, LyingAgent) and speaker.liar.wants_new_identity:
                self._new_identity(agent, speaker)
        elif isinstance(message, Award):
            if message.board == agent.board:
                speaker.on_award(message, now)
        elif isinstance(message, Inputs):
            agent.on_inputs(message, now)
        elif isinstance(message, Cancel):
            running = self.running
            if agent.on_cancel(message) and running is not None \
                    and running.job.award.task == message.task:
                self.intake.withdraw(message.task)  # what is still to send is not sent
                self.running = None
        elif isinstance(message, Settle):
            outside = agent.on_settle(message)
            if outside is not None:
                self.host.settled(outside)
        self._next(time.monotonic())

    def wake(self, now: float) -> None:
        """Its wake-up time came: start what may run now."""
        self.wake_time = None
        self._guard(self._next)(now)

    def _next(self, now: float) -> None:
        """The board is idle: start its agent's next job, if one may run now (else note
        when one may, though no message comes)."""
        if self.running is not None or self.agent is None or self.gone:
            return
        job = self.agent.next_job(now)
        if job is None:
            self.wake_time = self.agent.wake_at(now)
            return
        self.wake_time = None
        award = job.award
        arch = self.link.board.arch
        try:
            form = self.host.form(award.routine, arch,
                                  self.code[(award.routine, award.implementation)])
        except (KeyError, ValueError) as error:
            self._finished(job, None, 0.0, 0, f"no such implementation here: {error}")
            return
        assert award.inputs is not None  # next_job gives only jobs whose inputs are here
        probes = [form.packed_probe(c) for c in form.packed_chunks(award.inputs)]
        before = self.meter.read_uj() if self.meter is not None else 0
        self.running = _Running(job, time.monotonic(), before, self._qemu_cpu())
        self.intake.put(Work(award.task, tuple((p, None) for p in probes)))
        self.say(Started(award.task, award.board))

    def _done(self, done: WorkDone) -> None:
        """The running task's probes are all answered: its outputs, joined in order."""
        running = self.running
        if running is None or done.key != running.job.award.task:
            return
        seconds = time.monotonic() - running.started
        outputs = bytearray()
        cycles = 0
        error = done.error
        for result in done.results:
            obs = result.observation
            if obs.outcome != 0 or obs.status != 0:
                error = f"a batch probe ended: {obs.outcome.name} status {obs.status}"
                if obs.fault is not None:  # which exception, at which instruction
                    f = obs.fault
                    error += (f" ({self.link.board.arch.fault_name(f.vector)} at ip "
                              f"{f.ip:#x}, address {f.address:#x})")
                break
            outputs += obs.output[:result.probe.output_size]
            cycles += obs.cycles or 0
        joules = None
        if self.meter is not None:
            joules = self.meter.joules_between(running.meter_before, self.meter.read_uj())
        cpu_after = self._qemu_cpu()
        cpu = (cpu_after - running.cpu_before if cpu_after is not None
               and running.cpu_before is not None and cpu_after >= running.cpu_before else None)
        if cpu and seconds > 0 and self.agent is not None and self.agent.history.warmed:
            self.host.ran(share_of(cpu, seconds))
        self._finished(running.job, None if error else bytes(outputs), seconds, cycles,
                       error, joules, cpu)

    def _qemu_cpu(self) -> float | None:
        machine = self.link.machine
        return machine.cpu_seconds() if machine is not None else None

    def _finished(self, job: AwardedJob, outputs: bytes | None, seconds: float, cycles: int,
                  error: str | None, joules: float | None = None,
                  cpu: float | None = None) -> None:
        agent, speaker = self.agent, self.speaker
        assert agent is not None and speaker is not None
        self.running = None
        result = agent.finished(job, outputs, seconds, cycles, error, joules, cpu)
        if isinstance(speaker, LyingAgent):
            routine = self.host.book.routine(job.award.routine)
            result = speaker.result(result, batch.out_stride(routine))
        self.say(result)
        self._next(time.monotonic())

    def _join(self, agent: BoardAgent) -> None:
        self.say(Onboard(agent.report))
        if self.declines:
            self.say(agent.decline(self.declines))

    def _new_identity(self, agent: BoardAgent, speaker: LyingAgent) -> None:
        """Leave and join again as someone else (the whitewashing liar)."""
        self.say(Exit(agent.board, True, "leaving"))
        self.identities.append(f"{self.spec.name}~{len(self.identities)}")
        agent.report = replace(agent.report, board=self.identities[-1])
        agent.queue = type(agent.queue)(j for j in agent.queue if j.started is not None)
        speaker.liar.lost_in_a_row = 0
        self._join(agent)


def _batch_scheduled(pid: int) -> None:
    """Every thread of QEMU `pid` under SCHED_BATCH: the host's one loop serves every
    board, and a QEMU woken by the loop's write would otherwise preempt the loop (on a
    busy host, for a whole time slice) while the other boards' answers wait.  A batch
    thread gets the same share of CPU; it just does not preempt on waking."""
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setscheduler(int(tid), os.SCHED_BATCH, os.sched_param(0))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass  # gone already, or not ours to change: it runs as it was


@dataclass
class _Running:
    job: AwardedJob
    started: float  # its probes handed to the loop
    meter_before: int  # the RAPL counter then (0: no meter)
    cpu_before: float | None  # its QEMU's CPU-seconds then (None: not known)
