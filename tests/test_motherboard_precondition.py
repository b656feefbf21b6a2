"""The motherboard's oracle and a routine's precondition: an answer for an input outside
the domain (p20 at x = 0, where the reference C divides by zero) is accepted whatever
it is, like C's undefined behaviour, and a wrong answer inside it is still caught, in
both the oracle's own check and the check it farms out (run_check)."""

from __future__ import annotations

from motherboard.oracle import FULL, Check, CheckRequest, run_check
from motherboard.routines import RoutineBook
from sem.interp import Evaluation
from sem.vectors import Vector
from testing import packed

BOOK = RoutineBook.library()
JUNK = 0xDEADBEEF


def snoob(x: int) -> int:
    """Hacker's Delight 2-1, for x != 0."""
    smallest = x & -x
    ripple = (x + smallest) & 0xFFFFFFFF
    return ripple | (((x ^ ripple) >> 2) // smallest)


def _answers(rid: str, inputs: list[Vector], junk_at: int) -> bytes:
    r = BOOK.routine(rid)
    results = [Evaluation(snoob(v.args[0]) if v.args[0] else 0, None) for v in inputs]
    results[junk_at] = Evaluation(JUNK, None)
    return packed.pack_outputs(r, results)


def _checks(rid: str, inputs: list[Vector], outputs: bytes):
    """The oracle's check (by the interpreter's batch form), and the same by the
    reference interpreter a vector at a time, as a Check."""
    r = BOOK.routine(rid)
    data, every = packed.pack_inputs(r, inputs), tuple(range(len(inputs)))
    one_by_one = [i for i in every if packed.admits(BOOK, rid, inputs[i])
                  and packed.evaluate(BOOK, rid, inputs[i]) != packed.output(r, outputs, i)]
    return (run_check(BOOK, CheckRequest("t1", "b1", rid, FULL, None, data, outputs)),
            Check(FULL, len(every), len(one_by_one), one_by_one[0] if one_by_one else None))


def test_an_answer_outside_the_domain_is_accepted_and_one_inside_it_is_caught():
    rid = BOOK.resolve("hd:p20")
    inputs = [Vector((x,), None) for x in (5, 0, 0x80000000, 12, 0)]
    for check in _checks(rid, inputs, _answers(rid, inputs, junk_at=1)):
        assert check.ok and check.checked == 5
    for check in _checks(rid, inputs, _answers(rid, inputs, junk_at=3)):
        assert not check.ok and check.wrong == 1 and check.first_wrong == 3


def test_without_a_precondition_every_input_is_checked():
    """p01 has none: its answer at 0 must be 0 & (0 - 1) = 0, and junk there is wrong."""
    rid = BOOK.resolve("hd:p01")
    r = BOOK.routine(rid)
    inputs = [Vector((x,), None) for x in (5, 0, 12)]
    results = [Evaluation(x & (x - 1) & 0xFFFFFFFF, None) for x in (5, 0, 12)]
    results[1] = Evaluation(JUNK, None)
    for check in _checks(rid, inputs, packed.pack_outputs(r, results)):
        assert not check.ok and check.first_wrong == 1


def test_a_tasks_own_inputs_are_inside_the_domain():
    rid = BOOK.resolve("hd:p20")
    inputs = packed.own_inputs(BOOK, rid, 500, seed=4)
    assert all(packed.admits(BOOK, rid, v) and v.args[0] != 0 for v in inputs)
