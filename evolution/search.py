"""Stochastic search in the manner of STOKE: Metropolis-Hastings over fixed-length
programs (UNUSED slots make shorter ones), moves = opcode, operand, swap and
instruction, cost = wrongness on the test vectors + the performance model.

The kernel (kernel_template.mcmc) runs whole chains in compiled code; this module
chooses what a search may write (SearchSpace), turns it into the kernel's tables,
and runs chains in batches of iterations, handing back the correct candidates a
batch met (zero wrongness on every vector) for the caller to prove.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from evolution.costmodel import PerformanceModel
from evolution.evaluator import kernels
from evolution.isa import IMM, MEM, REG, Isa, form_effects
from evolution.program import MachineProgram, decode, encode
from evolution.testset import TestSet, footprint
from sem.canon import postorder
from sem.ir import Routine

BEST_KEPT = 8  # correct candidates a batch keeps, lowest performance cost first
# Cumulative move probabilities: STOKE's opcode, operand and swap moves, a register
# exchange, then STOKE's instruction move, which empties its slot with the last
# probability.
MOVES = (0.2, 0.45, 0.55, 0.65, 1.0, 0.5)


@dataclass(frozen=True)
class SearchSpace:
    forms: tuple[str, ...]
    read_registers: tuple[int, ...]
    write_registers: tuple[int, ...]
    bases: tuple[int, ...]  # registers a memory operand may use as its base
    immediates: tuple[int, ...]  # candidates for every immediate, each form keeping those in range
    displacements: tuple[int, ...] = (0,)


def constants(spec: Routine) -> set[int]:
    """The routine's constants, as written and as signed values."""
    out = set()
    for n in postorder(spec):
        if n.op == "const" and n.width > 1:
            out.add(n.attr)
            out.add(n.attr - (1 << n.width) if n.attr >> (n.width - 1) & 1 else n.attr)
    return out


def immediates(spec: Routine, riscv_parts: bool = False) -> tuple[int, ...]:
    """Small integers, shift amounts, the routine's constants and their neighbours (and,
    where a constant is built from a high and a low part, those parts)."""
    pool = set(range(-2, 9)) | {15, 16, 24, 31, 32, 63, 255, -256}
    for value in constants(spec):
        pool |= {value, value - 1, value + 1, -value, ~value}
        if riscv_parts:
            hi = (value + 0x800) >> 12
            pool |= {hi & 0xFFFFF, value - (hi << 12)}
    return tuple(sorted(pool))


def space(isa: Isa, spec: Routine, features: frozenset[str], forms: tuple[str, ...] | None = None,
          scratch: int = 3, avoid: frozenset[str] = frozenset()) -> SearchSpace:
    """The default space: every available form (memory forms only for routines that use
    memory; none slower than 10 cycles; none in `avoid`, the forms a board was seen to
    run otherwise than their semantics), the argument registers, the result register and
    `scratch` more caller-saved ones."""
    if forms is None:
        chosen = []
        for f in isa.available(features):
            if f.latency >= 10 or (f.memory is not None and not spec.uses_memory):
                continue
            if f.name in avoid:
                continue
            if any(o.kind == IMM and o.hi - o.lo > 1 << 40 for o in f.operands):
                continue  # 64-bit immediates: no routine of ours needs one
            chosen.append(f.name)
        forms = tuple(chosen)
    args = [isa.number(a) for a in isa.abi.args[: len(spec.params)]]
    regs = list(dict.fromkeys([*args, isa.number(isa.abi.result)]))
    regs += [n for n in map(isa.number, isa.scratch) if n not in regs][:scratch]
    # a register a form writes of itself (x86 mul's rdx) may be read after it
    written = 0
    for name in forms:
        written |= form_effects(isa, isa.by_name[name]).written_mask
    implicit = [n for n in map(isa.number, isa.scratch) if n not in regs and written >> n & 1]
    reads = tuple(regs + implicit + ([isa.zero_register] if isa.zero_register is not None
                                     else []))
    pointers = tuple(a for a, t in zip(args, spec.params, strict=True) if t.name == "ptr")
    size = footprint(spec) if spec.uses_memory else 0
    riscv_parts = isa.zero_register is not None
    return SearchSpace(forms, reads, tuple(regs), pointers or tuple(regs),
                       immediates(spec, riscv_parts), tuple(range(0, max(size, 4), 4)))


