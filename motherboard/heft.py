"""List schedulers for task graphs: HEFT, round-robin and random, and a replay.

HEFT (Topcuoglu, Hariri and Wu, "Performance-effective and low-complexity task
scheduling for heterogeneous computing", IEEE TPDS 13(3), 2002): tasks in decreasing
upward rank -- a task's mean cost over the processors plus the largest (edge cost +
rank) over its successors -- each placed on the processor where it finishes first,
allowed into an idle gap between tasks already placed (insertion).  An edge's cost
is paid only between different processors.

Given the measured time of every task on every board ("perfect knowledge"), these
give the schedules the motherboard's own is compared with; `replay` evaluates any
assignment (which board, in which order) on the same table, so all four makespans
come from one set of times.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Costs = Mapping[str, Mapping[str, float]]  # task -> processor -> seconds
Edges = Mapping[str, Sequence[str]]  # task -> its successors
Comm = Mapping[tuple[str, str], float]  # (task, successor) -> cost between processors


@dataclass(frozen=True)
class Slot:
    task: str
    processor: str
    start: float
    end: float


@dataclass(frozen=True)
class Schedule:
    slots: dict[str, Slot]

    @property
    def makespan(self) -> float:
        return max((s.end for s in self.slots.values()), default=0.0)

    def order(self) -> dict[str, list[str]]:
        """Each processor's tasks in the order they run."""
        out: dict[str, list[str]] = {}
        for s in sorted(self.slots.values(), key=lambda s: (s.start, s.end)):
            out.setdefault(s.processor, []).append(s.task)
        return out


def _predecessors(tasks: Sequence[str], succ: Edges) -> dict[str, list[str]]:
    pred: dict[str, list[str]] = {t: [] for t in tasks}
    for t in tasks:
        for s in succ.get(t, ()):
            pred[s].append(t)
    return pred


def _processors(costs: Costs) -> list[str]:
    return list(dict.fromkeys(p for row in costs.values() for p in row))


def upward_ranks(costs: Costs, succ: Edges, comm: Comm | None = None) -> dict[str, float]:
    comm = comm or {}
    memo: dict[str, float] = {}

    def rank(t: str) -> float:
        if t not in memo:
            row = costs[t]
            memo[t] = sum(row.values()) / len(row) + max(
                (comm.get((t, s), 0.0) + rank(s) for s in succ.get(t, ())), default=0.0)
        return memo[t]

    return {t: rank(t) for t in costs}


def _ready(task: str, processor: str, pred: dict[str, list[str]], slots: dict[str, Slot],
           comm: Comm) -> float:
    def arrival(p: str) -> float:
        moved = slots[p].processor != processor
        return slots[p].end + (comm.get((p, task), 0.0) if moved else 0.0)

    return max((arrival(p) for p in pred[task]), default=0.0)


def heft(costs: Costs, succ: Edges, comm: Comm | None = None) -> Schedule:
    comm = comm or {}
    tasks = list(costs)
    pred = _predecessors(tasks, succ)
    ranks = upward_ranks(costs, succ, comm)
    order = sorted(tasks, key=lambda t: (-ranks[t], tasks.index(t)))
    busy: dict[str, list[tuple[float, float]]] = {p: [] for p in _processors(costs)}
    slots: dict[str, Slot] = {}
    for t in order:
        best: Slot | None = None
        for p, row in costs[t].items():
            ready = _ready(t, p, pred, slots, comm)
            start = _earliest_gap(busy[p], ready, row)
            if best is None or start + row < best.end:
                best = Slot(t, p, start, start + row)
        assert best is not None
        slots[t] = best
        busy[best.processor].append((best.start, best.end))
        busy[best.processor].sort()
    return Schedule(slots)


def _earliest_gap(busy: list[tuple[float, float]], ready: float, length: float) -> float:
    """The earliest start >= ready where `length` fits between (or after) busy intervals."""
    start = ready
    for s, e in busy:
        if start + length <= s:
            return start
        start = max(start, e)
    return start


def list_schedule(costs: Costs, succ: Edges, assignment: Mapping[str, str],
                  order: Sequence[str] | None = None, comm: Comm | None = None) -> Schedule:
    """Each task on its assigned processor, in `order` (default: as listed, which must be
    a topological order), starting once its processor is free and its inputs are there."""
    comm = comm or {}
    tasks = list(order or costs)
    pred = _predecessors(list(costs), succ)
    free: dict[str, float] = {}
    slots: dict[str, Slot] = {}
    for t in tasks:
        p = assignment[t]
        start = max(free.get(p, 0.0), _ready(t, p, pred, slots, comm))
        slots[t] = Slot(t, p, start, start + costs[t][p])
        free[p] = slots[t].end
    return Schedule(slots)


def round_robin(costs: Costs, succ: Edges, comm: Comm | None = None) -> Schedule:
    procs = _processors(costs)
    return list_schedule(costs, succ, {t: procs[i % len(procs)] for i, t in enumerate(costs)},
                         comm=comm)


def random_schedule(costs: Costs, succ: Edges, seed: int, comm: Comm | None = None) -> Schedule:
    rng = random.Random(seed)
    procs = _processors(costs)
    return list_schedule(costs, succ, {t: rng.choice(procs) for t in costs}, comm=comm)


def replay(costs: Costs, succ: Edges, per_processor: Mapping[str, Sequence[str]],
           comm: Comm | None = None) -> Schedule:
    """The makespan an assignment gets on the table: each processor runs its tasks in the
    order given, each task once its processor is free and its inputs are there."""
    comm = comm or {}
    pred = _predecessors(list(costs), succ)
    where = {t: p for p, ts in per_processor.items() for t in ts}
    missing = set(costs) - set(where)
    if missing:
        raise ValueError(f"the assignment leaves {sorted(missing)} unplaced")
    position = {p: 0 for p in per_processor}
    free = {p: 0.0 for p in per_processor}
    slots: dict[str, Slot] = {}
    while len(slots) < len(costs):
        progressed = False
        for p, ts in per_processor.items():
            while position[p] < len(ts):
                t = ts[position[p]]
                if any(q not in slots for q in pred[t]):
                    break
                start = max(free[p], _ready(t, p, pred, slots, comm))
                slots[t] = Slot(t, p, start, start + costs[t][p])
                free[p] = slots[t].end
                position[p] += 1
                progressed = True
        if not progressed:
            raise ValueError("the per-processor orders deadlock: a task waits for one queued"
                             " behind it")
    return Schedule(slots)
