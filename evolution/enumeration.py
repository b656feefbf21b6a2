"""Enumeration: every short instruction sequence over a space's instances, the classic
superoptimiser's way, in compiled code (kernel_template.window_search).

Two uses.  `shortest`: whole programs of 1, 2, 3... instructions, the first right on
every test vector.  `peephole`: windows of a correct program (k consecutive
instructions) replaced by every sequence of fewer instructions that leaves the
program right on every vector.  Both prune as superoptimisers do: an instruction may
read only registers (and flags) that hold something by then, a state met before at
the same depth or a shallower one is not expanded again (observational equivalence
on the first chunk of vectors), and a whole program's last instruction must write
the result register.  What they return is right on the vectors only: the caller
proves it (evolve does, with Z3 at full width) before it is used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache

import numpy as np

from evolution.evaluator import kernels
from evolution.isa import MEM, REG, Form, Isa, Sem
from evolution.program import MachineProgram, decode, encode
from evolution.search import SearchSpace, instances
from evolution.testset import TestSet
from sem.ir import Node, trunc

FLAGS_BIT = 1 << 40  # in the read/write masks: the flags (registers are bits 0..39)
TABLE_SIZE = 1 << 21  # fingerprints of the states met (observational equivalence)
KEEP = 16  # programs a call returns at most
RATE = 500_000  # instances executed per second, about (one loaded core), to size a call


@dataclass(frozen=True)
class FormEffects:
    """What a form reads and writes: operand positions, implicit registers, flags."""

    read_operands: tuple[int, ...]
    written_operands: tuple[int, ...]
    read_mask: int  # implicit registers, and FLAGS_BIT when it reads a flag
    written_mask: int


@cache
def form_effects(isa: Isa, form: Form) -> FormEffects:
    """Runs the form's semantics on symbolic inputs and records the keys it touches."""
    def supply(key):
        if key == "mem":
            return Node("mem", 0)
        if key[0] == "flag":
            return trunc(Node("param", 8, (), 0), 1)
        return Node("param", 64, (), 0)

    def undefined(width: int) -> Node:
        value = Node("param", 64, (), 1)
        return value if width == 64 else trunc(value, width)

    sem = Sem(supply, undefined)
    form.semantics(sem)
    read_ops, read_mask = [], 0
    for key in sem.inputs:
        if key == "mem":
            continue
        kind, what = key
        if kind == "op" and form.operands[what].kind in (REG, MEM):
            read_ops.append(what)
        elif kind == "reg":
            read_mask |= 1 << isa.number(what)
        elif kind == "flag":
            read_mask |= FLAGS_BIT
    written_ops, written_mask = [], 0
    for key, _ in sem.outputs:
        if key == "mem":
            continue
        kind, what = key
        if kind == "op":
            written_ops.append(what)
        elif kind == "reg":
            written_mask |= 1 << isa.number(what)
        else:
            written_mask |= FLAGS_BIT
    # a memory operand's base register is read to form the address
    read_ops += [i for i, o in enumerate(form.operands) if o.kind == MEM and i not in read_ops]
    return FormEffects(tuple(read_ops), tuple(written_ops), read_mask, written_mask)


