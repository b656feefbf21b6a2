"""HEFT against the worked example of Topcuoglu, Hariri and Wu (IEEE TPDS 13(3), 2002),
Fig. 2: 10 tasks, 3 processors, makespan 80.  The cost table and edge costs are typed
from the paper (the same numbers as the public test data of mackncheesiest/heft,
test/canonicalgraph_task_exe_time.csv and canonicalgraph_task_connectivity.csv); the
upward ranks are the paper's Table (rank_u), and the schedule is the paper's Fig. 2(a)."""

from __future__ import annotations

import pytest

from motherboard.heft import heft, list_schedule, random_schedule, replay, round_robin, upward_ranks

W = {  # task -> (P1, P2, P3) computation costs
    1: (14, 16, 9), 2: (13, 19, 18), 3: (11, 13, 19), 4: (13, 8, 17), 5: (12, 13, 10),
    6: (13, 16, 9), 7: (7, 15, 11), 8: (5, 11, 14), 9: (18, 12, 20), 10: (21, 7, 16),
}
C = {  # (task, successor) -> average communication cost
    (1, 2): 18, (1, 3): 12, (1, 4): 9, (1, 5): 11, (1, 6): 14, (2, 8): 19, (2, 9): 16,
    (3, 7): 23, (4, 8): 27, (4, 9): 23, (5, 9): 13, (6, 8): 15, (7, 10): 17, (8, 10): 11,
    (9, 10): 13,
}
COSTS = {f"n{t}": {f"P{p + 1}": float(c) for p, c in enumerate(row)} for t, row in W.items()}
SUCC = {f"n{t}": [f"n{b}" for (a, b) in C if a == t] for t in W}
COMM = {(f"n{a}", f"n{b}"): float(c) for (a, b), c in C.items()}


def test_upward_ranks_are_the_papers():
    ranks = upward_ranks(COSTS, SUCC, COMM)
    paper = {1: 108.000, 2: 77.000, 3: 80.000, 4: 80.000, 5: 69.000, 6: 63.333, 7: 42.667,
             8: 35.667, 9: 44.333, 10: 14.667}
    for t, r in paper.items():
        assert ranks[f"n{t}"] == pytest.approx(r, abs=1e-3)


def test_heft_schedules_the_papers_example_in_80():
    schedule = heft(COSTS, SUCC, COMM)
    assert schedule.makespan == 80
    placed = {t: (s.processor, s.start, s.end) for t, s in schedule.slots.items()}
    assert placed == {  # the paper's Fig. 2(a)
        "n1": ("P3", 0, 9), "n2": ("P1", 27, 40), "n3": ("P3", 9, 28), "n4": ("P2", 18, 26),
        "n5": ("P3", 28, 38), "n6": ("P2", 26, 42), "n7": ("P3", 38, 49), "n8": ("P1", 57, 62),
        "n9": ("P2", 56, 68), "n10": ("P2", 73, 80),
    }


def test_a_replay_of_heft_own_order_gives_its_makespan():
    schedule = heft(COSTS, SUCC, COMM)
    assert replay(COSTS, SUCC, schedule.order(), COMM).makespan == schedule.makespan


def test_baselines_respect_dependencies_and_are_no_better_here():
    for schedule in (round_robin(COSTS, SUCC, COMM), random_schedule(COSTS, SUCC, 3, COMM)):
        for t, succs in SUCC.items():
            for s in succs:
                assert schedule.slots[s].start >= schedule.slots[t].end
        per_proc = schedule.order()
        for tasks in per_proc.values():  # no processor runs two tasks at once
            slots = [schedule.slots[t] for t in tasks]
            assert all(a.end <= b.start for a, b in zip(slots, slots[1:], strict=False))
        assert schedule.makespan >= 80


def test_one_processor_takes_the_sum():
    costs = {t: {"P1": row["P1"]} for t, row in COSTS.items()}
    assert heft(costs, SUCC, COMM).makespan == sum(W[t][0] for t in W)
    assert list_schedule(costs, SUCC, {t: "P1" for t in costs}).makespan == sum(W[t][0] for t in W)


def test_replay_refuses_a_deadlocked_order():
    costs = {"a": {"P": 1.0}, "b": {"P": 1.0}}
    with pytest.raises(ValueError, match="deadlock"):
        replay(costs, {"a": ["b"]}, {"P": ["b", "a"]})


def test_heft_on_one_lucky_run_is_held_to_the_other_runs():
    """One task, two processors: P took 1 s once and 10 s twice, Q 5 s every time.  HEFT
    on the lucky run's table puts it on P (1 s on that table) where the other runs' median
    is 10 s; on either other run it picks Q, whose 5 s holds (worked by hand)."""
    from motherboard.compare import HeldOut, held_out

    runs = {"a": {"P": [1.0, 10.0, 10.0], "Q": [5.0, 5.0, 5.0]}}
    assert held_out(runs, {"a": []}) == [HeldOut(0, 1.0, 10.0), HeldOut(1, 5.0, 5.0),
                                         HeldOut(2, 5.0, 5.0)]
    assert held_out({"a": {"P": [1.0], "Q": [5.0]}}, {"a": []}) == []  # nothing to hold out


def test_paired_ratios_give_the_students_t_interval_of_their_geometric_mean():
    """Five paired runs: the interval is exp(mean log ratio +- t x s / sqrt(5)), with
    t(0.95, 4 degrees of freedom) = 2.132 from the tables; a missing run leaves its
    pair out, and one pair is no interval."""
    import math
    import statistics

    from motherboard.compare import paired_ratio

    logs = [0.10, -0.10, 0.20, 0.0, 0.05]
    theirs = [1.0, 2.0, 0.5, 1.5, 1.0, None]
    mine = [x * math.exp(d) for x, d in zip(theirs[:5], logs, strict=True)] + [0.7]
    paired = paired_ratio(mine, theirs)
    half = 2.132 * statistics.stdev(logs) / math.sqrt(5)
    assert paired is not None and len(paired.ratios) == 5
    assert paired.mean == pytest.approx(math.exp(0.05))
    assert paired.low == pytest.approx(math.exp(0.05 - half), rel=1e-3)
    assert paired.high == pytest.approx(math.exp(0.05 + half), rel=1e-3)
    assert paired.low < 1 < paired.high  # these runs cannot tell the two apart
    assert paired_ratio([1.0, 2.0], [1.1, None]) is None
