"""What boards and the motherboard say to each other: the only interface between them.

Every message is a frozen record of plain data (strings, numbers, tuples, bytes), so
a board can live in this process, in another process, or on another machine (a Ray
actor) without sharing anything.  A task's inputs and outputs travel packed as the
batch probe form's records (motherboard/batch.py): one bytes object per message.
The exchange is the Contract Net's (Smith 1980): announce (BidRequest), bid (Bid),
award (Award), report (Result), plus the board's own moves: joining (Onboard, carrying
its discovery report), refusing a class of work (Decline), saying a run began (Started)
and leaving (Exit).

    board -> motherboard:  Onboard, Bid, Decline, Started, Result, Exit
    motherboard -> board:  BidRequest, Award, Inputs, Cancel, Settle

A graph task may be announced and awarded before its parents have answered: its
BidRequest says when its inputs are expected (`start_after`), its Award comes
without inputs, and they follow in an Inputs message the moment the parents' answers
arrive, so no auction stands between a parent's result and its child's run.

A task whose inputs are there but whose board is still busy with another may be moved
to a board with nothing to run (Cancel to the first, an Award with the inputs to the
second), which is why a board says when a run begins (Started): a task it has begun is
never moved.

Settle closes a task for the board: whether its answer was accepted, what it is paid,
and how long the task took as the motherboard measured it (from the inputs' sending
to the result), which is the time its promises are judged against, so an honest
board learns to promise it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Offer:
    """An implementation a board has for a routine."""

    routine: str  # routine ID (sem.canon)
    implementation: str  # the board's label for it, e.g. "lowered" or "popcnt"


@dataclass(frozen=True)
class EnergySource:
    """Where a board's joules come from: a model (joules per cycle) or a meter."""

    joules_per_cycle: float
    kind: str  # "model" or "rapl"
    detail: str  # what the figure is and where it comes from


@dataclass(frozen=True)
class DiscoveryReport:
    """What a board's discovery run found, as the board tells the motherboard."""

    board: str  # the identity the board joins under (it may choose a new one: Douceur)
    spec: str  # the board spec it was started from, e.g. "q35:Haswell"
    arch: str  # instruction set name
    fingerprint: str  # hardware fingerprint digest, hex (stores/fingerprint.py)
    accelerator: str  # "tcg", "kvm" or "sim"
    features: tuple[str, ...]  # CPU features discovery saw (CPUID flags, RISC-V extensions)
    offers: tuple[Offer, ...]
    energy: EnergySource
    cpu: str = ""  # one line naming the CPU, for tables


@dataclass(frozen=True)
class Onboard:
    report: DiscoveryReport


@dataclass(frozen=True)
class BidRequest:
    task: str
    routine: str
    size: int  # input vectors
    # seconds from now until the inputs are expected (0: they come with the award); the
    # promise then counts from their arrival, so it is the queue left by then plus the run
    start_after: float = 0.0


@dataclass(frozen=True)
class Bid:
    task: str
    board: str
    implementation: str
    seconds: float  # promised: the result arrives this long after the inputs are sent
    joules: float  # predicted energy of the run
    price: float  # credits asked (the bidder's cost, if it bids truthfully)
    calibrated: bool  # whether the prediction comes from a calibrated history model
    # of `seconds`, the run alone as predicted (the rest is its wait for the board's slot):
    # what the motherboard's record of the bids shows beside the measured times
    run: float = 0.0


@dataclass(frozen=True)
class Decline:
    """A board declines a class of tasks (every task of these routines), or, with
    `task`, just this one request."""

    board: str
    routines: tuple[str, ...] = ()
    task: str | None = None


@dataclass(frozen=True)
class Award:
    task: str
    board: str
    routine: str
    implementation: str
    size: int  # input vectors
    inputs: bytes | None  # packed input records (motherboard/batch.py); None: in an Inputs later


@dataclass(frozen=True)
class Inputs:
    """The inputs of a task awarded without them, once its parents' answers came."""

    task: str
    board: str
    inputs: bytes


@dataclass(frozen=True)
class Cancel:
    """The motherboard no longer wants this task from this board (it went elsewhere, or
    the board took too long, or its inputs were wrong): the board drops it, and stops its
    run if it had begun."""

    task: str
    board: str


@dataclass(frozen=True)
class Settle:
    task: str
    board: str
    seconds: float  # inputs sent to result, on the motherboard's clock
    accepted: bool
    payment: float  # credits (0 when not accepted, and for calibration tasks)


@dataclass(frozen=True)
class Started:
    """A board began running a task (its inputs were there and its turn came): from now on
    the task stays with it."""

    task: str
    board: str


@dataclass(frozen=True)
class Result:
    task: str
    board: str
    implementation: str
    outputs: bytes | None  # packed output records (batch.py); None when it could not run
    error: str | None = None
    cycles: int = 0  # what the guest counted around the runs (0: not measured)
    joules: float = 0.0


@dataclass(frozen=True)
class Exit:
    """A board leaves: gracefully (it said so) or killed (its transport saw it die)."""

    board: str
    graceful: bool
    reason: str


BoardMessage = Onboard | Bid | Decline | Started | Result | Exit
MotherboardMessage = BidRequest | Award | Inputs | Cancel | Settle


@dataclass(frozen=True)
class Envelope:
    """A message and the board it goes to."""

    to: str
    message: MotherboardMessage
