"""The routines tasks name (by ID), and the inputs a task's batch is made of."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from motherboard import batch
from probes.routine import layout_of
from sem import batch_interp, interp
from sem.batch_vectors import generate_batch
from sem.canon import SHORT, routine_id
from sem.interp import Evaluation
from sem.ir import Routine
from sem.library import FILES
from sem.loader import load_file
from sem.vectors import Vector


class UnknownRoutineName(LookupError):
    """A task names a routine the motherboard does not know."""


@dataclass(frozen=True)
class RoutineBook:
    """Routines by ID, with their names (NAMESPACE:NAME, e.g. hd:p23)."""

    routines: dict[str, Routine]
    names: dict[str, str]  # ID -> name

    @classmethod
    def library(cls) -> RoutineBook:
        """The starter library: Hacker's Delight p01-p25 and sort3/4/5."""
        return _library()

    def resolve(self, ref: str) -> str:
        """The ID of a routine given by ID, unique ID prefix, NAMESPACE:NAME or NAME."""
        if ref in self.routines:
            return ref
        matches = [rid for rid, name in self.names.items()
                   if ref in (name, name.split(":", 1)[-1])
                   or (len(ref) >= 6 and rid.startswith(ref))]
        if len(matches) != 1:
            known = ", ".join(sorted(self.names.values()))
            raise UnknownRoutineName(f"routine {ref!r} is {'ambiguous' if matches else 'unknown'}:"
                                     f" name one of {known}")
        return matches[0]

    def routine(self, rid: str) -> Routine:
        return self.routines[rid]

    def name(self, rid: str) -> str:
        return self.names.get(rid, rid[:SHORT])

    def short(self, rid: str) -> str:
        """The name without its namespace (p23, sort5)."""
        return self.name(rid).split(":", 1)[-1]

    def packed_inputs(self, rid: str, size: int, seed: int) -> bytes:
        """A task's own batch, packed: `size` vectors, edge cases first, deterministic per
        seed (sem/batch_vectors.py)."""
        r = self.routines[rid]
        return batch.pack_batch(r, generate_batch(r, size, seed=seed))

    def inputs(self, rid: str, size: int, seed: int) -> tuple[Vector, ...]:
        """A task's own batch as vectors (`packed_inputs` unpacked)."""
        r = self.routines[rid]
        return tuple(batch.unpack_inputs(r, self.packed_inputs(rid, size, seed)))

    def evaluate(self, rid: str, vector: Vector) -> Evaluation:
        """The interpreter's answer: the truth every board's answer is checked against."""
        return interp.run(self.routines[rid], vector.args, vector.memory)

    def answers(self, rid: str, inputs: bytes) -> bytes:
        """The interpreter's answers to a packed batch, packed as a board's result is: by
        the batch interpreter where it can, else a vector at a time (a repeated vector, as
        calibration tasks repeat theirs, evaluated once)."""
        r, truth = self.routines[rid], {}
        if batch_interp.supports(r):
            results = batch_interp.run_many(r, batch.input_words(r, inputs))
            return batch.pack_result_words(r, results)
        return batch.pack_outputs(r, [truth[v] if v in truth else truth.setdefault(
            v, self.evaluate(rid, v)) for v in batch.unpack_inputs(r, inputs)])

    def disagreements(self, rid: str, inputs: bytes, outputs: bytes,
                      indices: Sequence[int]) -> list[int]:
        """Of `indices`, the vectors whose packed output is not the interpreter's answer
        to the packed input, inside the routine's domain (outside it every answer is
        right): all at once by the batch interpreter for a routine without memory (a
        100,000-vector answer in milliseconds), else one by one."""
        r = self.routines[rid]
        if not batch_interp.supports(r):
            return self.disagreements_one_by_one(rid, inputs, outputs, indices)
        chosen = np.asarray(indices, dtype=np.int64)
        args = batch.input_words(r, inputs)[chosen]
        differ = batch_interp.run_many(r, args) != batch.result_words(r, outputs)[chosen]
        return chosen[differ & batch_interp.admits_many(r, args)].tolist()

    def disagreements_one_by_one(self, rid: str, inputs: bytes, outputs: bytes,
                                 indices: Sequence[int]) -> list[int]:
        """`disagreements` by the reference interpreter, a vector at a time (a record
        seen before is not interpreted again: calibration tasks repeat theirs)."""
        r = self.routines[rid]
        stride = batch.in_stride(layout_of(r))
        truth: dict[bytes, Evaluation | None] = {}  # None: outside the domain

        def expected(i: int) -> Evaluation | None:
            record = inputs[i * stride:(i + 1) * stride]
            if record not in truth:
                vector = batch.input_at(r, inputs, i)
                truth[record] = self.evaluate(rid, vector) if self.admits(rid, vector) else None
            return truth[record]

        return [i for i in indices
                if (want := expected(i)) is not None and want != batch.output(r, outputs, i)]

    def admits(self, rid: str, vector: Vector) -> bool:
        """Whether the vector is inside the routine's domain (its precondition): outside
        it every answer is right, as the reference C leaves it undefined.  A task's own
        inputs are inside (generate_batch draws them there); a graph child's, made of its
        parents' outputs, need not be."""
        return interp.admits(self.routines[rid], vector.args)


@cache
def _library() -> RoutineBook:
    routines, names = {}, {}
    for path in FILES:
        for r, name in load_file(path):
            rid = routine_id(r)
            routines[rid] = r
            names[rid] = str(name)
    return RoutineBook(routines, names)
