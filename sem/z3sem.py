"""The IR as Z3 bit-vector terms, and equivalence of two routines by proof.

Memory is an array from 64-bit addresses to bytes, little-endian.  Two
routines are equivalent when they have the same domain (their preconditions
hold on the same inputs) and, for every input in it and every initial memory,
they return the same value and leave the same memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from sem.canon import postorder, precondition_order
from sem.ir import Node, Routine


def _popcount(x: z3.BitVecRef, w: int) -> z3.BitVecRef:
    return z3.Sum([z3.ZeroExt(w - 1, z3.Extract(i, i, x)) for i in range(w)])


def _clz(x: z3.BitVecRef, w: int) -> z3.BitVecRef:
    result = z3.BitVecVal(w, w)
    for i in range(w):  # the highest set bit wins: it is applied last
        result = z3.If(z3.Extract(i, i, x) == 1, z3.BitVecVal(w - 1 - i, w), result)
    return result


def _ctz(x: z3.BitVecRef, w: int) -> z3.BitVecRef:
    result = z3.BitVecVal(w, w)
    for i in reversed(range(w)):  # the lowest set bit wins
        result = z3.If(z3.Extract(i, i, x) == 1, z3.BitVecVal(i, w), result)
    return result


def _load(mem, addr, nbytes: int):
    parts = [z3.Select(mem, addr + i) for i in reversed(range(nbytes))]
    return parts[0] if nbytes == 1 else z3.Concat(*parts)


def _store(mem, addr, value, nbytes: int):
    for i in range(nbytes):
        mem = z3.Store(mem, addr + i, z3.Extract(8 * i + 7, 8 * i, value))
    return mem


def _bool(b) -> z3.BitVecRef:
    return z3.If(b, z3.BitVecVal(1, 1), z3.BitVecVal(0, 1))


def _term(n: Node, a: list, inputs: list, memory):
    w = n.width
    match n.op:
        case "param": return inputs[n.attr]
        case "const": return z3.BitVecVal(n.attr, w)
        case "mem": return memory
        case "load": return _load(a[0], a[1] + n.attr, w // 8)
        case "store": return _store(a[0], a[1] + n.attr, a[2], n.args[2].width // 8)
        case "select": return z3.If(a[0] == 1, a[1], a[2])
    x = a[0]
    y = a[1] if len(a) > 1 else None
    aw = n.args[0].width
    amount = (lambda: y & (w - 1)) if w & (w - 1) == 0 else (lambda: z3.URem(y, w))
    match n.op:
        case "add": return x + y
        case "sub": return x - y
        case "mul": return x * y
        case "mulhu": return z3.Extract(2 * w - 1, w, z3.ZeroExt(w, x) * z3.ZeroExt(w, y))
        case "mulhs": return z3.Extract(2 * w - 1, w, z3.SignExt(w, x) * z3.SignExt(w, y))
        # bvudiv and bvurem: x / 0 = all ones, x % 0 = x (SMT-LIB 2.6, as the IR says)
        case "udiv": return z3.UDiv(x, y)
        case "urem": return z3.URem(x, y)
        case "and": return x & y
        case "or": return x | y
        case "xor": return x ^ y
        case "shl": return x << amount()
        case "lshr": return z3.LShR(x, amount())
        case "ashr": return x >> amount()
        case "rotl": return z3.RotateLeft(x, amount())
        case "rotr": return z3.RotateRight(x, amount())
        case "not": return ~x
        case "neg": return -x
        case "popcount": return _popcount(x, w)
        case "clz": return _clz(x, w)
        case "ctz": return _ctz(x, w)
        case "eq": return _bool(x == y)
        case "ne": return _bool(x != y)
        case "ult": return _bool(z3.ULT(x, y))
        case "ule": return _bool(z3.ULE(x, y))
        case "slt": return _bool(x < y)
        case "sle": return _bool(x <= y)
        case "zext": return z3.ZeroExt(w - aw, x)
        case "sext": return z3.SignExt(w - aw, x)
        case "trunc": return z3.Extract(w - 1, 0, x)
    raise ValueError(f"no Z3 translation for operation {n.op!r}")


@dataclass
class Symbolic:
    inputs: list
    memory: object
    result: object | None
    final_memory: object | None
    # the precondition as a Z3 boolean over the inputs (True for a routine without one)
    admitted: object = True


def translate(r: Routine, inputs: list | None = None, memory=None, prefix: str = "in") -> Symbolic:
    """Z3 terms for the routine's outputs over symbolic (or given) inputs and memory."""
    inputs = inputs or [z3.BitVec(f"{prefix}{i}", t.width) for i, t in enumerate(r.params)]
    if memory is None:
        memory = z3.Array("mem", z3.BitVecSort(64), z3.BitVecSort(8))
    terms: dict[int, object] = {}
    for n in postorder(r):
        terms[id(n)] = _term(n, [terms[id(x)] for x in n.args], inputs, memory)
    result = None if r.result is None else terms[id(r.result)]
    final = memory if r.memory is None else terms[id(r.memory)]
    return Symbolic(inputs, memory, result, final, admitted(r, inputs))


def admitted(r: Routine, inputs: list):
    """The routine's precondition over `inputs` as a Z3 boolean (true without one)."""
    if r.requires is None:
        return z3.BoolVal(True)
    terms: dict[int, object] = {}
    for n in precondition_order(r):
        terms[id(n)] = _term(n, [terms[id(x)] for x in n.args], inputs, None)
    return terms[id(r.requires)] == 1


@dataclass(frozen=True)
class EquivalenceVerdict:
    equivalent: bool
    counterexample: dict[str, int] | None  # input name -> value, when they differ
    outputs: tuple[int | None, int | None] | None = None  # both results on the counterexample
    detail: str = ""


class NotComparable(ValueError):
    """The two routines have different signatures, so they cannot mean the same."""


def equivalent(a: Routine, b: Routine, timeout_ms: int = 60_000) -> EquivalenceVerdict:
    if a.params != b.params or a.result_width != b.result_width:
        raise NotComparable(
            f"signatures differ: {list(a.params)} -> {a.result_width} vs "
            f"{list(b.params)} -> {b.result_width}; "
            "only routines of one signature can be equivalent"
        )
    sa = translate(a)
    sb = translate(b, inputs=sa.inputs, memory=sa.memory)
    differ = []
    if sa.result is not None:
        differ.append(z3.And(sa.admitted, sa.result != sb.result))
    if a.uses_memory or b.uses_memory:
        differ.append(z3.And(sa.admitted, sa.final_memory != sb.final_memory))
    if a.requires is not None or b.requires is not None:
        differ.append(sa.admitted != sb.admitted)  # one defined where the other is not
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.add(z3.Or(differ))
    status = solver.check()
    if status == z3.unsat:
        where = "inside their common domain" if a.requires is not None else "for all inputs"
        return EquivalenceVerdict(True, None, detail=f"z3: proved equal {where}")
    if status == z3.unknown:
        raise TimeoutError(f"z3 gave up ({solver.reason_unknown()}); raise the timeout to retry")
    model = solver.model()
    cex = {str(v): model.eval(v, model_completion=True).as_long() for v in sa.inputs}
    outs = None
    if sa.result is not None:
        outs = tuple(model.eval(t, model_completion=True).as_long() for t in (sa.result, sb.result))
    if model.eval(sa.admitted != sb.admitted, model_completion=True):
        detail = "preconditions differ"
    else:
        detail = "results differ" if outs and outs[0] != outs[1] else "memory effects differ"
    return EquivalenceVerdict(False, cex, outs, detail)
