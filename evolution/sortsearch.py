"""Exhaustive search for short sorting bodies over a small instruction set: register
moves, reloads of an element, compares and conditional moves (x86-64 mov, cmp,
cmovl, cmovg; AlphaDev's set).  Breadth-first over machine states, shortest first.

A state is what every register holds, as a function of the input, and what the
last compare found, as a function of the input.  A function of the input is its
values on every weak ordering of the n elements (ties included: ranks with
repetition), which is enough here: mov, cmp and cmov only ever compare and copy
elements, so a body right on every weak ordering is right on every input (the
proof in proof.py checks it at full width anyway).  Breadth-first search with
every state kept at the depth it was first reached finds a shortest body; the
states are few (each register holds a min/max combination of the elements).

`prefix` fixes the start of the body (e.g. the first comparators of a network)
so only the rest is searched, for sizes whose full search is out of reach.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

MOV, LOAD, CMP, CMOVL, CMOVG = "mov", "load", "cmp", "cmovl", "cmovg"


def weak_orderings(n: int) -> list[tuple[int, ...]]:
    """Every pattern of n values up to order-preserving renaming (ranks 0.. with ties)."""
    out = []
    for values in itertools.product(range(n), repeat=n):
        ranks = sorted(set(values))
        if ranks == list(range(len(ranks))):
            out.append(values)
    return out


@dataclass(frozen=True)
class SortStep:
    op: str
    dst: int  # register (for LOAD: the register loaded)
    src: int  # register (for LOAD: the element)


class _Tables:
    """Register contents interned as ids; their transitions memoised."""

    def __init__(self, n: int):
        self.tests = weak_orderings(n)
        self.vectors: list[tuple[int, ...]] = []
        self.ids: dict[tuple[int, ...], int] = {}
        self.elements = [self.intern(tuple(t[i] for t in self.tests)) for i in range(n)]
        self.sorted = [self.intern(tuple(sorted(t)[i] for t in self.tests)) for i in range(n)]
        self._cmp: dict[tuple[int, int], int] = {}
        self.flags: list[tuple[int, ...]] = []
        self._flag_ids: dict[tuple[int, ...], int] = {}
        self._cmov: dict[tuple[str, int, int, int], int] = {}

    def intern(self, v: tuple[int, ...]) -> int:
        if v not in self.ids:
            self.ids[v] = len(self.vectors)
            self.vectors.append(v)
        return self.ids[v]

    def compare(self, a: int, b: int) -> int:
        key = (a, b)
        if key not in self._cmp:
            va, vb = self.vectors[a], self.vectors[b]
            f = tuple((x > y) - (x < y) for x, y in zip(va, vb, strict=True))
            if f not in self._flag_ids:
                self._flag_ids[f] = len(self.flags)
                self.flags.append(f)
            self._cmp[key] = self._flag_ids[f]
        return self._cmp[key]

    def cmov(self, op: str, flags: int, dst: int, src: int) -> int:
        key = (op, flags, dst, src)
        if key not in self._cmov:
            want = -1 if op == CMOVL else 1
            f = self.flags[flags]
            vd, vs = self.vectors[dst], self.vectors[src]
            self._cmov[key] = self.intern(tuple(s if c == want else d
                                                for c, d, s in zip(f, vd, vs, strict=True)))
        return self._cmov[key]


EMPTY, NO_FLAGS = -1, -1


def search(n: int, registers: int, max_steps: int, prefix: Sequence[SortStep] = (),
           max_states: int = 5_000_000) -> list[SortStep] | None:
    """A shortest body (after `prefix`) of at most `max_steps` steps that leaves the
    sorted elements in some registers, with registers 0..n-1 loaded with the elements
    before the prefix; None when there is none within the bounds.

    Two prunings keep it small: registers are interchangeable, so states equal up to
    renaming registers are one (the key sorts their contents); and a state still
    missing k of the sorted outputs needs at least k more steps (each writes one
    register)."""
    t = _Tables(n)
    regs = [t.elements[i] if i < n else EMPTY for i in range(registers)]
    flags = NO_FLAGS
    for step in prefix:
        regs, flags = _apply(t, regs, flags, step)
    start = (tuple(regs), flags)
    goal = set(t.sorted)
    parent: dict[tuple, tuple | None] = {start: None}
    seen = {_key(start)}
    frontier = [start]
    moves = _moves(n, registers)
    for depth in range(max_steps + 1):
        for state in frontier:
            if goal <= set(state[0]):
                return _path(parent, state)
        if depth == max_steps or len(seen) > max_states:
            return None
        following = []
        left = max_steps - depth - 1  # steps left after the next one
        for state in frontier:
            for step in moves:
                nxt = _next(t, state, step)
                if nxt is None or len(goal - set(nxt[0])) > left:
                    continue
                key = _key(nxt)
                if key not in seen:
                    seen.add(key)
                    parent[nxt] = (state, step)
                    following.append(nxt)
        frontier = following
    return None


def _key(state: tuple) -> tuple:
    return tuple(sorted(state[0])), state[1]


def _moves(n: int, registers: int) -> list[SortStep]:
    out = []
    for a, b in itertools.permutations(range(registers), 2):
        out += [SortStep(MOV, a, b), SortStep(CMP, a, b), SortStep(CMOVL, a, b),
                SortStep(CMOVG, a, b)]
    out += [SortStep(LOAD, r, i) for r in range(registers) for i in range(n)]
    return out


def _apply(t: _Tables, regs: list[int], flags: int, step: SortStep) -> tuple[list[int], int]:
    state = _next(t, (tuple(regs), flags), step)
    if state is None:
        raise ValueError(f"{step} reads a register holding nothing yet")
    return list(state[0]), state[1]


def _next(t: _Tables, state: tuple, step: SortStep) -> tuple | None:
    regs, flags = state
    if step.op == LOAD:
        out = list(regs)
        out[step.dst] = t.elements[step.src]
        return tuple(out), flags
    a, b = regs[step.dst], regs[step.src]
    if b == EMPTY or (a == EMPTY and step.op != MOV):
        return None
    if step.op == CMP:
        return regs, t.compare(a, b)
    if step.op == MOV:
        out = list(regs)
        out[step.dst] = b
        return tuple(out), flags
    if flags == NO_FLAGS:
        return None
    out = list(regs)
    out[step.dst] = t.cmov(step.op, flags, a, b)
    return tuple(out), flags


def _path(parent: dict, state: tuple) -> list[SortStep]:
    steps = []
    while parent[state] is not None:
        state, step = parent[state]
        steps.append(step)
    return steps[::-1]


def final_registers(n: int, registers: int, body: Sequence[SortStep]) -> list[int]:
    """Which register holds the i-th smallest element after `body` (for the stores)."""
    t = _Tables(n)
    regs = [t.elements[i] if i < n else EMPTY for i in range(registers)]
    flags = NO_FLAGS
    for step in body:
        regs, flags = _apply(t, regs, flags, step)
    return [regs.index(s) for s in t.sorted]
