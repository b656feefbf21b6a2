"""A machine program's meaning as IR: every form's semantics composed over the
machine state, so sem's interpreter and Z3 translation read programs as
they read routines.

The state's inputs are IR parameters in a fixed order: every register (64 bits),
then every flag (an 8-bit parameter whose low bit is the flag), then one 64-bit
parameter per undefined value the program produced (its low bits are the value).
Memory is the IR's memory token.

A compiler's code may jump forward over some of its instructions (ForwardJump): the
state after them is then a select, per register and flag, between the state the jump
left and the state they made.  Only programs read from a compiler's listing have jumps
(evolution/gcc.py); the search's own are straight-line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from evolution.isa import IMM, MEM, Form, Isa, Sem
from evolution.program import Insn, MachineProgram
from sem.ir import MEMORY, Node, Routine, Type, bv8, bv64, const, select, trunc


@dataclass(frozen=True)
class ForwardJump:
    """A conditional jump forward, before instruction `at`, over the `count` instructions
    from it: where `taken` holds of the machine state there, they do not run (gcc's p20
    on x86-64, `test edi, edi; je` over the shift that x = 0 must not reach).  Jumps nest
    but do not overlap, and the instructions jumped over store nothing (a select between
    two memories is not in the IR)."""

    at: int
    count: int
    taken: Callable[[Sem], Node]  # the condition, a 1-bit node, read from the state


class JumpUnreadable(ValueError):
    """Jumps that overlap, jump past the end or over a store: not read as selects."""


@dataclass
class Composition:
    """The final machine state of a program as IR nodes over its inputs."""

    isa: Isa
    params: list[Type]
    registers: list[Node]  # final value of each register
    flags: dict[str, Node]
    memory: Node
    initial_memory: Node
    undefined: list[int] = field(default_factory=list)  # width of each undefined value
    accesses: list[tuple[Node, int]] = field(default_factory=list)  # (address, bytes)

    def routine(self, output: Node | None) -> Routine:
        """A routine over the machine inputs returning `output` (and the final memory)."""
        stored = self.memory is not self.initial_memory
        return Routine(tuple(self.params), output, self.memory if stored else None)

    def inputs(self, registers, flags, undefined: int) -> list[int]:
        """Concrete parameter values: every register, every flag, and `undefined` for
        every undefined value (the evaluator gives them all that vector's one value)."""
        masks = [(1 << w) - 1 for w in self.undefined]
        return [*registers, *flags, *(undefined & m for m in masks)]


def compose(isa: Isa, program: MachineProgram,
            jumps: Sequence[ForwardJump] = ()) -> Composition:
    nregs = len(isa.registers)
    params: list[Type] = [bv64] * nregs + [bv8] * len(isa.flags)
    regs: list[Node] = [Node("param", 64, (), i) for i in range(nregs)]
    if isa.zero_register is not None:
        regs[isa.zero_register] = const(0, 64)
    flags = {f: trunc(Node("param", 8, (), nregs + k), 1) for k, f in enumerate(isa.flags)}
    memory = Node("mem", MEMORY)
    comp = Composition(isa, params, regs, flags, memory, memory)

    def undefined(width: int) -> Node:
        position = len(comp.params)
        comp.params.append(bv64)
        comp.undefined.append(width)
        value = Node("param", 64, (), position)
        return value if width == 64 else trunc(value, width)

    def step(insn: Insn) -> None:
        form = isa.by_name[insn.form]
        sem = Sem(lambda key, f=form, i=insn: _read(comp, f, i, key), undefined)
        form.semantics(sem)
        comp.accesses += sem.memory_addresses
        for key, value in sem.outputs:
            _write(comp, form, insn, key, value)

    def block(low: int, high: int, inside: list[ForwardJump]) -> None:
        """Instructions [low, high), with the jumps among them (by start, outer first)."""
        i, k = low, 0
        while i < high:
            if k < len(inside) and inside[k].at == i:
                jump, end = inside[k], inside[k].at + inside[k].count
                k += 1
                nested = []
                while k < len(inside) and inside[k].at < end:
                    if inside[k].at + inside[k].count > end or inside[k].at == jump.at:
                        raise JumpUnreadable("jumps that overlap or start together")
                    nested.append(inside[k])
                    k += 1
                taken = jump.taken(Sem(lambda key: _read(comp, None, None, key), undefined))
                registers, flags, memory = list(comp.registers), dict(comp.flags), comp.memory
                block(i, end, nested)
                if comp.memory is not memory:
                    raise JumpUnreadable("a jump over a store")
                comp.registers = [r if r is kept else select(taken, kept, r)
                                  for kept, r in zip(registers, comp.registers, strict=True)]
                comp.flags = {f: v if v is flags[f] else select(taken, flags[f], v)
                              for f, v in comp.flags.items()}
                i = end
            else:
                step(program.insns[i])
                i += 1

    ordered = sorted(jumps, key=lambda j: (j.at, -j.count))
    if any(j.count < 1 or j.at < 0 or j.at + j.count > len(program.insns) for j in ordered):
        raise JumpUnreadable("a jump past the end of the program, or over nothing")
    block(0, len(program.insns), ordered)
    return comp


def _slot(form: Form, position: int) -> int:
    return form.register_operands.index(position)


def _read(comp: Composition, form: Form | None, insn: Insn | None, key) -> Node:
    """A key's value in the state (an operand's needs its form and instruction)."""
    if key == "mem":
        return comp.memory
    kind, what = key
    if kind == "reg":
        return comp.registers[comp.isa.number(what)]
    if kind == "flag":
        return comp.flags[what]
    operand = form.operands[what]
    if operand.kind == IMM:
        return const(insn.imm, 64)
    base = comp.registers[insn.regs[_slot(form, what)]]
    if operand.kind == MEM:
        return base + const(insn.imm, 64)
    return base


def _write(comp: Composition, form: Form, insn: Insn, key, value: Node) -> None:
    if key == "mem":
        comp.memory = value
        return
    kind, what = key
    if kind == "flag":
        comp.flags[what] = value
        return
    number = comp.isa.number(what) if kind == "reg" else insn.regs[_slot(form, what)]
    if number != comp.isa.zero_register:
        comp.registers[number] = value
