"""A task's inputs and outputs on the wire: packed as the batch probe form's records.

Each input vector is its probe input record (probes/routine.py: the scalar inputs as
u64, then the memory window), each output the probe's output record (the result word,
then the memory window after the run), back to back.  So an Award and a Result are
one bytes object each, whatever the batch size, and a live board slices them into
batch probes and back without touching a vector in Python.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from probes.routine import (
    OUTPUT_MEMORY_OFFSET,
    RESULT_OFFSET,
    WORD,
    ProbeLayout,
    layout_of,
)
from sem.batch_interp import BatchEvaluation
from sem.batch_vectors import VectorArrays
from sem.ir import Routine
from sem.vectors import DATA_ADDRESS


class BatchError(ValueError):
    """Packed inputs or outputs that do not fit the routine's records."""


def _slot(records: np.ndarray, at: int) -> np.ndarray:
    """The little-endian u64 at byte `at` of each record (a row of bytes), in place: a
    strided view, no copy (a graph task's records were copied and converted two or three
    times over, 1.2 ms for a 40,000-vector task between its parent's answer and its inputs
    going out)."""
    return records[:, at:at + WORD].view("<u8")[:, 0]


def _words(records: np.ndarray, at: int) -> np.ndarray:
    """The little-endian u64 at byte `at` of each record, as an array of its own."""
    return _slot(records, at).astype(np.uint64)


def _put_words(records: np.ndarray, at: int, values: np.ndarray) -> None:
    _slot(records, at)[:] = values


def in_stride(layout: ProbeLayout) -> int:
    return layout.input_memory_offset + layout.memory_size


def pack_batch(r: Routine, drawn: VectorArrays) -> bytes:
    """Vectors drawn as arrays (sem/batch_vectors.py) packed as input records."""
    layout = layout_of(r)
    n, stride = len(drawn.args), in_stride(layout)
    records = np.zeros((n, stride), dtype=np.uint8)
    for slot, i in enumerate(layout.scalars):
        _put_words(records, WORD * slot, drawn.args[:, i])
    if layout.memory_size:
        at = layout.input_memory_offset
        records[:, at:at + layout.memory_size] = drawn.memory
    return records.tobytes()


def input_arrays(r: Routine, data: bytes) -> VectorArrays:
    """Packed inputs as arrays, for the batch interpreter: a row per vector, a column per
    input (uint64; a pointer input holds DATA_ADDRESS, where the window is), and the
    memory windows (uint8; None for a routine without memory)."""
    layout = layout_of(r)
    stride = in_stride(layout)
    records = np.frombuffer(data, dtype=np.uint8).reshape(len(data) // stride, stride)
    args = np.full((len(records), len(r.params)), DATA_ADDRESS, dtype=np.uint64)
    for slot, i in enumerate(layout.scalars):
        args[:, i] = _words(records, WORD * slot)
    at = layout.input_memory_offset
    memory = records[:, at:at + layout.memory_size] if layout.memory_size else None
    return VectorArrays(args, memory)


def output_arrays(r: Routine, data: bytes) -> BatchEvaluation:
    """Packed outputs as arrays: each result cut to the routine's result width
    (probe_result's reading), and each memory window after the run."""
    layout = layout_of(r)
    stride = layout.output_size
    records = np.frombuffer(data, dtype=np.uint8).reshape(len(data) // stride, stride)
    result = None
    if r.result is not None:
        result = _words(records, RESULT_OFFSET) & np.uint64((1 << r.result.width) - 1)
    memory = (records[:, OUTPUT_MEMORY_OFFSET:OUTPUT_MEMORY_OFFSET + layout.memory_size]
              if layout.memory_size else None)
    return BatchEvaluation(result, memory)


def pack_output_arrays(r: Routine, outputs: BatchEvaluation) -> bytes:
    """Outputs as arrays (the batch interpreter's) packed as output records."""
    layout = layout_of(r)
    n = len(outputs.result if outputs.result is not None else outputs.memory)
    records = np.zeros((n, layout.output_size), dtype=np.uint8)
    if outputs.result is not None:
        _put_words(records, RESULT_OFFSET, outputs.result)
    if layout.memory_size:
        records[:, OUTPUT_MEMORY_OFFSET:OUTPUT_MEMORY_OFFSET + layout.memory_size] = \
            outputs.memory
    return records.tobytes()


def out_stride(r: Routine) -> int:
    return layout_of(r).output_size


def count(r: Routine, data: bytes) -> int | None:
    """How many outputs `data` holds, or None when it is no whole number of records."""
    stride = out_stride(r)
    return None if len(data) % stride else len(data) // stride


def compose(r: Routine, own: bytes, parents: Sequence[tuple[Routine, bytes]]) -> bytes:
    """A graph task's packed inputs from its own and its parents' packed outputs: what
    workload.compose_inputs does to vectors, done on the records with numpy: it sits
    between a parent's answer and its child's inputs going out (a 40,000-vector task
    with two parents: 0.25 ms in place, 1.2 ms with each slot copied out and back; a
    10,000-vector one took a tenth of a second in Python).

    `parents`: (routine, packed outputs) in the task's `after` order."""
    layout = layout_of(r)
    stride = in_stride(layout)
    n = len(own) // stride
    inputs = np.frombuffer(own, dtype=np.uint8).reshape(n, stride).copy()
    results = [(p, np.frombuffer(data, dtype=np.uint8).reshape(-1, out_stride(p)))
               for p, data in parents if p.result is not None and data]
    windows = next((np.frombuffer(data, dtype=np.uint8).reshape(-1, out_stride(p))
                    for p, data in parents if p.uses_memory and data), None)
    # vector i takes output i of each parent, cycling through a parent's outputs (np.resize)
    for k, position in enumerate(layout.scalars):
        if not results:
            break
        parent, records = results[k % len(results)]
        mask = ((1 << parent.result.width) - 1) & ((1 << r.params[position].width) - 1)
        _put_words(inputs, WORD * k, np.resize(_slot(records, RESULT_OFFSET), n) & np.uint64(mask))
    if layout.memory_size and windows is not None:
        at, size = layout.input_memory_offset, layout.memory_size
        inputs[:, at:at + size] = \
            windows[np.arange(n) % len(windows), OUTPUT_MEMORY_OFFSET:OUTPUT_MEMORY_OFFSET + size]
    return inputs.tobytes()


def pick(r: Routine, inputs: bytes, outputs: bytes, positions: Sequence[int]
         ) -> tuple[bytes, bytes]:
    """The packed inputs and outputs of the vectors at `positions` only, in that order."""
    chosen = np.asarray(positions, dtype=np.int64)
    stride_in, stride_out = in_stride(layout_of(r)), out_stride(r)
    ins = np.frombuffer(inputs, dtype=np.uint8).reshape(-1, stride_in)
    outs = np.frombuffer(outputs, dtype=np.uint8).reshape(-1, stride_out)
    return ins[chosen].tobytes(), outs[chosen].tobytes()


def corrupt(data: bytes, stride: int) -> bytes:
    """Outputs that are surely wrong: in every record the result's lowest bit flipped,
    and the memory window's first byte (a routine has one or the other, or both)."""
    out = bytearray(data)
    for base in range(0, len(out), stride):
        out[base + RESULT_OFFSET] ^= 1
        if stride > OUTPUT_MEMORY_OFFSET:
            out[base + OUTPUT_MEMORY_OFFSET] ^= 1
    return bytes(out)
