"""The batch interpreter gives the reference interpreter's answers (sem/interp.py), on
every operation at every width, memory's included, and on every library routine."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sem import interp
from sem.batch_interp import admits_many, run_many
from sem.ir import Routine
from sem.library import FILES
from sem.loader import load_file
from sem.vectors import DATA_ADDRESS, DATA_SIZE, Vector, generate
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


def _same_as_the_interpreter(r: Routine, vectors: list[Vector]) -> None:
    args = np.array([v.args for v in vectors], dtype=np.uint64)
    memory = (np.array([list(v.memory.data) for v in vectors], dtype=np.uint8)
              if r.uses_memory else None)
    before = None if memory is None else memory.copy()
    got = run_many(r, args, memory)
    assert memory is None or np.array_equal(memory, before)  # a store makes a new state
    for k, v in enumerate(vectors):
        want = interp.run(r, v.args, v.memory)
        assert (None if got.result is None else int(got.result[k])) == want.result, v
        assert (None if got.memory is None else got.memory[k].tobytes()) == (
            None if r.memory is None else want.memory.data), v


def _vectors(r: Routine, count: int, seed: int) -> list[Vector]:
    """_rows' inputs; a pointer input points at the window, which is drawn as
    sem.vectors draws it."""
    windows = [v.memory for v in generate(r, count, seed=seed)] if r.uses_memory else None
    rows = _rows(r, count, seed)
    return [Vector(tuple(DATA_ADDRESS if t.name == "ptr" else x
                         for t, x in zip(r.params, row, strict=True)),
                   windows[k % len(windows)] if windows else None)
            for k, row in enumerate(rows)]


@pytest.mark.parametrize("name, r", SMALL, ids=[name for name, _ in SMALL])
def test_every_operation_at_every_width(name, r):
    _same_as_the_interpreter(r, _vectors(r, 400, seed=len(name)))


@pytest.mark.parametrize("name, r", LIBRARY, ids=[name for name, _ in LIBRARY])
def test_every_library_routine_and_its_domain(name, r):
    vectors = generate(r, 500, seed=3) + _vectors(r, 500, seed=4)
    _same_as_the_interpreter(r, [v for v in vectors if interp.admits(r, v.args)])
    inside = admits_many(r, np.array([v.args for v in vectors], dtype=np.uint64))
    assert [bool(b) for b in inside] == [interp.admits(r, v.args) for v in vectors]


@pytest.mark.parametrize("pointer", [DATA_ADDRESS - 4, DATA_ADDRESS + DATA_SIZE - 12,
                                     DATA_ADDRESS + DATA_SIZE])
def test_an_access_outside_the_window_is_refused_as_the_interpreter_refuses_it(pointer):
    """Below the window, across its end (memory64 loads 8 bytes at the pointer + 8), past
    it; beside a vector inside it in the same batch."""
    r = dict(SMALL)["memory64"]
    v = _vectors(r, 1, seed=1)[0]
    with pytest.raises(IndexError):
        interp.run(r, (pointer,), v.memory)
    window = list(v.memory.data)
    with pytest.raises(IndexError):
        run_many(r, np.array([(DATA_ADDRESS,), (pointer,)], dtype=np.uint64),
                 np.array([window, window], dtype=np.uint8))


def test_the_inputs_must_be_one_column_a_parameter():
    _, r = LIBRARY[0]
    with pytest.raises(ValueError, match="inputs a vector"):
        run_many(r, np.zeros((3, len(r.params) + 1), dtype=np.uint64))
