"""The graph run live as a given schedule places it: no auction, no check.

After the motherboard's first run of a graph, `profile` runs each of its tasks
PROFILE_ROUNDS times on every board, as the graph runs, to make the table of measured
times (the "perfect knowledge" HEFT is given); `list_schedules` works out HEFT's,
round-robin's and random's schedules on that table, and `execute` runs each live on the
same boards, taking turns with the motherboard (live.py), so that every makespan is
measured the same way on the same host.  Boards are reached as the motherboard
reaches them (`Reach`); these runs' task ids carry a prefix of their own (PROFILE,
EXECUTED), so the motherboard never sees them, and what is not theirs -- a board leaving
or joining, a check's verdict -- is handed on to the session, so that it still learns
it.  A board that leaves during these runs ends the one it was in; the profile goes on
without it.
"""

from __future__ import annotations

import queue
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from motherboard.entries import TaskEntry
from motherboard.heft import heft, random_schedule, round_robin
from motherboard.messages import Award, Bid, BidRequest, Cancel, Exit, Result


@dataclass(frozen=True)
class Reach:
    """How these runs reach the live boards: `tell` sends a message to the board of an
    identity; what boards say comes on `arrived` as (when, sender, message); what is not
    these runs' own goes to `forward` (the session's `take`); `alive` says whether a board
    is still there; `clock` is the session's; no run waits longer than `timeout`."""

    tell: Callable[[str, object], None]
    arrived: queue.Queue
    forward: Callable[[str, object, float], None]
    alive: Callable[[str], bool]
    clock: Callable[[], float]
    timeout: float


PROFILE = "profile/"  # task ids of profiling runs, which the motherboard never sees
# runs of each task on each board in the profile: HEFT fits the table's noise (computed on
# one run's times its schedule made 0.72-0.84 s there and 0.99-1.18 s on the others' medians)
PROFILE_ROUNDS = 5


def profile(tasks: list[TaskEntry], active: list[str], reach: Reach
            ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, list[float]]],
                       dict[tuple[str, str], str]]:
    """Every accepted workload task PROFILE_ROUNDS times on every `active` board, timed as
    the graph's runs are: the graph run live as a rotation, task i on board (i + k) mod n
    for k = 0 .. n-1 (each task on each board once per n runs, each board its tasks in
    order, each awarded with its inputs once its board and its parents are done), the
    seconds from the award to the result.  So a task's time is taken with the other
    boards as busy as a run of the graph keeps them.  (With every board working through
    the whole list side by side, as until this change, ~2.6 other boards were busy
    during a run against ~2 in the graph's runs, and the same task on the same board took
    0.5-0.9x that table's time in the graph's runs; with four TCG boards on two cores a
    run's time depends on how many others run.)  The table is the median of each task's
    runs on each board; each board runs the implementation it bids for the task.  A board
    that leaves meanwhile is left out of the table, and the round it left in is run again
    over the boards still there."""
    tasks = [t for t in tasks if t.outputs is not None]
    runs: dict[str, dict[str, list[float]]] = {t.id: {} for t in tasks}
    chosen = bid_implementations(tasks, active, reach)
    active = [b for b in active if all((t.id, b) in chosen for t in tasks)]
    r = 0
    while r < PROFILE_ROUNDS and active:
        for k, schedule in enumerate(rotations([t.id for t in tasks], active)):
            done = execute(f"{PROFILE}{r}/{k}", schedule, tasks, chosen, reach)
            for b, ids in schedule.items():
                for t in ids:
                    if t in done.seconds:
                        runs[t].setdefault(b, []).append(done.seconds[t])
            if not all(map(reach.alive, active)):
                active = [b for b in active if reach.alive(b)]
                break
        else:
            r += 1
    table = {t: {b: statistics.median(r) for b, r in row.items() if reach.alive(b)}
             for t, row in runs.items()}
    return table, runs, chosen


def rotations(tasks: Sequence[str], boards: Sequence[str]) -> list[dict[str, list[str]]]:
    """The n round-robin schedules that together place every task on every board once:
    the k-th puts task i on board (i + k) mod n, each board's tasks in the given order
    (a topological one, so no board waits for a task queued behind it)."""
    n = len(boards)
    return [{b: [t for i, t in enumerate(tasks) if (i + k) % n == j] for j, b in enumerate(boards)}
            for k in range(n)]


def bid_implementations(tasks: list[TaskEntry], active: list[str],
                        reach: Reach) -> dict[tuple[str, str], str]:
    """(task, board) -> the implementation the board bids for the task (its own best); a
    board that leaves meanwhile is not waited for, and has no entry."""
    chosen: dict[tuple[str, str], str] = {}
    asked = {(t.id, b) for t in tasks for b in active}
    for t in tasks:
        for b in active:
            reach.tell(b, BidRequest(f"{PROFILE}{t.id}", t.routine, t.size))
    for _, message in _arrivals(reach, lambda: not asked.issubset(chosen)):
        if isinstance(message, Exit):
            asked.difference_update({(t, b) for t, b in asked if b == message.board})
            for key in [key for key in chosen if key[1] == message.board]:
                del chosen[key]
        elif isinstance(message, Bid) and message.task.startswith(PROFILE):
            chosen[(message.task.removeprefix(PROFILE), message.board)] = message.implementation
    return chosen