@dataclass
class Tables:
    """A SearchSpace as the kernel's arrays, indexed by form index."""

    OPS: np.ndarray
    CLASS: np.ndarray
    CLASS_START: np.ndarray
    CLASS_LEN: np.ndarray
    CLASS_MEMBERS: np.ndarray
    KIND: np.ndarray
    NOPER: np.ndarray
    READ_POOL: np.ndarray
    WRITE_POOL: np.ndarray
    BASE_POOL: np.ndarray
    CLASS_POOL: np.ndarray  # writable registers of the one other register class (x86 legacy8)
    IMM_START: np.ndarray
    IMM_LEN: np.ndarray
    IMM_POOL: np.ndarray
    IMM_LO: np.ndarray
    IMM_HI: np.ndarray

    def arrays(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__dataclass_fields__)


def _class_pool(isa: Isa, s: SearchSpace) -> list[int]:
    classes = {o.regs for name in s.forms for o in isa.by_name[name].operands if o.kind == REG}
    others = sorted(classes - {"gpr"})
    if len(others) > 1:
        raise ValueError(f"the search kernel takes one register class besides gpr, not {others}")
    return [r for r in s.write_registers if others and r in isa.in_class(others[0])]


def tables(isa: Isa, s: SearchSpace) -> Tables:
    n = len(isa.forms) + 1
    class_pool = _class_pool(isa, s)
    usable = [name for name in s.forms if class_pool or all(
        o.regs == "gpr" for o in isa.by_name[name].operands)]
    ops = np.array([isa.form_index(name) for name in usable], dtype=np.int64)
    shape = {}
    klass = np.zeros(n, dtype=np.int64)
    kind = np.zeros((n, 3), dtype=np.int64)
    noper = np.ones(n, dtype=np.int64)
    imm_lo = np.zeros(n, dtype=np.int64)
    imm_hi = np.zeros(n, dtype=np.int64)
    pools: list[list[int]] = [[] for _ in range(n)]
    for index in ops:
        f = isa.form(int(index))
        key = (tuple((o.kind, o.width) for o in f.operands), f.fixed)
        klass[index] = shape.setdefault(key, len(shape))
        slot = 0
        for o in f.operands:
            if o.kind == REG:
                kind[index, slot] = 4 if o.regs != "gpr" else 2 if "w" in o.access else 1
                slot += 1
            elif o.kind == MEM:
                kind[index, slot] = 3
                slot += 1
        noper[index] = max(1, slot + (f.immediate_operand is not None))
        if f.immediate_operand is not None:
            o = f.operands[f.immediate_operand]
            imm_lo[index], imm_hi[index] = max(o.lo, -(1 << 63)), min(o.hi, (1 << 63) - 1)
            candidates = s.displacements if o.kind == MEM else s.immediates
            pools[index] = [v for v in candidates if o.lo <= v <= o.hi]
    members = [[int(i) for i in ops if klass[i] == k] for k in range(len(shape))]
    starts = np.cumsum([0] + [len(m) for m in members])[:-1]
    imm_starts = np.cumsum([0] + [len(p) for p in pools])[:-1]
    return Tables(
        ops, klass, np.array(starts, dtype=np.int64),
        np.array([len(m) for m in members], dtype=np.int64),
        np.array([i for m in members for i in m], dtype=np.int64), kind, noper,
        np.array(s.read_registers, dtype=np.int64), np.array(s.write_registers, dtype=np.int64),
        np.array(s.bases, dtype=np.int64), np.array(class_pool or [0], dtype=np.int64),
        np.array(imm_starts, dtype=np.int64),
        np.array([len(p) for p in pools], dtype=np.int64),
        np.array([v for p in pools for v in p] or [0], dtype=np.int64), imm_lo, imm_hi)


@dataclass
class Batch:
    """What one batch of a chain found."""

    correct: list[tuple[float, MachineProgram]]  # (performance cost, program), best first
    cost: float  # the chain's cost at the end of the batch
    evaluations: int  # candidates evaluated on at least one chunk of vectors
    chunks: int
    accepted: int


