"""Fewer bytes at the same instruction count, where an ISA's encodings vary in length.

Two x86-64 programs of as many instructions can differ by a tenth of their bytes (a REX
prefix for r8-r15 or a 64-bit operand, `lea` where `add` would do), and the bytes
matter once the code crosses a cache line: p23 on qemu64 under KVM (AMD EPYC, family 25),
our 21 instructions in 73 bytes took 2.81 ticks per independent call and gcc's 21 in 60
bytes 2.10; ours with its registers and two `lea`s rewritten (62 bytes) 2.10.

`smaller` walks downhill in bytes from a program by moves that keep its instructions:
swapping two registers throughout (neither read before it is written, neither the
result: such a swap renames values, nothing else), one value moved to another register,
a 64-bit form's 32-bit twin, and `lea x, [a + b]` written as `add` (alone where x is a or
b; with the `mov` after it that copies x into a or b, the pair as `add` then `mov`).  A
move is taken only if the program stays right on every test vector; the caller proves the
result like any candidate (a 32-bit twin is right only where the upper half is not
needed, which the proof decides).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from evolution.copies import right
from evolution.enumeration import masks
from evolution.isa import FLAGS_BIT, Isa, form_effects
from evolution.program import Insn, MachineProgram, encode, source_line
from evolution.testset import TestSet
from toolchain.program import AssemblyError

MOVES_CHECKED = 12  # the smallest candidates of a step checked on the test vectors


class Sizes:
    """Each instruction's encoded length, assembled once (x86 encodings do not depend on
    where an instruction sits, short of branches, which programs here have none of)."""

    def __init__(self, isa: Isa, features: frozenset[str]) -> None:
        self.isa, self.features = isa, features
        self.lengths: dict[Insn, int | None] = {}

    def of(self, insn: Insn) -> int | None:
        """The length, None where a register is outside its operand's class (x86 `sh`:
        only rax-rbx have a second byte) or the assembler refuses the instruction."""
        if insn not in self.lengths:
            fits = self.isa.fits(insn.form, insn.regs)
            try:
                self.lengths[insn] = len(self.isa.assemble(
                    source_line(self.isa, insn) + "\n", self.features)) if fits else None
            except AssemblyError:
                self.lengths[insn] = None
        return self.lengths[insn]

    def program(self, program: MachineProgram) -> int | None:
        lengths = [self.of(i) for i in program.insns]
        return None if None in lengths else sum(lengths)


def _renameable(isa: Isa, program: MachineProgram) -> list[int]:
    """Caller-saved registers whose value on entry the program never reads and which are
    not the result: all of the program's temporaries and the scratch registers it leaves
    alone.  Registers an instruction reads or writes implicitly stay where they are."""
    n = len(program.insns)
    reads, writes = masks(isa, encode(isa, program, max(n, 1)))
    implicit = 0
    for insn in program.insns:
        effects = form_effects(isa, isa.by_name[insn.form])
        implicit |= (effects.read_mask | effects.written_mask) & ~FLAGS_BIT
    live_in, written = 0, 0
    for r, w in zip(reads[:n], writes[:n], strict=True):
        live_in |= int(r) & ~written
        written |= int(w)
    fixed = live_in | implicit | 1 << isa.number(isa.abi.result)
    return [n for n in map(isa.number, isa.scratch) if not fixed >> n & 1]


# A move is an edit: instructions start..end of the program replaced by others, as many.
Edit = tuple[int, int, tuple[Insn, ...]]


def _renamed(insns: tuple[Insn, ...], names: dict[int, int]) -> tuple[Insn, ...]:
    return tuple(replace(i, regs=tuple(names.get(r, r) for r in i.regs))
                 if any(r in names for r in i.regs) else i for i in insns)


def _swaps(isa: Isa, program: MachineProgram) -> Iterator[Edit]:
    names = _renameable(isa, program)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            yield 0, len(program.insns), _renamed(program.insns, {a: b, b: a})


def _renamed_values(isa: Isa, program: MachineProgram) -> Iterator[Edit]:
    """One value moved to another register: from an instruction that writes a register
    without reading it up to the next that does the same (or the end), every mention of
    it renamed to each scratch register in turn (the vectors and the proof judge whether
    the other register was free there; p23's last `lea edi, ...; movzx eax, dil` as
    `lea eax, ...; movzx eax, al`)."""
    n = len(program.insns)
    reads, writes = masks(isa, encode(isa, program, max(n, 1)))
    fresh = [int(w) & ~int(r) for r, w in zip(reads[:n], writes[:n], strict=True)]
    for k, insn in enumerate(program.insns):
        for r in {r for r in insn.regs if fresh[k] >> r & 1}:
            end = next((j for j in range(k + 1, n) if fresh[j] >> r & 1), n)
            for q in map(isa.number, isa.scratch):
                if q != r:
                    yield k, end, _renamed(program.insns[k:end], {r: q})


def _narrower(isa: Isa, program: MachineProgram) -> Iterator[Edit]:
    """Each 64-bit instruction as its 32-bit twin (the form named with r32 for r64)."""
    for k, insn in enumerate(program.insns):
        twin = insn.form.replace("r64", "r32")
        if twin != insn.form and twin in isa.by_name:
            yield k, k + 1, (replace(insn, form=twin),)


def _adds(isa: Isa, program: MachineProgram) -> Iterator[Edit]:
    """`lea x, [a + b*1 + 0]` as `add`: alone where x is a or b, and with a following
    `mov a, x` (or `mov b, x`) as `add a, b; mov x, a`."""
    insns = program.insns
    for width in ("r32", "r64"):
        lea, add, mov = (f"lea {width}, [r + r*1 + d]", f"add {width}, {width}",
                         f"mov {width}, {width}")
        if not {lea, add, mov} <= set(isa.by_name):
            continue
        for k, insn in enumerate(insns):
            if insn.form != lea or insn.imm != 0:
                continue
            x, a, b = insn.regs
            for one, other in ((a, b), (b, a)):
                if x == one:
                    yield k, k + 1, (Insn(add, (x, other)),)
                elif k + 1 < len(insns) and insns[k + 1] == Insn(mov, (one, x)):
                    yield k, k + 2, (Insn(add, (one, other)), Insn(mov, (x, one)))


def _moves(isa: Isa, program: MachineProgram) -> Iterator[Edit]:
    """Every move, each keeping the number of instructions."""
    yield from _swaps(isa, program)
    yield from _renamed_values(isa, program)
    yield from _narrower(isa, program)
    yield from _adds(isa, program)


def smaller(isa: Isa, testset: TestSet, program: MachineProgram, sizes: Sizes
            ) -> MachineProgram | None:
    """The program in fewer bytes and as many instructions, right on every vector of
    `testset` (not proven: the caller proves it); None where no move saves a byte."""
    current, size = program, sizes.program(program)
    if size is None:
        return None
    while True:
        old = [sizes.of(i) for i in current.insns]
        scored = []
        for start, end, insns in _moves(isa, current):
            lengths = [sizes.of(i) for i in insns]
            if None not in lengths and sum(lengths) < sum(old[start:end]):
                scored.append((size - sum(old[start:end]) + sum(lengths), replace(
                    current, insns=current.insns[:start] + insns + current.insns[end:])))
        scored.sort(key=lambda sp: sp[0])
        fine = right(isa, testset, list(dict.fromkeys(p for _, p in scored))[:MOVES_CHECKED])
        if not fine:
            return None if current is program else current
        current = fine[0]  # the smallest right one: `scored` is by size
        size = sizes.program(current)
