"""The motherboard's schedule of a task graph beside the list schedulers', on one table.

Given the measured time of every task on every board (a profiling pass in the same
run: "perfect knowledge"), HEFT, round-robin and random schedule the graph on that
table, and the motherboard's own assignment (which board ran which task, in the
order each board ran them) is replayed on it too, so the four makespans come from the
same numbers; the makespan the motherboard actually had is shown beside them.
Communication costs are zero: a task's inputs travel with its award either way
(the transfer is part of each measured time).

The table's makespans are what the list schedulers would get were every run as long
as its median; the motherboard's is a run on a host that stalls now and then.  So
the live driver also runs each list scheduler's schedule on the same boards in the
same run (`executed`), timed as the motherboard's run is.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from motherboard.heft import heft, random_schedule, replay, round_robin
from motherboard.market import Motherboard


@dataclass(frozen=True)
class Comparison:
    boards: tuple[str, ...]  # the processors of the table
    tasks: int
    heft: float
    round_robin: float
    random: float
    # its assignment replayed on the table (the median over the rounds, as the live figure)
    motherboard: float
    motherboard_measured: float  # in the run itself: from the start to the last acceptance
    # in the run itself: from its first award to the result of the last task (the median
    # over the rounds, when the graph was run more than once)
    motherboard_live: float
    live_rounds: tuple[float, ...] = ()  # each round's
    # list scheduler -> its schedule run live in the same run (live.LiveRun.executed:
    # first award to last result, no auction and no check; None: a board left)
    executed: dict[str, float | None] = field(default_factory=dict)
    table_rounds: tuple[float, ...] = ()  # each round's assignment replayed on the table

    @property
    def ratio_to_heft(self) -> float:
        """The replay's: the motherboard's choices alone, on HEFT's table."""
        return self.motherboard / self.heft if self.heft else float("inf")

    @property
    def live_ratio_to_heft(self) -> float:
        """The run's own makespan (messages, checks, the host's load and all) over HEFT's."""
        return self.motherboard_live / self.heft if self.heft else float("inf")

    def live_ratio_to(self, scheduler: str) -> float | None:
        """The run's own makespan over that of the scheduler's schedule run live (taking
        turns with the motherboard on the same boards): both timed the same way, on the
        host as it was then.  None when it was not run (a board left)."""
        x = self.executed.get(scheduler)
        return self.motherboard_live / x if x else None

    def to_json(self) -> dict:
        return {**asdict(self), "boards": list(self.boards), "ratio_to_heft": self.ratio_to_heft,
                "live_ratio_to_heft": self.live_ratio_to_heft,
                "live_ratio_to_executed": {name: self.live_ratio_to(name)
                                           for name in self.executed}}


def compare(mb: Motherboard, table: Mapping[str, Mapping[str, float]], start: float,
            seed: int = 0, rounds: Sequence[Sequence[str]] = (),
            executed: Mapping[str, float | None] | None = None) -> Comparison:
    """`table`: task -> board -> seconds.  Only boards that measured every task count.
    `rounds`: the task ids of each run of the graph (live.run_live's rounds; default: one
    run of every workload task); the table is the first round's, the later rounds ran
    the same tasks."""
    rounds = rounds or [[t.id for t in mb.workload_tasks()]]
    tasks = [mb.tasks[t] for t in rounds[0]]
    boards = sorted(set.intersection(*(set(table[t.id]) for t in tasks)))
    if not boards:
        raise ValueError("no board measured every task: nothing to compare on")
    costs = {t.id: {b: table[t.id][b] for b in boards} for t in tasks}
    succ: dict[str, list[str]] = {t.id: [] for t in tasks}
    for t in tasks:
        for p in t.after:
            succ[p].append(t.id)
    replays = []
    for k, ids in enumerate(rounds):  # each run's assignment, in the order each board ran it
        order: dict[str, list[str]] = {b: [] for b in boards}
        for t in sorted((mb.tasks[i] for i in ids), key=lambda t: _accepted(t).ended):
            board = _accepted(t).board
            if board not in order:
                if k == 0:
                    raise ValueError(f"task {t.id} ran on {board}, which the table lacks (it left)")
                break  # a later run on a board that then left: not on the table
            order[board].append(t.id.rpartition("/")[2])  # later runs' ids are "k/" + the table's
        else:
            replays.append(replay(costs, succ, order).makespan)
    everything = [mb.tasks[t] for ids in rounds for t in ids]
    measured = max(t.accepted_at for t in everything) - start
    lives = tuple(_live([mb.tasks[t] for t in ids]) for ids in rounds)
    return Comparison(tuple(boards), len(tasks), heft(costs, succ).makespan,
                      round_robin(costs, succ).makespan,
                      random_schedule(costs, succ, seed).makespan,
                      statistics.median(replays), measured, statistics.median(lives),
                      lives, dict(executed or {}), tuple(replays))