def masks(isa: Isa, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's registers read and written (bit masks, FLAGS_BIT for the flags)."""
    reads = np.zeros(len(rows), dtype=np.int64)
    writes = np.zeros(len(rows), dtype=np.int64)
    for k, row in enumerate(rows):
        if row[0] == 0:
            continue
        form = isa.form(int(row[0]))
        e = form_effects(isa, form)
        slots = form.register_operands
        r, w = e.read_mask, e.written_mask
        for position in e.read_operands:
            r |= 1 << int(row[1 + slots.index(position)])
        for position in e.written_operands:
            w |= 1 << int(row[1 + slots.index(position)])
        reads[k], writes[k] = r, w
    return reads, writes


@dataclass
class Enumerator:
    """A space's instances with their read/write masks, ready for the kernel."""

    isa: Isa
    space: SearchSpace
    rows: np.ndarray
    reads: np.ndarray
    writes: np.ndarray
    hash_registers: np.ndarray
    table: np.ndarray
    depths: np.ndarray

    @classmethod
    def build(cls, isa: Isa, s: SearchSpace, immediates_per_form: int = 12) -> Enumerator:
        rows = instances(isa, s, immediates_per_form)
        reads, writes = masks(isa, rows)
        written = int(np.bitwise_or.reduce(writes)) if len(writes) else 0
        hashed = [r for r in range(len(isa.registers)) if written >> r & 1]
        return cls(isa, s, rows, reads, writes, np.array(hashed or [0], dtype=np.int64),
                   np.zeros(TABLE_SIZE, dtype=np.uint64), np.zeros(TABLE_SIZE, dtype=np.int64))

    def arguments_defined(self, spec_params: int) -> int:
        """Registers that hold something when a program starts: the arguments (and a
        register that always reads zero)."""
        mask = 0
        for name in self.isa.abi.args[:spec_params]:
            mask |= 1 << self.isa.number(name)
        if self.isa.zero_register is not None:
            mask |= 1 << self.isa.zero_register
        return mask

    def replace(self, testset: TestSet, program: MachineProgram, a: int, b: int, j: int,
                defined: int, limit: int, last_writes: int = 0) -> tuple[list[MachineProgram], int]:
        """Programs made by putting j instances in place of instructions a..b-1 that are
        right on every vector (at most KEEP), and the instances executed."""
        n = len(program.insns)
        rows = encode(self.isa, program, max(n, 1))
        total = a + j + n - b
        out = np.zeros((KEEP, max(total, 1), 5), dtype=np.int64)
        t = testset
        found, executed = kernels(self.isa.name).window_search(
            rows, n, a, b, j, self.rows, self.reads, self.writes, defined, last_writes,
            self.hash_registers, t.R0, t.F0, t.M0, t.U, t.EXP, t.EXPM, t.spec_array, out, limit,
            self.table, self.depths)
        return [decode(self.isa, out[i, :total]) for i in range(found)], int(executed)


def shortest(e: Enumerator, testset: TestSet, params: int, result_register: int,
             max_length: int, limit: int, deadline: float | None = None
             ) -> tuple[list[MachineProgram], int]:
    """Whole programs of the fewest instructions (up to max_length, the return not
    counted) right on every vector, and the instances executed."""
    empty = MachineProgram(e.isa.name, ())
    defined = e.arguments_defined(params)
    executed = 0
    for length in range(1, max_length + 1):
        if deadline is not None and time.perf_counter() >= deadline:
            break
        allowed = limit - executed
        if deadline is not None:  # a kernel call cannot be stopped: size it to the time left
            allowed = min(allowed, int((deadline - time.perf_counter()) * RATE))
        found, count = e.replace(testset, empty, 0, 0, length, defined, allowed,
                                 last_writes=1 << result_register)
        executed += count
        if found or executed >= limit:
            return found, executed
    return [], executed


def peephole(e: Enumerator, testset: TestSet, program: MachineProgram, params: int,
             max_window: int, max_replacement: int, limit: int,
             deadline: float | None = None) -> tuple[list[MachineProgram], int]:
    """Shorter programs made by replacing a window of `program` (at most max_window
    instructions) by fewer instructions (at most max_replacement), the smallest
    replacements first; stops at the first window that gives any.  Also the instances
    executed."""
    n = len(program.insns)
    rows = encode(e.isa, program, max(n, 1))
    _, writes = masks(e.isa, rows)
    before = [e.arguments_defined(params)]
    for k in range(n):
        before.append(before[-1] | int(writes[k]))
    executed = 0
    for j in range(0, max_replacement + 1):
        for size in range(j + 1, min(max_window, n) + 1):
            for a in range(0, n - size + 1):
                if executed >= limit or (deadline is not None
                                         and time.perf_counter() >= deadline):
                    return [], executed
                allowed = limit - executed
                if deadline is not None:
                    allowed = min(allowed, int((deadline - time.perf_counter()) * RATE))
                found, count = e.replace(testset, program, a, a + size, j, before[a], allowed)
                executed += count
                if found:
                    return found, executed
    return [], executed
