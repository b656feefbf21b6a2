"""Packed batches one vector at a time, for the tests: the references the motherboard's
array packing (motherboard/batch.py) and its checks (the batch interpreter) are held to.
Each record is encoded and decoded by the probe ABI's own per-vector functions
(probes/routine.py `encode_inputs`, `probe_result`), each answer is `interp.run`'s."""

from __future__ import annotations

from collections.abc import Sequence

from motherboard.batch import BatchError, in_stride, out_stride
from motherboard.entries import TaskEntry
from motherboard.market import Motherboard
from motherboard.routines import RoutineBook
from motherboard.workload import compose_inputs
from probes.routine import WORD, encode_inputs, layout_of, probe_result
from sem import interp
from sem.interp import Evaluation, Memory
from sem.ir import Routine
from sem.vectors import DATA_ADDRESS, Vector


def pack_inputs(r: Routine, vectors: Sequence[Vector]) -> bytes:
    layout = layout_of(r)
    return b"".join(encode_inputs(layout, v) for v in vectors)


def unpack_inputs(r: Routine, data: bytes) -> list[Vector]:
    """The vectors packed inputs hold (pointer inputs point at the memory window)."""
    layout = layout_of(r)
    stride = in_stride(layout)
    if stride == 0 or len(data) % stride:
        raise BatchError(f"{len(data)} bytes of inputs are no whole number of {stride}-byte"
                         " records")
    out = []
    for base in range(0, len(data), stride):
        scalars = iter(range(len(layout.scalars)))
        args = []
        for t in layout.params:
            if t == "ptr":
                args.append(DATA_ADDRESS)
            else:
                at = base + WORD * next(scalars)
                args.append(int.from_bytes(data[at:at + WORD], "little"))
        memory = None
        if layout.memory_size:
            at = base + layout.input_memory_offset
            memory = Memory(DATA_ADDRESS, bytes(data[at:at + layout.memory_size]))
        out.append(Vector(tuple(args), memory))
    return out


def pack_outputs(r: Routine, evaluations: Sequence[Evaluation]) -> bytes:
    """Evaluations as the probe form writes them."""
    layout = layout_of(r)
    out = bytearray()
    for e in evaluations:
        out += (e.result or 0).to_bytes(WORD, "little")
        if layout.memory_size:
            out += e.memory.data
    return bytes(out)


def output(r: Routine, data: bytes, i: int) -> Evaluation:
    stride = out_stride(r)
    return probe_result(r, data[i * stride:(i + 1) * stride])


def outputs(r: Routine, data: bytes) -> list[Evaluation]:
    return [output(r, data, i) for i in range(len(data) // out_stride(r))]


def own_inputs(book: RoutineBook, rid: str, size: int, seed: int) -> tuple[Vector, ...]:
    """A task's own batch as vectors (RoutineBook.packed_inputs unpacked)."""
    return tuple(unpack_inputs(book.routine(rid), book.packed_inputs(rid, size, seed)))


def task_inputs(mb: Motherboard, task: TaskEntry) -> list[Vector]:
    """A task's inputs as vectors, as they travelled."""
    return unpack_inputs(mb.book.routine(task.routine), task.packed)


def evaluate(book: RoutineBook, rid: str, vector: Vector) -> Evaluation:
    """The reference interpreter's answer."""
    return interp.run(book.routine(rid), vector.args, vector.memory)


def admits(book: RoutineBook, rid: str, vector: Vector) -> bool:
    return interp.admits(book.routine(rid), vector.args)


def composed_inputs(mb: Motherboard, child: TaskEntry) -> tuple[Vector, ...]:
    """What a graph child's inputs should be, vector by vector: its own, with its
    parents' reference answers to what they were given written in (workload.
    compose_inputs)."""
    truth = []
    for p in (mb.tasks[q] for q in child.after):
        seen = task_inputs(mb, p)
        truth.append((seen, tuple(evaluate(mb.book, p.routine, v) for v in seen)))
    own = own_inputs(mb.book, child.routine, child.size, child.seed)
    return compose_inputs(mb.book.routine(child.routine), own, truth)
