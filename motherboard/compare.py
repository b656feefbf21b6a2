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
    motherboard: float  # its assignment replayed on the table
    motherboard_measured: float  # in the run itself: from the start to the last acceptance
    # in the run itself: from its first award to the result of the last task (the median
    # over the rounds, when the graph was run more than once)
    motherboard_live: float
    live_rounds: tuple[float, ...] = ()  # each round's
    # list scheduler -> its schedule run live in the same run (live.LiveRun.executed:
    # first award to last result, no auction and no check; None: a board left)
    executed: dict[str, float | None] = field(default_factory=dict)

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
    order: dict[str, list[str]] = {b: [] for b in boards}
    for t in sorted(tasks, key=lambda t: _accepted(t).ended):  # the order each board ran them
        board = _accepted(t).board
        if board not in order:
            raise ValueError(f"task {t.id} ran on {board}, which the table lacks (it left)")
        order[board].append(t.id)
    everything = [mb.tasks[t] for ids in rounds for t in ids]
    measured = max(t.accepted_at for t in everything) - start
    lives = tuple(_live([mb.tasks[t] for t in ids]) for ids in rounds)
    return Comparison(tuple(boards), len(tasks), heft(costs, succ).makespan,
                      round_robin(costs, succ).makespan,
                      random_schedule(costs, succ, seed).makespan,
                      replay(costs, succ, order).makespan, measured, statistics.median(lives),
                      lives, dict(executed or {}))


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
