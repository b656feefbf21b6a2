"""The batch interpreter gives the reference interpreter's answers (sem/interp.py), on
every operation at every width and on every library routine without memory."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sem import interp
from sem.batch_interp import admits_many, run_many, supports
from sem.ir import Routine
from sem.library import FILES
from sem.loader import load_file
from sem.vectors import generate
from tests.sem_small_routines import SMALL

LIBRARY = [(str(name), r) for path in FILES for r, name in load_file(path)]


def _edges(width: int) -> list[int]:
    top = (1 << width) - 1
    return sorted({0, 1, 2, 3, 5, 7, top, top - 1, 1 << (width - 1), (1 << (width - 1)) - 1,
                   (1 << (width - 1)) + 1, 0x5555_5555_5555_5555 & top,
                   0xAAAA_AAAA_AAAA_AAAA & top, width, width - 1, width + 1})


def _rows(r: Routine, count: int, seed: int) -> list[tuple[int, ...]]:
    """Every pair (or single) of edge values, then random ones: of each input's width,
    and now and then any 64 bits (a parameter's value above its width is ignored)."""
    rng = random.Random(seed)
    widths = [t.width for t in r.params]
    rows = [tuple(rng.choice(_edges(w)) for w in widths) for _ in range(count // 2)]
    if len(widths) <= 2:
        rows += [(a,) if len(widths) == 1 else (a, b) for a in _edges(widths[0])
                 for b in (_edges(widths[-1]) if len(widths) == 2 else (0,))]
    rows += [tuple(rng.getrandbits(64 if rng.random() < 0.1 else w) for w in widths)
             for _ in range(count // 2)]
    return rows


def _same_as_the_interpreter(r: Routine, rows: list[tuple[int, ...]]) -> None:
    got = run_many(r, np.array(rows, dtype=np.uint64))
    for row, value in zip(rows, got, strict=True):
        assert int(value) == interp.run(r, row).result, row


SCALAR_SMALL = [(name, r) for name, r in SMALL if not r.uses_memory]


@pytest.mark.parametrize("name, r", SCALAR_SMALL, ids=[name for name, _ in SCALAR_SMALL])
def test_every_operation_at_every_width(name, r):
    assert supports(r)
    _same_as_the_interpreter(r, _rows(r, 400, seed=len(name)))


LIBRARY_SCALAR = [(name, r) for name, r in LIBRARY if not r.uses_memory]


@pytest.mark.parametrize("name, r", LIBRARY_SCALAR, ids=[name for name, _ in LIBRARY_SCALAR])
def test_every_library_routine_and_its_domain(name, r):
    assert supports(r)
    rows = [v.args for v in generate(r, 500, seed=3)] + _rows(r, 500, seed=4)
    _same_as_the_interpreter(r, [row for row in rows if interp.admits(r, row)])
    inside = admits_many(r, np.array(rows, dtype=np.uint64))
    assert [bool(b) for b in inside] == [interp.admits(r, row) for row in rows]


def test_routines_with_memory_are_left_to_the_interpreter():
    assert [name for name, r in LIBRARY if not supports(r)] == [
        name for name, r in LIBRARY if r.uses_memory] != []


def test_the_inputs_must_be_one_column_a_parameter():
    _, r = LIBRARY_SCALAR[0]
    with pytest.raises(ValueError, match="inputs a vector"):
        run_many(r, np.zeros((3, len(r.params) + 1), dtype=np.uint64))
