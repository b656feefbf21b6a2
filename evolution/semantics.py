"""A machine program's meaning as IR: every form's semantics composed over the
machine state, so sem's interpreter and Z3 translation read programs as
they read routines.

The state's inputs are IR parameters in a fixed order: every register (64 bits),
then every flag (an 8-bit parameter whose low bit is the flag), then one 64-bit
parameter per undefined value the program produced (its low bits are the value).
Memory is the IR's memory token.

A compiler's code branches: it is read as its paths (Trace), each straight-line with the
conditions of the branches it meets (Branch), which compose gathers as the path's
condition.  Only programs read from a compiler's listing have branches
(evolution/gcc.py); the search's own are straight-line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from evolution.isa import IMM, MEM, Form, Isa, Sem
from evolution.program import Insn, MachineProgram
from sem.ir import MEMORY, Node, Routine, Type, bv8, bv64, const, trunc


@dataclass(frozen=True)
class Branch:
    """A conditional jump a path through a compiler's code meets, before its instruction
    `at`: `taken` read from the machine state there, and whether the path follows it."""

    at: int
    taken: Callable[[Sem], Node]  # the condition, a 1-bit node, read from the state
    followed: bool


@dataclass(frozen=True)
class Trace:
    """One way through a compiler's code (evolution/gcc.py traces): the instructions it
    runs, straight-line, and the branches it meets on the way."""

    program: MachineProgram
    branches: tuple[Branch, ...] = ()


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
    # 1-bit nodes over the inputs that all hold where the composed path is the one run
    condition: list[Node] = field(default_factory=list)

    def routine(self, output: Node | None) -> Routine:
        """A routine over the machine inputs returning `output` (and the final memory)."""
        stored = self.memory is not self.initial_memory
        return Routine(tuple(self.params), output, self.memory if stored else None)

    def inputs(self, registers, flags, undefined: int) -> list[int]:
        """Concrete parameter values: every register, every flag, and `undefined` for
        every undefined value (the evaluator gives them all that vector's one value)."""
        masks = [(1 << w) - 1 for w in self.undefined]
        return [*registers, *flags, *(undefined & m for m in masks)]


def compose(isa: Isa, program: MachineProgram, branches: Sequence[Branch] = ()) -> Composition:
    """The program's final state; with `branches`, those a path meets (Trace), whose
    conditions go to Composition.condition as they read in the state each is met in."""
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

    met: dict[int, list[Branch]] = {}  # the branches met before each instruction
    for branch in branches:
        if not 0 <= branch.at <= len(program.insns):
            raise ValueError(f"a branch before instruction {branch.at} of a path of "
                             f"{len(program.insns)}")
        met.setdefault(branch.at, []).append(branch)

    def meet(position: int) -> None:
        for branch in met.get(position, ()):
            taken = branch.taken(Sem(lambda key: _read(comp, None, None, key), undefined))
            comp.condition.append(taken if branch.followed else ~taken)

    for position, insn in enumerate(program.insns):
        meet(position)
        form = isa.by_name[insn.form]
        sem = Sem(lambda key, f=form, i=insn: _read(comp, f, i, key), undefined)
        form.semantics(sem)
        comp.accesses += sem.memory_addresses
        for key, value in sem.outputs:
            _write(comp, form, insn, key, value)
    meet(len(program.insns))
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