@dataclass(frozen=True)
class PairedRatio:
    """The motherboard's runs over another schedule's, each paired with the run of it
    that followed (the same host's load): their geometric mean and its `level`
    confidence interval (Student's t over the log ratios).  An interval wholly under 1
    says the motherboard was faster beyond this host's noise; one across 1, that the
    runs cannot tell them apart."""

    ratios: tuple[float, ...]
    mean: float
    low: float
    high: float
    level: float


def paired_ratio(mine: Sequence[float], theirs: Sequence[float | None],
                 level: float = 0.9) -> PairedRatio | None:
    """None with fewer than two pairs (a run of either missing leaves its pair out)."""
    ratios = tuple(m / x for m, x in zip(mine, theirs, strict=False) if x)
    if len(ratios) < 2:
        return None
    # here, not at the top: scipy.stats takes most of a second to import, and every
    # `./run motherboard` imports this module
    from scipy.stats import t as student_t

    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    spread = statistics.stdev(logs) / math.sqrt(len(logs))
    half = student_t.ppf(0.5 + level / 2, len(logs) - 1) * spread
    return PairedRatio(ratios, math.exp(mean), math.exp(mean - half), math.exp(mean + half),
                       level)


@dataclass(frozen=True)
class HeldOut:
    """HEFT computed on one profiling run of every task on every board, and its schedule
    on the medians of the other runs: how far a makespan on a table of noisy times is
    from what the same schedule gets on times taken again."""

    sample: int
    on_its_table: float
    on_the_others: float


def held_out(runs: Mapping[str, Mapping[str, Sequence[float]]],
             succ: Mapping[str, Sequence[str]]) -> list[HeldOut]:
    """`runs`: task -> board -> every profiling run's seconds (as many for each pair)."""
    counts = {len(r) for row in runs.values() for r in row.values()}
    if len(counts) != 1 or min(counts) < 2:
        return []
    out = []
    for k in range(counts.pop()):
        fit = {t: {b: r[k] for b, r in row.items()} for t, row in runs.items()}
        others = {t: {b: statistics.median(x for i, x in enumerate(r) if i != k)
                      for b, r in row.items()} for t, row in runs.items()}
        schedule = heft(fit, succ)
        out.append(HeldOut(k, schedule.makespan, replay(others, succ, schedule.order()).makespan))
    return out


def _live(tasks) -> float:
    """From the first award to the last task's result."""
    return max(_accepted(t).ended for t in tasks) - min(a.awarded for t in tasks
                                                        for a in t.attempts)


def _accepted(task):
    return next(a for a in task.attempts if a.outcome == "accepted")


