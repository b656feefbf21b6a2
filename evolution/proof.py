"""Proof that a machine program implements a routine, at full width, by Z3.

The program's meaning (semantics.compose) is translated by sem's Z3
translation over a machine state in which everything the platform ABI does
not fix is free: every register but the arguments, the upper bits of a 32-bit
x86-64 argument (System V leaves them undefined), the flags, memory, and every
value the architecture leaves undefined.  riscv64 arguments arrive
sign-extended (LP64).  The program is correct when, for all of that and every
input inside the routine's domain (its precondition: outside it any behaviour is
right, as for the reference C's undefined behaviour),

  - its result register holds the routine's result as the ABI returns it
    (x86-64: the low bits of rax; riscv64: a0 sign-extended from 32 bits),
  - memory afterwards equals the routine's memory afterwards (every byte: those of
    the routine's memory compared, the others untouched by the next obligation),
  - every callee-saved register (and the stack pointer) is unchanged,
  - every load and store stays inside the routine's memory (the bytes its own
    loads and stores touch from its pointer input), so it cannot fault where
    the routine would not.

A failed proof comes with a counterexample as a machine test vector.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import z3

from evolution.isa import Isa
from evolution.program import MachineProgram
from evolution.proof_int import Bounded, Untranslatable, sign_extended
from evolution.proof_int import translate as translate_int
from evolution.semantics import Branch, Composition, Trace, compose
from evolution.testset import MachineVector, footprint
from sem.canon import postorder
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


def obligations(isa: Isa, spec: Routine, program: MachineProgram,
                branches: Sequence[Branch] = ()) -> tuple[list, _Setup, Composition]:
    """The ways the program could be wrong, as Z3 conditions (any true: wrong); with
    `branches`, the program is a path through a compiler's code (semantics.Trace), wrong
    only where that path is the one run."""
    comp = compose(isa, program, branches)
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
    pointers = [x for t, x in zip(spec.params, s.args, strict=True) if t.name == "ptr"]
    size = footprint(spec) if spec.uses_memory else 0
    if (spec.uses_memory or stored) and pointers:
        # byte by byte inside the routine's memory; outside it, nothing is written because
        # every store must stay inside (the access obligations below)
        inputs = [*s.registers, *s.flags, *s.undefined]
        final = translate(comp.routine(None), inputs=inputs, memory=s.memory).final_memory
        wrong.append(z3.Or([z3.Select(final, pointers[0] + i)
                            != z3.Select(want.final_memory, pointers[0] + i)
                            for i in range(size)]))
    for name in isa.abi.preserved:
        n = isa.number(name)
        node = comp.registers[n]
        if not (node.op == "param" and node.attr == n):
            wrong.append(_term(comp, s, node) != s.registers[n])
    for address, nbytes in comp.accesses:
        if not pointers or size < nbytes:
            wrong.append(z3.BoolVal(True))
            continue
        a = _term(comp, s, address)
        wrong.append(z3.Not(z3.ULE(a - pointers[0], z3.BitVecVal(size - nbytes, 64))))
    if spec.requires is not None:  # wrong only where the routine is defined
        wrong = [z3.And(want.admitted, condition) for condition in wrong]
    if comp.condition:
        on_path = [_term(comp, s, c) == 1 for c in comp.condition]
        wrong = [z3.And(*on_path, condition) for condition in wrong]
    return wrong, s, comp


def integer_result_obligation(isa: Isa, spec: Routine, comp: Composition) -> list | None:
    """The result obligation over integers (proof_int): the operands' bounds and the
    difference, unsatisfiable when the program's result is the routine's; None when the
    result has no faithful integer reading.  Bit-blasting gives up on products where this
    does not."""
    args = [z3.Int(f"arg{i}") for i in range(len(spec.params))]
    bounds = [z3.And(0 <= x, x < 1 << t.width) for x, t in zip(args, spec.params, strict=True)]
    params: dict[int, Bounded] = {}
    for r, name in enumerate(isa.registers):
        v = z3.Int(f"init_{name}")
        params[r] = Bounded(v, 0, 2**64 - 1)
        bounds.append(z3.And(0 <= v, v < 2**64))
    for t, x, name in zip(spec.params, args, isa.abi.args, strict=False):
        w, n = t.width, isa.number(name)
        if w == 64:
            params[n] = Bounded(x, 0, 2**64 - 1)
        elif isa.abi.narrow_args == "sign":
            params[n] = sign_extended(Bounded(x, 0, (1 << w) - 1), w, 64)
        else:
            upper = z3.Int(f"upper_{name}")
            bounds.append(z3.And(0 <= upper, upper < 1 << (64 - w)))
            params[n] = Bounded(upper * (1 << w) + x, 0, 2**64 - 1)
    for k in range(len(isa.flags) + len(comp.undefined)):
        v = z3.Int(f"free{k}")
        width = 8 if k < len(isa.flags) else 64
        params[len(isa.registers) + k] = Bounded(v, 0, (1 << width) - 1)
        bounds.append(z3.And(0 <= v, v < 1 << width))
    inputs = {i: Bounded(x, 0, (1 << t.width) - 1)
              for i, (x, t) in enumerate(zip(args, spec.params, strict=True))}
    try:
        want = translate_int(spec.result, inputs)
        got = translate_int(comp.registers[isa.number(isa.abi.result)], params)
        if spec.requires is not None:  # the domain, read as integers too
            bounds.append(translate_int(spec.requires, inputs).term == 1)
    except Untranslatable:
        return None
    w = spec.result_width
    if w == 64:
        differ = got.term != want.term
    elif isa.abi.narrow_result == "sign" and got.narrow is not None and got.bits == w:
        differ = got.narrow.term != want.term  # a sign extension is one-to-one
    elif isa.abi.narrow_result == "sign":
        differ = got.term != z3.If(want.term >= 1 << (w - 1), want.term + 2**64 - (1 << w),
                                   want.term)
    else:
        differ = got.term % (1 << w) != want.term
    return [*bounds, differ]


def _integer_result(isa: Isa, spec: Routine, comp: Composition, timeout_ms: int
                    ) -> tuple[object, dict[str, int]]:
    """The result obligation through integers: unsat when that proves it; sat with the
    inputs (by name: `arg0`, `init_a1`...) of a real counterexample, since the reading is
    exact; unknown when it cannot tell or has no reading."""
    obligation = integer_result_obligation(isa, spec, comp)
    if obligation is None:
        return z3.unknown, {}
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.add(*obligation)
    status = solver.check()
    if status != z3.sat:
        return status, {}
    model = solver.model()
    # constants only: the model also interprets division by zero as a function
    return status, {d.name(): model[d].as_long() for d in model.decls() if d.arity() == 0}


def _pinned(s: _Setup, values: dict[str, int]) -> list:
    """The bit-vector inputs held at an integer counterexample's values."""
    named = [*s.args, *s.registers]
    return [x == values[str(x)] for x in named if str(x) in values]


