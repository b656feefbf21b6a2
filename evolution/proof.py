"""Proof that a machine program implements a routine, at full width, by Z3.

The program's meaning (semantics.compose) is translated by sem's Z3
translation over a machine state in which everything the platform ABI does
not fix is free: every register but the arguments, the upper bits of a 32-bit
x86-64 argument (System V leaves them undefined), the flags, memory, and every
value the architecture leaves undefined.  riscv64 arguments arrive
sign-extended (LP64).  The program is correct when, for all of that,

  - its result register holds the routine's result as the ABI returns it
    (x86-64: the low bits of rax; riscv64: a0 sign-extended from 32 bits),
  - memory afterwards equals the routine's memory afterwards (every byte),
  - every callee-saved register (and the stack pointer) is unchanged,
  - every load and store stays inside the routine's memory (the bytes its own
    loads and stores touch from its pointer input), so it cannot fault where
    the routine would not.

A failed proof comes with a counterexample as a machine test vector.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import z3

from evolution.isa import Isa
from evolution.program import MachineProgram
from evolution.semantics import Composition, compose
from evolution.testset import MachineVector, footprint
from sem.ir import Node, Routine
from sem.vectors import DATA_ADDRESS
from sem.z3sem import translate


@dataclass(frozen=True)
class Proof:
    proven: bool
    detail: str
    counterexample: MachineVector | None = None  # a state the program gets wrong
    seconds: float = 0.0


@dataclass
class _Setup:
    args: list  # the routine's inputs
    registers: list  # each register's initial value
    flags: list
    undefined: list
    memory: object


def _setup(isa: Isa, spec: Routine, comp: Composition) -> _Setup:
    args = [z3.BitVec(f"arg{i}", t.width) for i, t in enumerate(spec.params)]
    regs = [z3.BitVec(f"init_{name}", 64) for name in isa.registers]
    for t, x, name in zip(spec.params, args, isa.abi.args, strict=False):
        n = isa.number(name)
        if t.width == 64:
            regs[n] = x
        elif isa.abi.narrow_args == "sign":
            regs[n] = z3.SignExt(64 - t.width, x)
        else:
            regs[n] = z3.Concat(z3.BitVec(f"upper_{name}", 64 - t.width), x)
    flags = [z3.BitVec(f"flag_{f}", 8) for f in isa.flags]
    undefined = [z3.BitVec(f"undefined{k}", 64) for k in range(len(comp.undefined))]
    memory = z3.Array("mem", z3.BitVecSort(64), z3.BitVecSort(8))
    return _Setup(args, regs, flags, undefined, memory)


def _term(comp: Composition, s: _Setup, node: Node):
    inputs = [*s.registers, *s.flags, *s.undefined]
    return translate(Routine(tuple(comp.params), node, None), inputs=inputs, memory=s.memory).result


def obligations(isa: Isa, spec: Routine,
                program: MachineProgram) -> tuple[list, _Setup, Composition]:
    """The ways the program could be wrong, as Z3 conditions (any true: wrong)."""
    comp = compose(isa, program)
    s = _setup(isa, spec, comp)
    want = translate(spec, inputs=s.args, memory=s.memory)
    wrong = []
    if spec.result is not None:
        out = _term(comp, s, comp.registers[isa.number(isa.abi.result)])
        w = spec.result_width
        if w == 64:
            wrong.append(out != want.result)
        elif isa.abi.narrow_result == "sign":
            wrong.append(out != z3.SignExt(64 - w, want.result))
        else:
            wrong.append(z3.Extract(w - 1, 0, out) != want.result)
    stored = comp.memory is not comp.initial_memory
    if spec.uses_memory or stored:
        inputs = [*s.registers, *s.flags, *s.undefined]
        final = translate(comp.routine(None), inputs=inputs, memory=s.memory).final_memory
        wrong.append(final != want.final_memory)
    for name in isa.abi.preserved:
        n = isa.number(name)
        node = comp.registers[n]
        if not (node.op == "param" and node.attr == n):
            wrong.append(_term(comp, s, node) != s.registers[n])
    pointers = [x for t, x in zip(spec.params, s.args, strict=True) if t.name == "ptr"]
    size = footprint(spec) if spec.uses_memory else 0
    for address, nbytes in comp.accesses:
        if not pointers or size < nbytes:
            wrong.append(z3.BoolVal(True))
            continue
        a = _term(comp, s, address)
        wrong.append(z3.Not(z3.ULE(a - pointers[0], z3.BitVecVal(size - nbytes, 64))))
    return wrong, s, comp


def prove(isa: Isa, spec: Routine, program: MachineProgram, timeout_ms: int = 60_000) -> Proof:
    start = time.perf_counter()
    wrong, s, _ = obligations(isa, spec, program)
    if not wrong:
        raise ValueError("the routine has neither a result nor a memory effect")
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.add(z3.Or(wrong))
    status = solver.check()
    if status == z3.unsat:
        return Proof(True, "z3: equal to the routine for all inputs and machine states",
                     seconds=time.perf_counter() - start)
    if status == z3.unknown:
        return Proof(False, f"z3 gave up ({solver.reason_unknown()})",
                     seconds=time.perf_counter() - start)
    # a counterexample the evaluator can replay: it gives every undefined value one value
    if s.undefined:
        solver.push()
        one = z3.BitVec("undefined", 64)
        solver.add(*[u == one for u in s.undefined])
        if solver.check() != z3.sat:
            solver.pop()
            solver.check()
    model = solver.model()
    vector = _vector(isa, spec, s, model)
    return Proof(False, f"z3: wrong on inputs {list(vector.args)}", vector,
                 time.perf_counter() - start)


def _vector(isa: Isa, spec: Routine, s: _Setup, model) -> MachineVector:
    def value(t) -> int:
        return model.eval(t, model_completion=True).as_long()

    args = [value(x) for x in s.args]
    regs = [value(r) for r in s.registers]
    memory = b""
    if spec.uses_memory:
        pointer = next(x for t, x in zip(spec.params, s.args, strict=True) if t.name == "ptr")
        memory = bytes(value(z3.Select(s.memory, pointer + i)) for i in range(footprint(spec)))
        # the evaluator's memory sits at DATA_ADDRESS: move the pointer there
        for i, (t, name) in enumerate(zip(spec.params, isa.abi.args, strict=False)):
            if t.name == "ptr":
                args[i] = regs[isa.number(name)] = DATA_ADDRESS
    if isa.zero_register is not None:
        regs[isa.zero_register] = 0
    undefined = value(s.undefined[0]) if s.undefined else 0
    return MachineVector(tuple(args), tuple(regs), tuple(value(f) & 1 for f in s.flags),
                         undefined, memory)
