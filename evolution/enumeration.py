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
from functools import cached_property

import numpy as np

from evolution.codegen import CHUNK
from evolution.evaluator import kernels
from evolution.isa import FLAGS_BIT, REG, Isa, form_effects
from evolution.program import MachineProgram, decode, encode
from evolution.search import SearchSpace, instances
from evolution.testset import TestSet, result_mask

TABLE_SIZE = 1 << 21  # fingerprints of the states met (observational equivalence)
KEEP = 16  # programs a call returns at most
RATE = 2_000_000  # instances executed per second, about (one loaded core), to size a call


def _named(isa: Isa, row: np.ndarray):
    """A used row's form, its effects, and the registers its operands read and write."""
    form = isa.form(int(row[0]))
    e = form_effects(isa, form)
    slots = form.register_operands
    reads = {int(row[1 + slots.index(p)]) for p in e.read_operands}
    writes = {int(row[1 + slots.index(p)]) for p in e.written_operands}
    return form, e, reads, writes


def masks(isa: Isa, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's registers read and written (bit masks, FLAGS_BIT for the flags)."""
    reads = np.zeros(len(rows), dtype=np.int64)
    writes = np.zeros(len(rows), dtype=np.int64)
    for k, row in enumerate(rows):
        if row[0] == 0:
            continue
        _, e, read, written = _named(isa, row)
        reads[k] = e.read_mask | sum(1 << r for r in read)
        writes[k] = e.written_mask | sum(1 << w for w in written)
    return reads, writes


PROBES = 4  # vectors from each end of the test set the search runs on before any other


def probe_vectors(count: int) -> list[int]:
    """Which vectors the enumeration runs on (the state it prunes by is theirs): the first
    (counterexamples and edge cases come first) and the last (random ones)."""
    return sorted(set(range(min(PROBES, count))) | set(range(max(0, count - PROBES), count)))


def liveness(isa: Isa, rows: np.ndarray, result: int, result_bits: int
             ) -> tuple[int, np.ndarray, np.ndarray]:
    """What the program `rows` reads of the state it starts in, given that its end must
    leave the result: a READS-style mask, the bits of each register it reads (a 32-bit
    read needs the low 32), and the flags it reads, by index."""
    live = 1 << result
    bits = np.zeros(len(isa.registers), dtype=np.uint64)
    bits[result] = np.uint64(result_bits)
    flags: set[str] = set()
    for row in rows[::-1]:
        if row[0] == 0:
            continue
        form = isa.form(int(row[0]))
        e = form_effects(isa, form)
        slots = form.register_operands
        written = [int(row[1 + slots.index(p)]) for p in e.written_operands]
        written += [r for r in range(len(isa.registers)) if e.written_mask >> r & 1]
        for r in written:  # a partial write reads what it keeps, so it is read below
            live &= ~(1 << r)
            bits[r] = 0
        flags -= set(e.written_flags)
        for p in e.read_operands:
            o = form.operands[p]
            r = int(row[1 + slots.index(p)])
            narrow = o.kind == REG and o.access == "r" and o.width == 32
            live |= 1 << r
            bits[r] |= np.uint64(0xFFFFFFFF if narrow else (1 << 64) - 1)
        for r in range(len(isa.registers)):
            if e.read_mask >> r & 1:
                live |= 1 << r
                bits[r] = np.uint64((1 << 64) - 1)
        flags |= set(e.read_flags)
    if flags:
        live |= FLAGS_BIT
    return live, bits, np.array(sorted(isa.flags.index(f) for f in flags), dtype=np.int64)


def renamed(isa: Isa, rows: np.ndarray, r: int, q: int, copy_forms: frozenset[str] = frozenset()
            ) -> np.ndarray | None:
    """`rows` reading register q wherever they read r, up to where they write r again
    without reading it (from there on r is theirs), or None where that cannot be: an
    instruction reads r implicitly (x86 `shl eax, cl` and rcx) or names it where q may not
    stand, q is written meanwhile, or r is still renamed at the end and holds the result.
    A copy (one of `copy_forms`) of r into q becomes a copy of q into itself and goes (an
    UNUSED row): the value is already there."""
    out = rows.copy()
    for k, row in enumerate(rows):
        if row[0] == 0:
            continue
        form, e, reads, writes = _named(isa, row)
        slots = form.register_operands
        implicit = e.read_mask | e.written_mask
        if r not in reads and not e.read_mask >> r & 1 and (r in writes
                                                             or e.written_mask >> r & 1):
            return out  # written afresh: the rest reads r's new value
        if form.name in copy_forms and reads == {r} and writes == {q}:
            out[k] = 0
            continue
        if implicit >> r & 1 or q in writes or implicit >> q & 1:
            return None
        for s, position in enumerate(slots):
            if int(row[1 + s]) == r:
                if q not in isa.in_class(form.operands[position].regs):
                    return None
                out[k, 1 + s] = q
    return None if r == isa.number(isa.abi.result) else out


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

    @cached_property
    def single(self) -> Enumerator:
        """The same without compound forms: every instance one machine instruction (self
        when there are none)."""
        keep = np.array([self.isa.form(int(f)).size == 1 for f in self.rows[:, 0]], dtype=bool)
        if keep.all():
            return self
        return Enumerator(self.isa, self.space, self.rows[keep], self.reads[keep],
                          self.writes[keep], self.hash_registers, self.table, self.depths)

    def passes(self, rows: int) -> list[tuple[Enumerator, int]]:
        """The searches of `rows` instances, fewest instructions first, each with the fewest
        it can give: single instructions (rows), then with compounds (rows + 1)."""
        if self.single is self:
            return [(self, rows)]
        return [(self.single, rows), (self, rows + 1)]

    def arguments_defined(self, spec_params: int) -> int:
        """Registers that hold something when a program starts: the arguments (and a
        register that always reads zero)."""
        mask = 0
        for name in self.isa.abi.args[:spec_params]:
            mask |= 1 << self.isa.number(name)
        if self.isa.zero_register is not None:
            mask |= 1 << self.isa.zero_register
        return mask

    def finals(self, writes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The instances a window may end with (each writes one of `writes`), listed by
        what they read: register r at r, the flags after the registers, then all of them
        (START, LEN, the lists one after another)."""
        nreg = len(self.isa.registers)
        last = np.flatnonzero(self.writes & writes)
        lists = [last[(self.reads[last] >> r) & 1 == 1] for r in range(nreg)]
        lists += [last[self.reads[last] & FLAGS_BIT != 0], last]
        lengths = np.array([len(x) for x in lists], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        return starts, lengths, np.concatenate(lists).astype(np.int64)

    @cached_property
    def copies(self) -> list[tuple[int, int, int, int]]:
        """The instances that copy one register into another: (instance, from, to, the bits
        that arrive unchanged), found by running every instance that reads one register,
        writes one other and no flag on random states, the fewest operands first."""
        isa, k = self.isa, kernels(self.isa.name)
        rng = np.random.default_rng(0)
        nreg, nflag = len(isa.registers), max(1, len(isa.flags))
        R0 = rng.integers(0, 2**64, (1, nreg, CHUNK), dtype=np.uint64)
        F0 = rng.integers(0, 2, (1, nflag, CHUNK), dtype=np.uint8)
        M0 = np.zeros((1, CHUNK, 0), dtype=np.uint8)
        U = rng.integers(0, 2**64, (1, CHUNK), dtype=np.uint64)
        out = []
        for i, (reads, writes) in enumerate(zip(self.reads, self.writes, strict=True)):
            reads, writes = int(reads), int(writes)
            if reads & writes or (reads | writes) & FLAGS_BIT or reads.bit_count() != 1 \
                    or writes.bit_count() != 1:
                continue
            RO = k.run_all(self.rows[i:i + 1], 1, R0, F0, M0, U)[0]
            src, dst = reads.bit_length() - 1, writes.bit_length() - 1
            unchanged = np.bitwise_and.reduce(~(RO[0, dst] ^ R0[0, src]))
            if unchanged:
                out.append((i, src, dst, int(unchanged)))
        return sorted(out, key=lambda c: len(isa.form(int(self.rows[c[0], 0])).operands))

    @cached_property
    def copy_forms(self) -> frozenset[str]:
        return frozenset(self.isa.form(int(self.rows[i, 0])).name for i, *_ in self.copies)

    def copy_table(self, live_bits: np.ndarray) -> np.ndarray:
        """COPY[to, from]: an instance copying every live bit of `to` from `from` (-1: none)."""
        nreg = len(self.isa.registers)
        table = np.full((nreg, nreg), -1, dtype=np.int64)
        for i, src, dst, unchanged in reversed(self.copies):  # the first listed wins
            if live_bits[dst] and int(live_bits[dst]) & ~unchanged == 0:
                table[dst, src] = i
        return table

    def tables(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """The fingerprint table a search of j instances clears and fills: one slot when it
        has no depth before its last (clearing the whole table costs more than the search)."""
        size = TABLE_SIZE if j > 1 else 1
        return self.table[:size], self.depths[:size]

    def replace(self, testset: TestSet, program: MachineProgram, a: int, b: int, j: int,
                defined: int, limit: int, copy: bool = True) -> tuple[list[MachineProgram], int]:
        """Programs made by putting j instances in place of instructions a..b-1 (the rest of
        the program reading a register of theirs in place of one it read, or, when `copy`,
        j and a copy back into it) that are right on every vector (at most KEEP), and the
        instances executed."""
        isa, t = self.isa, testset
        n = len(program.insns)
        rows = encode(isa, program, max(n, 1))
        result = isa.number(isa.abi.result)
        bits = result_mask(isa, t.spec)
        live, live_bits, live_flags = liveness(isa, rows[b:n], result, bits)
        k = kernels(isa.name)
        before = k.run_all(rows, a, t.R0, t.F0, t.M0, t.U)
        after = k.run_all(rows, b, t.R0, t.F0, t.M0, t.U)
        chunk, lane = np.divmod(np.array(probe_vectors(len(t.vectors))), CHUNK)

        def probes(state: np.ndarray, lane_axis: int) -> np.ndarray:
            picked = state[chunk, ..., lane] if lane_axis == 2 else state[chunk, lane]
            return np.ascontiguousarray(np.moveaxis(picked, 0, -1) if lane_axis == 2
                                        else picked)

        PR, PF = probes(before[0], 2), probes(before[1], 2)
        PM, PX = probes(before[2], 1), probes(before[3], 1)
        TR, TF = probes(after[0], 2), probes(after[1], 2)
        _, suffix_writes = masks(isa, rows[b:n])
        if not int(np.bitwise_or.reduce(suffix_writes, initial=0)) >> result & 1:
            # the window's end is the program's, for the result: the routine's value
            m = np.uint64(bits)
            TR[result] = (TR[result] & ~m) | (t.EXP[chunk, lane] & m)
        nreg = len(isa.registers)
        copies = self.copy_table(live_bits) if copy else np.full((nreg, nreg), -1, np.int64)
        # a live register's value may end in a register q the rest of the program does not
        # read, which it then reads instead (x86 code that is two-address)
        names = np.full((nreg, nreg), -1, dtype=np.int64)
        suffixes = []
        written = int(np.bitwise_or.reduce(self.writes))
        for r in np.flatnonzero(live_bits):
            for q in range(nreg):
                if q != r and not live >> q & 1 and written >> q & 1:
                    other = renamed(isa, rows[b:n], int(r), q, self.copy_forms)
                    if other is not None:
                        names[r, q] = len(suffixes)
                        suffixes.append(other)
        suffix_array = np.array(suffixes, dtype=np.int64) if suffixes else np.zeros(
            (1, n - b, 5), dtype=np.int64)
        sources = 0
        for r in range(nreg):
            sources |= sum(1 << q for q in range(nreg) if copies[r, q] >= 0 or names[r, q] >= 0)
        starts, lengths, lists = self.finals(live | sources)
        total = a + j + 1 + n - b
        out = np.zeros((KEEP, total, 5), dtype=np.int64)
        found, executed = k.window_search(
            rows, n, a, b, j, self.rows, self.reads, self.writes, starts, lengths, lists,
            copies, names, suffix_array, defined, live,
            np.flatnonzero(live_bits).astype(np.int64), live_bits,
            live_flags, self.hash_registers, PR, PF, PM, PX,
            np.ascontiguousarray(t.U[chunk, lane]), TR, TF, t.R0, t.F0, t.M0, t.U, t.EXP,
            t.EXPM, t.spec_array, out, limit, *self.tables(j))
        return [decode(isa, out[i]) for i in range(found)], int(executed)


def shortest(e: Enumerator, testset: TestSet, params: int, max_length: int, limit: int,
             deadline: float | None = None) -> tuple[list[MachineProgram], int]:
    """Whole programs of the fewest instructions (up to max_length, the return not
    counted, or one more where the last copies the result into place) right on every
    vector, and the instances executed."""
    empty = MachineProgram(e.isa.name, ())
    defined = e.arguments_defined(params)
    executed = 0
    fewest, kept = None, []
    for length in range(1, max_length + 1):
        # k rows of single instructions first, then with compounds (k + 1 or more): else
        # those, met first, fill the programs kept and hide a shorter one (p09's mulhu)
        for searched, least in e.passes(length):
            if fewest is not None and least >= fewest:
                continue
            if deadline is not None and time.perf_counter() >= deadline:
                return kept, executed
            allowed = limit - executed
            if deadline is not None:  # a kernel call cannot be stopped: size it to the time left
                allowed = min(allowed, int((deadline - time.perf_counter()) * RATE))
            found, count = searched.replace(testset, empty, 0, 0, length, defined, allowed)
            executed += count
            least_found = min((p.instructions - 1 for p in found), default=None)
            if least_found is not None and (fewest is None or least_found < fewest):
                fewest = least_found
                kept = [p for p in found if p.instructions - 1 == fewest]
            if executed >= limit:
                return kept, executed
        if fewest is not None and length + 1 >= fewest:
            break
    return kept, executed


def peephole(e: Enumerator, testset: TestSet, program: MachineProgram, params: int,
             max_window: int, max_replacement: int, limit: int,
             deadline: float | None = None) -> tuple[list[MachineProgram], int]:
    """Shorter programs made by replacing a window of `program` (at most max_window
    instructions) by fewer instructions (at most max_replacement, and a copy where that
    is still fewer), the smallest replacements first; stops at the first window that gives
    any.  Also the instances executed."""
    n = len(program.insns)
    rows = encode(e.isa, program, max(n, 1))
    _, writes = masks(e.isa, rows)
    before = [e.arguments_defined(params)]
    for k in range(n):
        before.append(before[-1] | int(writes[k]))
    executed = 0
    for j in range(0, max_replacement + 1):
        windows = [(size, a) for size in range(j + 1, min(max_window, n) + 1)
                   for a in range(0, n - size + 1)]
        # past one instruction a window's search can take seconds: each gets its share
        share = (limit - executed) // max(1, len(windows)) if j > 1 else limit
        if deadline is not None and j > 1:
            share = min(share, int((deadline - time.perf_counter()) * RATE / max(1, len(windows))))
        for size, a in windows:
            if executed >= limit or (deadline is not None
                                     and time.perf_counter() >= deadline):
                return [], executed
            allowed = min(limit - executed, share)
            if deadline is not None:
                allowed = min(allowed, int((deadline - time.perf_counter()) * RATE))
            inside = sum(e.isa.by_name[i.form].size for i in program.insns[a : a + size])
            for searched, least in e.passes(j):
                if least >= inside or (searched is not e.single and j == 0):
                    continue
                found, count = searched.replace(testset, program, a, a + size, j, before[a],
                                                allowed, copy=size > j + 1)
                executed += count
                # fewer rows may still be as many instructions (a compound form)
                found = [p for p in found if p.instructions < program.instructions]
                if found:
                    return found, executed
    return [], executed
