"""Test vectors at the machine level: a routine's inputs placed in registers as the
platform ABI places them, everything else the program may read made random (the
upper bits of a 32-bit x86 argument, every other register, the flags, the value
undefined results take), and what the routine must leave: its result as the ABI
returns it, and its memory.

`TestSet` packs them into the arrays the evaluator kernels take (chunks of
codegen.CHUNK vectors; the last chunk is filled up by repeating vectors).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from evolution.codegen import CHUNK
from evolution.isa import Isa
from sem import interp
from sem.interp import Memory
from sem.ir import Routine
from sem.vectors import DATA_ADDRESS, Vector, generate

WORD = 4  # memory results are compared (and credited when misplaced) as 32-bit words


def footprint(spec: Routine) -> int:
    """Bytes of memory the routine touches from its pointer input (offsets from 0)."""
    from sem.canon import postorder

    end = 0
    for n in postorder(spec):
        if n.op == "load":
            end = max(end, n.attr + n.width // 8)
        elif n.op == "store":
            if n.attr < 0:
                raise ValueError("memory below the pointer input is not supported")
            end = max(end, n.attr + n.args[2].width // 8)
    return end


@dataclass(frozen=True)
class MachineVector:
    args: tuple[int, ...]  # the routine's inputs
    registers: tuple[int, ...]  # every register's initial value, arguments placed by the ABI
    flags: tuple[int, ...]
    undefined: int  # what every undefined result is in this vector (the evaluator's choice)
    memory: bytes  # the routine's memory window at DATA_ADDRESS


def place(isa: Isa, spec: Routine, args: tuple[int, ...], rng: random.Random,
          memory: bytes = b"") -> MachineVector:
    regs = [rng.getrandbits(64) for _ in isa.registers]
    if isa.zero_register is not None:
        regs[isa.zero_register] = 0
    for t, value, name in zip(spec.params, args, isa.abi.args, strict=False):
        w = t.width
        if w < 64 and isa.abi.narrow_args == "sign":
            value = value - (1 << w) if value >> (w - 1) & 1 else value
        elif w < 64:
            value = rng.getrandbits(64 - w) << w | value  # x86-64: upper bits undefined
        regs[isa.number(name)] = value & (2**64 - 1)
    flags = tuple(rng.getrandbits(1) for _ in isa.flags)
    return MachineVector(tuple(args), tuple(regs), flags, rng.getrandbits(64), memory)


def expected(isa: Isa, spec: Routine, v: MachineVector) -> tuple[int, bytes]:
    """The result register's value as the ABI returns it (the compared bits: see
    result_mask) and the memory window afterwards."""
    window = Memory(DATA_ADDRESS, v.memory) if spec.uses_memory else None
    out = interp.run(spec, v.args, window)
    result = 0
    if out.result is not None:
        w = spec.result_width
        result = out.result
        if w < 64 and isa.abi.narrow_result == "sign" and result >> (w - 1) & 1:
            result = (result - (1 << w)) & (2**64 - 1)
    return result, (out.memory.data if out.memory is not None else v.memory)


def result_mask(isa: Isa, spec: Routine) -> int:
    w = spec.result_width or 64
    return (1 << w) - 1 if w < 64 and isa.abi.narrow_result == "low" else 2**64 - 1


def machine_vectors(isa: Isa, spec: Routine, count: int, seed: int) -> list[MachineVector]:
    """sem.vectors' cases (edge cases first, then random; inside the routine's domain),
    placed by the ABI."""
    rng = random.Random(seed)
    size = footprint(spec)
    out = []
    for v in generate(spec, count, seed):
        memory = v.memory.data[:size] if isinstance(v, Vector) and v.memory is not None else b""
        out.append(place(isa, spec, v.args, rng, memory))
    return out


class TestSet:
    """Vectors and expectations as evaluator arrays.  `candidates`: the registers where a
    misplaced result earns STOKE's credit (those a search writes; default every one)."""

    __test__ = False  # not a pytest class

    def __init__(self, isa: Isa, spec: Routine, vectors: list[MachineVector],
                 candidates: tuple[int, ...] | None = None):
        self.isa, self.spec, self.vectors = isa, spec, list(vectors)
        self.candidates = tuple(range(len(isa.registers))) if candidates is None else candidates
        self.size = footprint(spec)
        self._pack()

    def add(self, v: MachineVector) -> None:
        """A counterexample joins the vectors (first, so it is checked first)."""
        self.vectors.insert(0, v)
        self._pack()

    def _pack(self) -> None:
        isa, vs = self.isa, self.vectors
        n = -(-len(vs) // CHUNK) * CHUNK
        padded = [vs[i % len(vs)] for i in range(n)]
        chunks = n // CHUNK
        nflags = max(1, len(isa.flags))
        self.R0 = np.zeros((chunks, len(isa.registers), CHUNK), dtype=np.uint64)
        self.F0 = np.zeros((chunks, nflags, CHUNK), dtype=np.uint8)
        self.M0 = np.zeros((chunks, CHUNK, self.size), dtype=np.uint8)
        self.U = np.zeros((chunks, CHUNK), dtype=np.uint64)
        self.EXP = np.zeros((chunks, CHUNK), dtype=np.uint64)
        self.EXPM = np.zeros((chunks, CHUNK, self.size), dtype=np.uint8)
        for i, v in enumerate(padded):
            c, lane = divmod(i, CHUNK)
            self.R0[c, :, lane] = np.array(v.registers, dtype=np.uint64)
            if isa.flags:
                self.F0[c, :, lane] = v.flags
            self.U[c, lane] = v.undefined
            if self.size:
                self.M0[c, lane, :] = np.frombuffer(v.memory, dtype=np.uint8)
            result, memory = expected(isa, self.spec, v)
            self.EXP[c, lane] = result
            if self.size:
                self.EXPM[c, lane, :] = np.frombuffer(memory, dtype=np.uint8)
        spec = self.spec
        words = self.size // WORD if spec.uses_memory else 0
        mask = result_mask(isa, spec)
        header = [int(spec.result is not None), isa.number(isa.abi.result),
                  mask - (1 << 64) if mask >> 63 else mask, words, len(self.candidates)]
        preserved = [isa.number(r) for r in isa.abi.preserved]
        self.spec_array = np.array(header + list(self.candidates) + preserved, dtype=np.int64)