@dataclass
class Chain:
    """One Markov chain over programs of `slots` slots, resumable batch after batch."""

    isa: Isa
    testset: TestSet
    space: SearchSpace
    model: PerformanceModel
    state: np.ndarray  # the current program's rows
    seed: int
    beta: float = 1.0
    batches: int = 0
    _tables: Tables | None = field(default=None, repr=False)

    @classmethod
    def start(cls, isa: Isa, testset: TestSet, s: SearchSpace, model: PerformanceModel,
              program: MachineProgram, slots: int, seed: int, beta: float = 1.0) -> Chain:
        return cls(isa, testset, s, model, encode(isa, program, slots), seed, beta)

    def run(self, iterations: int) -> Batch:
        if self._tables is None:
            self._tables = tables(self.isa, self.space)
        t = self.testset
        best = np.zeros((BEST_KEPT, *self.state.shape), dtype=np.int64)
        best_perf = np.full(BEST_KEPT, np.inf)
        seed = (self.seed * 1_000_003 + self.batches) % (2**31)
        self.batches += 1
        cost, evaluations, chunks, accepted = kernels(self.isa.name).mcmc(
            self.state, iterations, seed, self.beta, t.R0, t.F0, t.M0, t.U, t.EXP, t.EXPM,
            t.spec_array, self.model.latencies(self.isa), self.model.weights(),
            *self._tables.arrays(), np.array(MOVES, dtype=np.float64), best, best_perf)
        order = np.argsort(best_perf, kind="stable")
        correct = [(float(best_perf[i]), decode(self.isa, best[i])) for i in order
                   if np.isfinite(best_perf[i])]
        return Batch(correct, float(cost), int(evaluations), int(chunks), int(accepted))


def instances(isa: Isa, s: SearchSpace, immediates_per_form: int = 12) -> np.ndarray:
    """Every instance of the space's forms (rows): registers from their pools, immediates
    from the pool, its smallest values and the routine's constants first, at most
    `immediates_per_form` of them (shift amounts all)."""
    t = tables(isa, s)
    rows = []
    spec_constants = set(s.immediates) - set(range(-2, 9))
    small = sorted(s.immediates, key=lambda v: (abs(v) > 8 and v not in spec_constants, abs(v)))
    for index in t.OPS:
        f = isa.form(int(index))
        pools = [{1: s.read_registers, 2: s.write_registers, 3: s.bases,
                  4: tuple(int(r) for r in t.CLASS_POOL)}[int(k)] for k in t.KIND[index] if k]
        values = [0]
        if f.immediate_operand is not None:
            o = f.operands[f.immediate_operand]
            if o.kind == MEM:
                values = list(s.displacements)
            elif len(f.register_operands) == 3:
                # three registers already multiply its instances by the pool's cube: the
                # displacements that step by one only (x86 lea [r + r*k + d])
                values = [v for v in (0, -1, 1) if o.lo <= v <= o.hi]
            elif o.hi - o.lo < 64:
                values = list(range(o.lo, o.hi + 1))
            else:
                values = [v for v in small if o.lo <= v <= o.hi][:immediates_per_form]
        for regs in itertools.product(*pools):
            for v in values:
                rows.append([int(index), *regs, *([0] * (3 - len(regs))), v])
    return np.array(rows, dtype=np.int64)


def neighbours(isa: Isa, s: SearchSpace, testset: TestSet, program: MachineProgram,
               table: np.ndarray, limit: int = 20_000_000,
               keep: int = 16) -> tuple[list[MachineProgram], int]:
    """Correct programs one instruction shorter than `program`: one instruction deleted and
    either two of the space's writable registers exchanged, or one renamed to another after
    the deleted instruction, or one other instruction replaced by any instance in `table`
    (stops at `keep` found or `limit` candidates).
    Also the number of candidates evaluated."""
    n = len(program.insns)
    if n < 1:
        return [], 0
    rows = encode(isa, program)
    out = np.zeros((keep, max(n - 1, 1), 5), dtype=np.int64)
    t = testset
    # the registers the program writes join the pool (our lowering uses ones the space
    # does not): renaming them away is how its copies go
    kind = tables(isa, s).KIND
    pool = list(s.write_registers)
    for row in rows:
        for slot in range(3):
            if row[0] and kind[row[0], slot] == 2 and int(row[1 + slot]) not in pool:
                pool.append(int(row[1 + slot]))
    found, evaluations = kernels(isa.name).neighbourhood(
        rows, n, table, np.array(pool, dtype=np.int64), kind,
        t.R0, t.F0, t.M0, t.U, t.EXP, t.EXPM, t.spec_array, out, limit)
    return [decode(isa, out[i, : n - 1]) for i in range(found)], int(evaluations)
