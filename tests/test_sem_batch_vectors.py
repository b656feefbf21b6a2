"""Vectors drawn as arrays (sem/batch_vectors.py) beside the reference generator
(sem/vectors.py) and the reference interpreter's domain."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from motherboard import batch
from sem import interp
from sem.batch_vectors import generate_batch
from sem.interp import Memory
from sem.library import FILES
from sem.loader import load_file
from sem.vectors import DATA_ADDRESS, DATA_SIZE, Vector, edges, generate
from testing import packed

LIBRARY = {str(name).split(":")[-1]: r for path in FILES for r, name in load_file(path)}


@pytest.mark.parametrize("name", ["p01", "p16", "p20", "p25", "sort3"])
def test_the_edge_cases_come_first_and_in_the_reference_generators_order(name):
    """Every combination of the inputs' edge cases inside the domain, up to half the
    batch: as many rows as that, equal to the reference generator's first rows."""
    r = LIBRARY[name]
    drawn = generate_batch(r, 2000, seed=5)
    reference = [v.args for v in generate(r, 2000, seed=5)]
    grids = [edges(t.width) if t.name != "ptr" else [DATA_ADDRESS] for t in r.params]
    combos = filter(lambda c: interp.admits(r, c), itertools.product(*grids))
    first = len(list(itertools.islice(combos, 1000))) if any(
        t.name != "ptr" for t in r.params) else 0  # the sorts' only input is their pointer
    assert [tuple(int(x) for x in row) for row in drawn.args[:first]] == reference[:first]
    assert first == 0 or tuple(int(x) for x in drawn.args[first]) != reference[first]


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_every_vector_is_inside_the_domain_and_of_its_inputs_widths(name):
    r = LIBRARY[name]
    drawn = generate_batch(r, 3000, seed=1)
    assert drawn.args.shape == (3000, len(r.params))
    for row in drawn.args[::7]:
        args = tuple(int(x) for x in row)
        assert interp.admits(r, args)
        for value, t in zip(args, r.params, strict=True):
            assert value == DATA_ADDRESS if t.name == "ptr" else value < 1 << t.width
    assert (drawn.memory is None) == (not r.uses_memory)


def test_the_same_seed_draws_the_same_and_another_seed_other_values():
    r = LIBRARY["p23"]
    a, b, c = (generate_batch(r, 5000, seed=s) for s in (3, 3, 4))
    assert np.array_equal(a.args, b.args) and not np.array_equal(a.args, c.args)


def test_the_random_values_mix_the_four_kinds():
    """A quarter each of any value, small ones of either sign, powers of two give or take
    2 and edge cases: at 32 bits, small values (below 9 or above -9) and values near a
    power of two stand out against uniform draws, which are almost never either."""
    w = 32
    r = LIBRARY["p23"]
    values = generate_batch(r, 40_000, seed=2).args[20_000:, 0].astype(np.int64)
    small = np.mean((values < 9) | (values > (1 << w) - 9))
    near_power = np.mean([min(abs(int(v) - (1 << k)) for k in range(w)) <= 2
                          for v in values[:4000]])
    assert 0.25 <= small <= 0.45  # the small kind, and small edges and powers
    assert 0.45 <= near_power <= 0.70  # powers, most edge cases, some small values
    assert len(set(values.tolist())) > 5000  # and the uniform quarter


def test_memory_windows_repeat_words_as_sorting_needs():
    r = LIBRARY["sort5"]
    drawn = generate_batch(r, 2000, seed=9)
    assert drawn.memory.shape == (2000, DATA_SIZE)
    words = drawn.memory.view("<u4")
    distinct = np.array([len(set(row.tolist())) for row in words])
    assert distinct.max() <= 16 and np.mean(distinct <= 4) > 0.5  # pools of 2, 4, 16
    assert len({row.tobytes() for row in drawn.memory}) > 1900  # yet the windows differ


@pytest.mark.parametrize("name", ["p01", "p25", "sort4"])
def test_packed_as_the_reference_encoder_packs_the_same_vectors(name):
    r = LIBRARY[name]
    drawn = generate_batch(r, 300, seed=2)
    windows = [None if drawn.memory is None else Memory(DATA_ADDRESS, row.tobytes())
               for row in (drawn.memory if drawn.memory is not None else drawn.args)]
    vectors = [Vector(tuple(int(x) for x in row), window)
               for row, window in zip(drawn.args, windows, strict=True)]
    assert batch.pack_batch(r, drawn) == packed.pack_inputs(r, vectors)



@pytest.mark.parametrize("name", ["p01", "p25", "sort4"])
def test_packed_records_read_and_written_as_the_reference_codec_does(name):
    """The motherboard's numpy views of packed records (motherboard/batch.py, in place)
    against the probe form's own per-vector codec: inputs read back as the vectors
    packed, outputs as probe_result reads them, and written back byte for byte."""
    r = LIBRARY[name]
    drawn = generate_batch(r, 300, seed=3)
    data = batch.pack_batch(r, drawn)
    arrays = batch.input_arrays(r, data)
    vectors = packed.unpack_inputs(r, data)
    assert [tuple(int(x) for x in row) for row in arrays.args] == [v.args for v in vectors]
    if r.uses_memory:
        assert [row.tobytes() for row in arrays.memory] == [v.memory.data for v in vectors]
    evaluations = [interp.run(r, v.args, v.memory) for v in vectors]
    out = packed.pack_outputs(r, evaluations)
    read = batch.output_arrays(r, out)
    want = packed.outputs(r, out)
    if r.result is not None:
        assert [int(x) for x in read.result] == [e.result for e in want]
    if r.uses_memory:
        assert [row.tobytes() for row in read.memory] == [e.memory.data for e in want]
    assert batch.pack_output_arrays(r, read) == out
