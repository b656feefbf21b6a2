"""The routines tasks name (by ID), and the inputs a task's batch is made of."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from motherboard import batch
from sem import batch_interp
from sem.batch_vectors import generate_batch
from sem.canon import SHORT, routine_id
from sem.ir import Routine
from sem.library import FILES
from sem.loader import load_file


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

    def answers(self, rid: str, inputs: bytes) -> bytes:
        """The interpreter's answers to a packed batch (its batch form's), packed as a
        board's result is."""
        r = self.routines[rid]
        drawn = batch.input_arrays(r, inputs)
        return batch.pack_output_arrays(r, batch_interp.run_many(r, drawn.args, drawn.memory))

    def disagreements(self, rid: str, inputs: bytes, outputs: bytes,
                      indices: Sequence[int]) -> list[int]:
        """Of `indices`, the vectors whose packed output is not the interpreter's answer
        to the packed input, inside the routine's domain (outside it every answer is
        right): all at once, by the interpreter's batch form (sem/batch_interp.py: a
        50,000-vector answer in milliseconds)."""
        r = self.routines[rid]
        chosen = np.asarray(indices, dtype=np.int64)
        drawn = batch.input_arrays(r, inputs)
        args = drawn.args[chosen]
        want = batch_interp.run_many(r, args, None if drawn.memory is None
                                     else drawn.memory[chosen])
        got = batch.output_arrays(r, outputs)
        differ = np.zeros(len(chosen), dtype=bool)
        if want.result is not None:
            differ |= want.result != got.result[chosen]
        if want.memory is not None:
            differ |= (want.memory != got.memory[chosen]).any(axis=1)
        return chosen[differ & batch_interp.admits_many(r, args)].tolist()

@cache
def _library() -> RoutineBook:
    routines, names = {}, {}
    for path in FILES:
        for r, name in load_file(path):
            rid = routine_id(r)
            routines[rid] = r
            names[rid] = str(name)
    return RoutineBook(routines, names)
