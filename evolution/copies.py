"""Copies taken out: our lowering moves values between registers freely (`mov r8d, edi`,
riscv `addiw t4, a0, 0`), and a program that reads the source where it read the copy
is one instruction shorter.  For every instruction that reads one register a and
writes another b, two rewrites without it: reads of b after it read a instead (copy
propagation), or b is a from there on, reads and writes (coalescing); either until b
is written afresh.  Candidates only: the caller keeps those right on every vector
and proves them.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from evolution.enumeration import FLAGS_BIT, masks
from evolution.evaluator import kernels
from evolution.isa import Isa
from evolution.program import MachineProgram, decode, encode
from evolution.search import SearchSpace, tables
from evolution.testset import TestSet

INF = 1e300


def _registers(mask: int) -> list[int]:
    return [r for r in range(40) if mask >> r & 1]


def _copies(isa: Isa, program: MachineProgram) -> Iterator[tuple[int, int, int]]:
    """(i, a, b) for each instruction i that reads one register a and writes another b
    (flags aside): the copies, in effect, that the rewrites below take out."""
    reads, writes = masks(isa, encode(isa, program))
    for i in range(len(reads)):
        read = _registers(int(reads[i]) & ~FLAGS_BIT)
        written = _registers(int(writes[i]) & ~FLAGS_BIT)
        if len(read) == 1 and len(written) == 1 and read != written:
            yield i, read[0], written[0]


def rewrites(isa: Isa, s: SearchSpace, program: MachineProgram) -> list[MachineProgram]:
    """Every copy-propagated and coalesced program one instruction shorter."""
    rows = encode(isa, program)
    n = len(rows)
    kind = tables(isa, s).KIND
    reads, writes = masks(isa, rows)
    out = []
    for i, a, b in _copies(isa, program):
        for coalesce in (False, True):
            rest = rows[[k for k in range(n) if k != i]].copy()
            for k in range(i, n - 1):
                op = rest[k, 0]
                fresh = int(writes[k + 1]) >> b & 1 and not int(reads[k + 1]) >> b & 1
                if fresh:
                    break
                for j in range(3):
                    if rest[k, 1 + j] != b:
                        continue
                    if kind[op, j] == 1 or (coalesce and kind[op, j] == 2):
                        rest[k, 1 + j] = a
                # propagating: once b or a is written, b no longer holds a's value
                if not coalesce and (int(writes[k + 1]) >> b & 1 or int(writes[k + 1]) >> a & 1):
                    break
            out.append(decode(isa, rest))
    return out


def renamed_back(isa: Isa, s: SearchSpace, program: MachineProgram) -> list[MachineProgram]:
    """Copies taken out the other way: for an instruction that reads one register a and
    writes another b (riscv `addiw a0, a2, 0` before the return), the program without it
    in which a is named b everywhere before it and read as b after it.  Right where b is
    not needed while a lives (a copy into the result register, say): the caller keeps
    those right on every vector and proves them."""
    rows = encode(isa, program)
    n = len(rows)
    kind = tables(isa, s).KIND
    out = []
    for i, a, b in _copies(isa, program):
        rest = rows[[k for k in range(n) if k != i]].copy()
        for k in range(n - 1):
            op = rest[k, 0]
            for j in range(3):
                if rest[k, 1 + j] == a and (kind[op, j] in (1, 2) if k < i else kind[op, j] == 1):
                    rest[k, 1 + j] = b
        out.append(decode(isa, rest))
    return out


def right(isa: Isa, testset: TestSet, programs: list[MachineProgram]) -> list[MachineProgram]:
    """Those of `programs` right on every vector of the test set."""
    k = kernels(isa.name)
    t = testset
    R = np.empty((t.R0.shape[1], t.R0.shape[2]), dtype=np.uint64)
    F = np.empty((t.F0.shape[1], t.F0.shape[2]), dtype=np.uint8)
    M = np.empty((t.M0.shape[1], t.M0.shape[2]), dtype=np.uint8)
    fault = np.empty(t.R0.shape[2], dtype=np.uint8)
    kept = []
    for p in programs:
        rows = encode(isa, p, max(1, len(p.insns)))
        wrong, _ = k.wrongness(rows, rows.shape[0], t.R0, t.F0, t.M0, t.U, t.EXP, t.EXPM,
                               t.spec_array, INF, R, F, M, fault)
        if wrong == 0.0:
            kept.append(p)
    return kept


def recomputed(isa: Isa, s: SearchSpace, testset: TestSet,
               program: MachineProgram) -> list[MachineProgram]:
    """Values computed again taken out (our lowering builds a constant anew each time,
    riscv `lui t4; addiw t4`): where instructions s..i write only one register b (and
    flags) and leave in it, on every vector, what another register a held before s,
    the program without them, b read as a after them until either is written again
    (nothing renamed where a is b itself)."""
    from evolution.evaluator import run

    t = testset
    rows = encode(isa, program)
    n = len(rows)
    kind = tables(isa, s).KIND
    reads, writes = masks(isa, rows)
    states = [run(isa, MachineProgram(isa.name, program.insns[:k]), t.R0, t.F0, t.M0, t.U)
              .registers for k in range(n + 1)]
    # each register's values on every vector as bytes: equal values, equal bytes
    values = [[r.tobytes() for r in state] for state in states]
    out = []
    for i in range(n):
        written = _registers(int(writes[i]) & ~FLAGS_BIT)
        if len(written) != 1:
            continue
        b = written[0]
        value = values[i + 1][b]
        for start in range(i, max(-1, i - 3), -1):
            if _registers(int(writes[start]) & ~FLAGS_BIT) != [b]:
                break
            # b itself first: then the window only recomputes what b holds already
            same = [a for a in (b, *range(len(isa.registers))) if values[start][a] == value]
            for a in same[:2]:
                rest = rows[[k for k in range(n) if not start <= k <= i]].copy()
                for k in range(start, len(rest)):
                    op = rest[k, 0]
                    for j in range(3):
                        if rest[k, 1 + j] == b and kind[op, j] == 1:
                            rest[k, 1 + j] = a
                    original = k + (i - start + 1)
                    if int(writes[original]) >> b & 1 or int(writes[original]) >> a & 1:
                        break
                out.append(decode(isa, rest))
    return out


def _last_copy_into_result(isa: Isa, program: MachineProgram
                           ) -> tuple[np.ndarray, int, int] | None:
    """Where `program` ends in a copy into the result register: its rows, the copy's
    source, and the last instruction before it that writes the source."""
    rows = encode(isa, program)
    if len(rows) < 2:
        return None
    reads, writes = masks(isa, rows)
    read = _registers(int(reads[-1]) & ~FLAGS_BIT)
    if _registers(int(writes[-1]) & ~FLAGS_BIT) != [isa.number(isa.abi.result)] or len(
            read) != 1:
        return None
    writers = [k for k in range(len(rows) - 1) if int(writes[k]) >> read[0] & 1]
    return (rows, read[0], writers[-1]) if writers else None


def result_coalesced(isa: Isa, s: SearchSpace, program: MachineProgram) -> list[MachineProgram]:
    """The last copy into the result register taken out: from some instruction up to the
    one that wrote its source, the result register and another are exchanged, that other
    being the source itself or the instruction's second register operand, whose two
    register operands are then exchanged too (a commutative one: x86 `xor edi, r9d` before
    `mov rax, rdi` becomes `xor eax, edi`, r9 being eax until there)."""
    found = _last_copy_into_result(isa, program)
    if found is None:
        return []
    rows, source, k = found
    n, result = len(rows), isa.number(isa.abi.result)
    kind = tables(isa, s).KIND
    op = int(rows[k, 0])
    out = []
    for swap in (False, True):
        if swap and (kind[op, 0] != 2 or kind[op, 1] != 1 or rows[k, 1] != source):
            continue
        # from where: the vectors tell (a value can start anew where the instructions do
        # not say so, x86 `xor edi, edi`)
        for start in range(k + 1):
            rest = rows[: n - 1].copy()
            other = source
            if swap:
                other = int(rows[k, 2])
                rest[k, 1], rest[k, 2] = rest[k, 2], rest[k, 1]
            for i in range(start, k + 1):
                for j in range(3):
                    if kind[int(rest[i, 0]), j] in (1, 2):
                        if rest[i, 1 + j] == other:
                            rest[i, 1 + j] = result
                        elif rest[i, 1 + j] == result:
                            rest[i, 1 + j] = other
            out.append(decode(isa, rest))
    return out


def result_copy_hoisted(isa: Isa, s: SearchSpace, program: MachineProgram
                        ) -> list[MachineProgram]:
    """The last copy into the result register moved up to just before the instruction
    that last wrote its source, the source named the result register from there on: as
    many instructions, the copy beside the work instead of after it (p16 on qemu64:
    `cmp edi, esi; cmovl edi, esi; mov eax, edi` as `cmp edi, esi; mov eax, edi; cmovl
    eax, esi`, gcc's form, the copy no longer waiting for the move).  None where the
    result register is touched on the way."""
    found = _last_copy_into_result(isa, program)
    if found is None:
        return []
    rows, source, k = found
    n, result = len(rows), isa.number(isa.abi.result)
    reads, writes = masks(isa, rows)
    if any((int(reads[i]) | int(writes[i])) >> result & 1 for i in range(k, n - 1)):
        return []
    kind = tables(isa, s).KIND
    moved = rows[k : n - 1].copy()
    for row in moved:
        for j in range(3):
            if kind[int(row[0]), j] in (1, 2, 3) and row[1 + j] == source:
                row[1 + j] = result
    return [decode(isa, np.concatenate([rows[:k], rows[n - 1 :], moved]))]
