"""The SMT-LIB 2 view: a `define-fun` over bit-vectors (and, for routines that
touch memory, an array from 64-bit addresses to bytes), readable by any
QF_ABV solver.  Booleans are (_ BitVec 1); a routine with both a result and a
memory effect gets two functions, NAME and NAME_mem; one with a precondition
also NAME_requires, a Bool over the inputs: claims about the routine assume it
(`(=> (NAME_requires x) ...)`)."""

from __future__ import annotations

from sem.canon import postorder, precondition_order
from sem.ir import Node, Routine
from sem.views.naming import Naming, is_leaf, temporaries

MEMORY_SORT = "(Array (_ BitVec 64) (_ BitVec 8))"
SIMPLE = {"add": "bvadd", "sub": "bvsub", "mul": "bvmul", "and": "bvand", "or": "bvor",
          "xor": "bvxor", "not": "bvnot", "neg": "bvneg", "udiv": "bvudiv", "urem": "bvurem"}
SHIFT = {"shl": "bvshl", "lshr": "bvlshr", "ashr": "bvashr"}
COMPARE = {"ult": "bvult", "ule": "bvule", "slt": "bvslt", "sle": "bvsle"}


def sort(w: int) -> str:
    return f"(_ BitVec {w})"


def bits(value: int, w: int) -> str:
    return f"#x{value:0{w // 4}x}" if w % 4 == 0 else f"#b{value:0{w}b}"


def _expr(n: Node, a: list[str]) -> str:
    w = n.width
    aw = n.args[0].width if n.args else w
    if n.op in ("shl", "lshr", "ashr", "rotl", "rotr") and n.args[1].op == "const":
        amount = lambda: bits(n.args[1].attr % w, w)  # noqa: E731
    else:
        amount = lambda: f"(bvand {a[1]} {bits(w - 1, w)})"  # noqa: E731  the IR takes it modulo w
    match n.op:
        case op if op in SIMPLE:
            return f"({SIMPLE[op]} {' '.join(a)})"
        case op if op in SHIFT:
            return f"({SHIFT[op]} {a[0]} {amount()})"
        case "rotl" | "rotr":
            up, down = ("bvshl", "bvlshr") if n.op == "rotl" else ("bvlshr", "bvshl")
            back = f"(bvand (bvsub {bits(w, w)} {amount()}) {bits(w - 1, w)})"
            return f"(bvor ({up} {a[0]} {amount()}) ({down} {a[0]} {back}))"
        case "mulhu" | "mulhs":
            ext = "zero_extend" if n.op == "mulhu" else "sign_extend"
            return (f"((_ extract {2 * w - 1} {w}) "
                    f"(bvmul ((_ {ext} {w}) {a[0]}) ((_ {ext} {w}) {a[1]})))")
        case "popcount":
            terms = [f"((_ zero_extend {w - 1}) ((_ extract {i} {i}) {a[0]}))" for i in range(w)]
            return f"(bvadd {' '.join(terms)})" if w > 1 else a[0]
        case "clz" | "ctz":
            result = bits(w, w)
            order = range(w) if n.op == "clz" else reversed(range(w))  # the last test wins
            for i in order:
                value = w - 1 - i if n.op == "clz" else i
                result = f"(ite (= ((_ extract {i} {i}) {a[0]}) #b1) {bits(value, w)} {result})"
            return result
        case "eq":
            return f"(ite (= {a[0]} {a[1]}) #b1 #b0)"
        case "ne":
            return f"(ite (= {a[0]} {a[1]}) #b0 #b1)"
        case op if op in COMPARE:
            return f"(ite ({COMPARE[op]} {a[0]} {a[1]}) #b1 #b0)"
        case "select":
            return f"(ite (= {a[0]} #b1) {a[1]} {a[2]})"
        case "zext" | "sext":
            return f"((_ {'zero' if n.op == 'zext' else 'sign'}_extend {w - aw}) {a[0]})"
        case "trunc":
            return f"((_ extract {w - 1} 0) {a[0]})"
        case "load":
            addr = [f"(bvadd {a[1]} {bits(n.attr + i, 64)})" for i in range(w // 8)]
            parts = [f"(select {a[0]} {x})" for x in reversed(addr)]
            return parts[0] if len(parts) == 1 else f"(concat {' '.join(parts)})"
        case "store":
            vw = n.args[2].width
            mem = a[0]
            for i in range(vw // 8):
                byte = f"((_ extract {8 * i + 7} {8 * i}) {a[2]})"
                mem = f"(store {mem} (bvadd {a[1]} {bits(n.attr + i, 64)}) {byte})"
            return mem
    raise ValueError(f"no SMT-LIB rendering for {n.op!r}")


def render(r: Routine, naming: Naming) -> str:
    temps = temporaries(r)

    def v(n: Node) -> str:
        if n.op == "param":
            return naming.inputs[n.attr]
        if n.op == "const":
            return bits(n.attr, n.width)
        if n.op == "mem":
            return "mem"
        return temps[id(n)]

    bindings = [(temps[id(n)], _expr(n, [v(a) for a in n.args]))
                for n in postorder(r) if not is_leaf(n)]
    params = [f"({nm} {sort(t.width)})"
              for nm, t in zip(naming.inputs, r.params, strict=True)]
    if r.uses_memory:
        params.append(f"(mem {MEMORY_SORT})")

    def define(name: str, out: Node, out_sort: str) -> str:
        lets = "".join(f"\n  (let (({t} {e}))" for t, e in bindings)
        closing = ")" * len(bindings)
        return f"(define-fun {name} ({' '.join(params)}) {out_sort}{lets}\n  {v(out)}{closing})\n"

    text = f"; routine {naming.function}: inputs {', '.join(t.name for t in r.params) or 'none'}\n"
    if r.requires is not None:
        text += _requires(r, naming, [p for p in params if not p.startswith("(mem ")])
    if r.result is not None:
        text += define(naming.function, r.result, sort(r.result.width))
    if r.memory is not None:
        suffix = "_mem" if r.result is not None else ""
        text += define(naming.function + suffix, r.memory, MEMORY_SORT)
    return text


def _requires(r: Routine, naming: Naming, params: list[str]) -> str:
    """NAME_requires: the precondition, a Bool over the inputs."""
    text: dict[int, str] = {}
    for n in precondition_order(r):
        if n.op == "param":
            text[id(n)] = naming.inputs[n.attr]
        elif n.op == "const":
            text[id(n)] = bits(n.attr, n.width)
        else:
            text[id(n)] = _expr(n, [text[id(a)] for a in n.args])
    return (f"; defined where {naming.function}_requires holds (any answer outside)\n"
            f"(define-fun {naming.function}_requires ({' '.join(params)}) Bool\n"
            f"  (= {text[id(r.requires)]} #b1))\n")