@dataclass(frozen=True)
class Knowledge:
    """What the motherboard knew of a graph's times, against the table: whether its
    assignment is off HEFT's on the table for its scheduling or for what its bids knew.

    `heft_on_bids`: HEFT's schedule worked out on the bids' own predicted runs (every
    board's bid for every task of one run: the run alone, `Bid.run`), its makespan on the
    table -- the motherboard's scheduling with HEFT's in its place.  The spreads are the
    standard deviations of log ratios: the bids' predicted runs against the table's
    medians (each board's bias taken out), and one profiling run of a task on a board
    against the median of its other runs (the table's own noise).  `not_earliest`: tasks
    awarded to a bid that did not promise the earliest finish; `refuted_earliest`: those
    of them whose earliest promise the board's record refuted (Motherboard._close: a
    third of what its runs took or less), the rest trust or energy decided;
    `assignment`: the motherboard's own assignment in that run on the table (as HEFT's)."""

    heft_on_bids: float
    assignment: float  # the motherboard's own in that run, on the table, over HEFT's
    bids_spread: float
    runs_spread: float
    not_earliest: int
    refuted_earliest: int


def knowledge(mb: Motherboard, ids: Sequence[str], table: Mapping[str, Mapping[str, float]],
              runs: Mapping[str, Mapping[str, Sequence[float]]]) -> Knowledge | None:
    """`ids`: the task ids of one run of the graph (the table's, prefixed "k/" after the
    first); None unless every task has a bid with its run from every board of the table."""
    tasks = [mb.tasks[t] for t in ids]
    key = {t.id: t.id.rpartition("/")[2] for t in tasks}
    boards = sorted(set.intersection(*(set(table[key[t.id]]) for t in tasks)))
    if not all(b in t.bids and t.bids[b].run > 0 for t in tasks for b in boards):
        return None
    known = {key[t.id]: {b: t.bids[b].run for b in boards} for t in tasks}
    succ: dict[str, list[str]] = {key[t.id]: [] for t in tasks}
    for t in tasks:
        for p in t.after:
            succ[key[p]].append(key[t.id])
    costs = {t: {b: table[t][b] for b in boards} for t in known}
    made = replay(costs, succ, heft(known, succ).order()).makespan
    order: dict[str, list[str]] = {b: [] for b in boards}
    for t in sorted(tasks, key=lambda t: _accepted(t).ended):
        order.setdefault(_accepted(t).board, []).append(key[t.id])
    best = heft(costs, succ).makespan
    bias = {b: statistics.mean(math.log(known[t][b] / costs[t][b]) for t in known)
            for b in boards}
    off = [math.log(known[t][b] / costs[t][b]) - bias[b] for t in known for b in boards]
    one = [math.log(x / statistics.median([*r[:i], *r[i + 1:]]))
           for t in known for b in boards for r in (list(runs[t][b]),) if len(r) > 1
           for i, x in enumerate(r)]
    refuted = {(board, task) for _, kind, board, task in mb.events if kind == "refuted"}
    earliest = {t.id: min(t.bids.values(), key=lambda x: x.seconds).board for t in tasks}
    passed_over = [t for t in tasks if earliest[t.id] != _accepted(t).board]
    return Knowledge(made / best, replay(costs, succ, order).makespan / best,
                     statistics.pstdev(off),
                     statistics.pstdev(one) if one else float("nan"), len(passed_over),
                     sum((earliest[t.id], t.id) in refuted for t in passed_over))


def table_floor(runs: Mapping[str, Mapping[str, Sequence[float]]],
                succ: Mapping[str, Sequence[str]], draws: int = 50, seed: int = 0) -> float:
    """How far even a scheduler that knew the table exactly lands from HEFT on a table of
    the same noise: the table drawn again (each task's runs on each board resampled with
    replacement, their median; a bootstrap), HEFT's schedule on the table replayed on each
    draw over HEFT on that draw, the median of `draws`.  HEFT's makespan on a table of
    noisy medians is optimistic (it takes each task where its median came out lucky), so
    a ratio to it under this is luck, not scheduling."""
    rng = random.Random(seed)
    table = {t: {b: statistics.median(r) for b, r in row.items()} for t, row in runs.items()}
    order = heft(table, succ).order()
    ratios = []
    for _ in range(draws):
        drawn = {t: {b: statistics.median(rng.choices(list(r), k=len(r))) for b, r in row.items()}
                 for t, row in runs.items()}
        ratios.append(replay(drawn, succ, order).makespan / heft(drawn, succ).makespan)
    return statistics.median(ratios)
