"""The C view: a C99 function over <stdint.h> types, with the IR's semantics
spelled out (shift amounts modulo the width, clz/ctz of 0 equal the width,
division by zero all ones).  Arithmetic narrower than 64 bits is done in
uint64_t and truncated, so no integer promotion can overflow.  A precondition
is a comment at the top of the body (`requires: x != 0`): the caller's
obligation, as the reference C leaves the inputs outside it undefined."""

from __future__ import annotations

from sem.canon import postorder, precondition_order
from sem.ir import Node, Routine
from sem.views.naming import Naming, is_leaf, temporaries

PRELUDE = """#include <stdint.h>
#include <string.h>
"""
MEMORY_HELPERS = "".join(
    f"static inline uint{w}_t load{w}(const uint8_t *p) "
    f"{{ uint{w}_t v; memcpy(&v, p, sizeof v); return v; }}\n"
    f"static inline void store{w}(uint8_t *p, uint{w}_t v) {{ memcpy(p, &v, sizeof v); }}\n"
    for w in (8, 16, 32, 64)
)
INFIX = {"add": "+", "sub": "-", "mul": "*", "and": "&", "or": "|", "xor": "^",
         "eq": "==", "ne": "!=", "ult": "<", "ule": "<="}


def ctype(w: int, signed: bool = False) -> str:
    w = 8 if w == 1 else w
    return f"{'int' if signed else 'uint'}{w}_t"


def _expr(n: Node, v) -> str:
    w = n.width
    a = [v(x) for x in n.args]
    aw = n.args[0].width if n.args else w
    u, s = ctype(w), ctype(aw, True)
    m = w - 1
    if n.op in ("shl", "lshr", "ashr", "rotl", "rotr"):  # the IR takes amounts modulo w
        k = str(n.args[1].attr % w) if n.args[1].op == "const" else f"({a[1]} & {m})"
    wide = lambda x: f"(uint64_t){x}"  # noqa: E731
    match n.op:
        case "add" | "sub" | "mul" | "and" | "or" | "xor":
            return f"({u})({wide(a[0])} {INFIX[n.op]} {wide(a[1])})"
        case "eq" | "ne" | "ult" | "ule":
            return f"({a[0]} {INFIX[n.op]} {a[1]})"
        case "slt" | "sle":
            return f"(({s}){a[0]} {'<' if n.op == 'slt' else '<='} ({s}){a[1]})"
        case "udiv" | "urem":  # C's x / 0 is undefined; the IR's is all ones, x % 0 is x
            zero = f"({u})~({u})0" if n.op == "udiv" else a[0]
            return f"({a[1]} ? ({u})({a[0]} {'/' if n.op == 'udiv' else '%'} {a[1]}) : {zero})"
        case "mulhu" if w == 64:
            return f"(uint64_t)(((unsigned __int128){a[0]} * {a[1]}) >> 64)"
        case "mulhs" if w == 64:
            return f"(uint64_t)(((__int128)(int64_t){a[0]} * (int64_t){a[1]}) >> 64)"
        case "mulhu":
            return f"({u})(({wide(a[0])} * {a[1]}) >> {w})"
        case "mulhs":
            return f"({u})((uint64_t)((int64_t)({s}){a[0]} * ({s}){a[1]}) >> {w})"
        case "shl":
            return f"({u})({wide(a[0])} << {k})"
        case "lshr":
            return f"({u})({a[0]} >> {k})"
        case "ashr":
            return f"({u})(({s}){a[0]} >> {k})"
        case "rotl" | "rotr":
            up, down = ("<<", ">>") if n.op == "rotl" else (">>", "<<")
            return f"({u})(({wide(a[0])} {up} {k}) | ({wide(a[0])} {down} (({w} - {k}) & {m})))"
        case "not":
            return f"({u})~{a[0]}"
        case "neg":
            return f"({u})(0 - {wide(a[0])})"
        case "popcount":
            return f"({u})__builtin_popcountll({a[0]})"
        case "clz":
            return f"({u})({a[0]} ? __builtin_clzll({a[0]}) - {64 - w} : {w})"
        case "ctz":
            return f"({u})({a[0]} ? __builtin_ctzll({a[0]}) : {w})"
        case "select":
            return f"({a[0]} ? {a[1]} : {a[2]})"
        case "zext":
            return f"({u}){a[0]}"
        case "sext" if aw == 1:
            return f"({u})(0 - (uint64_t){a[0]})"
        case "sext":
            return f"({u})({s}){a[0]}"
        case "trunc":
            return f"({a[0]} & 1)" if w == 1 else f"({u}){a[0]}"
        case "load":
            return f"load{w}({a[1]} + {n.attr})"
    raise ValueError(f"no C rendering for {n.op!r}")


def render(r: Routine, naming: Naming, prelude: bool = True) -> str:
    """`prelude=False` leaves out the includes and memory helpers (to join several views)."""
    temps = temporaries(r)

    def v(n: Node) -> str:
        if n.op == "param":
            return naming.inputs[n.attr]
        if n.op == "const":
            return f"UINT64_C({n.attr:#x})" if n.width == 64 else f"{n.attr:#x}u"
        return "" if n.op == "mem" else temps[id(n)]

    body = []
    if r.requires is not None:
        body.append(f"    /* requires: {_inline(r, r.requires, naming)} */")
    for n in postorder(r):
        if is_leaf(n):
            continue
        if n.op == "store":
            vw = n.args[2].width
            body.append(f"    store{vw}({v(n.args[1])} + {n.attr}, {v(n.args[2])});")
        else:
            body.append(f"    {ctype(n.width)} {temps[id(n)]} = {_expr(n, v)};")
    if r.result is not None:
        body.append(f"    return {v(r.result)};")
    params = ", ".join(
        f"uint8_t *{nm}" if t.name == "ptr" else f"{ctype(t.width)} {nm}"
        for nm, t in zip(naming.inputs, r.params, strict=True)
    ) or "void"
    ret = "void" if r.result is None else ctype(r.result.width)
    head = (PRELUDE + (MEMORY_HELPERS if r.uses_memory else "") + "\n") if prelude else ""
    return f"{head}{ret} {naming.function}({params})\n{{\n" + "\n".join(body) + "\n}\n"


def _inline(r: Routine, node: Node, naming: Naming) -> str:
    """The precondition as one C expression over the inputs."""
    text: dict[int, str] = {}
    for n in precondition_order(r):
        if n.op == "param":
            text[id(n)] = naming.inputs[n.attr]
        elif n.op == "const":
            text[id(n)] = f"{n.attr:#x}u"
        else:
            text[id(n)] = _expr(n, lambda x: text[id(x)])
    return text[id(node)]