def _arrivals(reach: Reach, wanted: Callable[[], bool]) -> Iterator[tuple[float, object]]:
    """What the boards say of these runs, (when it came, the message), while `wanted()` and
    for at most `reach.timeout` seconds, and every Exit; everything else, and every Exit
    too, goes to `reach.forward`."""
    started = time.monotonic()
    while wanted() and time.monotonic() - started < reach.timeout:
        try:
            stamp, sender, message = reach.arrived.get(timeout=1.0)
        except queue.Empty:
            continue
        task = getattr(message, "task", None)
        if isinstance(task, str) and task.startswith((PROFILE, EXECUTED)):
            yield stamp, message
            continue
        reach.forward(sender, message, stamp)
        if isinstance(message, Exit):
            yield stamp, message


EXECUTE_ROUNDS = 3  # live runs of each list scheduler's schedule (their median is its figure)
ONE_BOARD = "one_board"  # the reference schedule with every task on one board (list_schedules)
EXECUTED = "executed/"  # task ids of the list schedulers' runs, which the motherboard never sees


def list_schedules(tasks: list[TaskEntry], table: dict[str, dict[str, float]],
                   seed: int) -> dict[str, dict[str, list[str]]]:
    """HEFT's, round-robin's and random's schedules of the graph on the table: each
    board's tasks in the order it runs them (compare.py makes the same from the same
    table); and, as a reference rather than a rival, every task on one board (the one
    with the least time on the table) in the graph's order: what a schedule gets with
    no parallelism between boards at all.  (Four TCG boards share this host's two
    cores, and one board running alone kept about 1.4 of them busy -- its QEMU and the
    board host's loop -- so boards are not independent processors: measured, this one
    board ran bench B's graph in 0.92-0.97 s where HEFT's schedule on four took
    0.65-0.76 s, and under heavier load 1.31 s against 1.26.)"""
    rows = [row for row in table.values() if row]
    boards = sorted(set.intersection(*(set(row) for row in rows))) if rows else []
    if not boards or len(rows) < len(tasks):
        return {}
    costs = {t.id: {b: table[t.id][b] for b in boards} for t in tasks}
    succ: dict[str, list[str]] = {t.id: [] for t in tasks}
    for t in tasks:
        for p in t.after:
            succ[p].append(t.id)
    alone = min(boards, key=lambda b: sum(row[b] for row in costs.values()))
    return {"heft": heft(costs, succ).order(), "round_robin": round_robin(costs, succ).order(),
            "random": random_schedule(costs, succ, seed).order(),
            ONE_BOARD: {alone: [t.id for t in tasks]}}


@dataclass(frozen=True)
class Executed:
    makespan: float | None  # first award to last result; None: not every task answered
    seconds: dict[str, float]  # task -> its award to its result


def execute(name: str, schedule: dict[str, list[str]], tasks: list[TaskEntry],
            chosen: dict[tuple[str, str], str], reach: Reach) -> Executed:
    """Run the graph live as `schedule` places it: each board its tasks in order, each
    awarded (with its inputs, as the motherboard composed them in the first round) the
    moment its board's previous task and its parents have answered.  No auction, no
    check: the time from the first award to the last result is the schedule's own,
    taken on the host as it is, as the motherboard's run is.  `name` starting with
    PROFILE makes the task ids the profile's, else EXECUTED's.  Not run (makespan None)
    when a board of the schedule has left; ended when one leaves or a run fails, and
    then what the boards still hold of it is cancelled, so that it does not run into the
    next one."""
    if not all(map(reach.alive, schedule)):
        return Executed(None, {})
    tag = name + "/" if name.startswith(PROFILE) else f"{EXECUTED}{name}/"
    awarded: dict[str, float] = {}
    seconds: dict[str, float] = {}
    by_id = {t.id: t for t in tasks}
    position = dict.fromkeys(schedule, 0)
    busy = dict.fromkeys(schedule, False)
    done: set[str] = set()
    where: dict[str, str] = {}  # task -> the board it was awarded to
    first: float | None = None
    last = 0.0

    def ended() -> Executed:
        for t in awarded.keys() - done:
            if reach.alive(where[t]):
                reach.tell(where[t], Cancel(tag + t, where[t]))
        return Executed(None, seconds)

    def award_ready() -> None:
        nonlocal first
        for board_id, order in schedule.items():
            if busy[board_id] or position[board_id] >= len(order):
                continue
            t = by_id[order[position[board_id]]]
            if all(p in done for p in t.after):
                busy[board_id] = True
                awarded[t.id], where[t.id] = reach.clock(), board_id
                first = awarded[t.id] if first is None else first
                reach.tell(board_id, Award(tag + t.id, board_id, t.routine,
                                           chosen[(t.id, board_id)], t.size, t.packed))

    award_ready()
    for stamp, message in _arrivals(reach, lambda: len(done) < len(tasks)):
        if isinstance(message, Exit) and message.board in schedule:
            return ended()
        if not isinstance(message, Result) or not message.task.startswith(tag):
            continue
        if message.outputs is None:
            return ended()
        task = message.task.removeprefix(tag)
        done.add(task)
        seconds[task] = stamp - awarded[task]
        busy[message.board], last = False, stamp
        position[message.board] += 1
        award_ready()
    if len(done) < len(tasks) or first is None:
        return ended()
    return Executed(last - first, seconds)