def _check(conditions: list, timeout_ms: int, pins: list = ()):
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.add(z3.Or(conditions), *pins)
    return solver, solver.check()


def multiplies(node: Node) -> bool:
    """Whether a DAG multiplies two values that are not both constants."""
    return any(n.op in ("mul", "mulhu", "mulhs") and any(a.op != "const" for a in n.args)
               for n in postorder(Routine((), node, None)))


def prove(isa: Isa, spec: Routine, program: MachineProgram, timeout_ms: int = 60_000,
          branches: Sequence[Branch] = ()) -> Proof:
    """All obligations at once; should Z3 give up, one at a time.  A result computed by
    multiplying is tried through integers first (proof_int): bit-blasting multipliers of
    different shapes is hopeless; a counterexample found there is read back at the bit
    vectors' inputs pinned to its values.  `branches`: the program is a path through a
    compiler's code that meets them (semantics.Trace; prove_traces proves them all)."""
    start = time.perf_counter()
    wrong, s, comp = obligations(isa, spec, program, branches)
    if not wrong:
        raise ValueError("the routine has neither a result nor a memory effect")
    how = "z3"
    tried_integers = False
    pins: list = []
    result = comp.registers[isa.number(isa.abi.result)]
    if spec.result is not None and (multiplies(spec.result) or multiplies(result)):
        tried_integers = True
        verdict, values = _integer_result(isa, spec, comp, timeout_ms)
        if verdict == z3.unsat:
            wrong, how = wrong[1:], "z3 (the result through integer arithmetic)"
        elif verdict == z3.sat:
            # a real counterexample: the bit vectors at its inputs only need evaluating
            pins = _pinned(s, values)
    solver, status = _check(wrong, timeout_ms, pins) if wrong else (None, z3.unsat)
    if pins and status != z3.sat:  # pinned, only a counterexample says anything
        solver, status = _check(wrong, timeout_ms)
    if status == z3.unknown:
        pending = list(wrong)
        if not tried_integers and spec.result is not None and _integer_result(
                isa, spec, comp, timeout_ms)[0] == z3.unsat:
            pending = pending[1:]  # the result obligation comes first
            how = "z3 (the result through integer arithmetic)"
        # one at a time; the same one alone again would only spend the time again
        if len(pending) != 1 or len(wrong) != 1:
            status = z3.unsat
            for condition in pending:
                solver, status = _check([condition], timeout_ms)
                if status != z3.unsat:
                    break
    if status == z3.unsat:
        inputs = "inputs" if spec.requires is None else "inputs in its domain"
        return Proof(True, f"{how}: equal to the routine for all {inputs} and machine states",
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


def prove_traces(isa: Isa, spec: Routine, traces: Sequence[Trace],
                 timeout_ms: int = 60_000) -> Proof:
    """A compiler's code read as its paths (evolution/gcc.py traces), each proven where it
    is the one run: together they cover every input, since every branch has both ways
    among them.  The first path found wrong gives the counterexample."""
    seconds = 0.0
    for k, trace in enumerate(traces):
        proof = prove(isa, spec, trace.program, timeout_ms, trace.branches)
        seconds += proof.seconds
        if not proof.proven:
            where = f" (path {k + 1} of {len(traces)})" if len(traces) > 1 else ""
            return Proof(False, proof.detail + where, proof.counterexample, seconds)
    each = f", on each of its {len(traces)} paths" if len(traces) > 1 else ""
    return Proof(True, proof.detail + each, seconds=seconds)


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
