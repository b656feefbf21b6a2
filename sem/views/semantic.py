"""The relation view: each operation written as `[op: inputs]`, shared values
and memory steps bound to names, outputs marked with `->`.

    p01 (x: bv32) -> bv32
      [and: x, sub(x, 1)] -> out

A precondition is a line of its own before them: `requires ne(x, 0)`.
"""

from __future__ import annotations

from sem.canon import postorder
from sem.ir import Node, Routine
from sem.views.naming import Naming, is_leaf, temporaries, use_counts


def render(r: Routine, naming: Naming) -> str:
    uses = use_counts(r)
    temps = temporaries(r)
    bound: set[int] = set()

    def label(n: Node) -> str:
        return f"{n.op}{n.width}" if n.op in ("load", "zext", "sext", "trunc") else n.op

    def args(n: Node) -> list[str]:
        parts = [expr(a) for a in n.args]
        if n.op in ("load", "store"):
            parts[1] = f"{parts[1]}+{n.attr}"
        return parts

    def expr(n: Node) -> str:
        if n.op == "param":
            return naming.inputs[n.attr]
        if n.op == "const":
            return str(n.attr) if n.attr < 4096 else hex(n.attr)
        if n.op == "mem":
            return "mem"
        if id(n) in bound:
            return temps[id(n)]
        return f"{label(n)}({', '.join(args(n))})"

    lines = []
    if r.requires is not None:
        lines.append(f"  requires {_inline(r.requires, naming)}")
    for n in postorder(r):
        if is_leaf(n):
            continue
        is_output = n is r.result or n is r.memory
        if n.op == "store" or (uses.get(id(n), 0) > 1 and not is_output):
            lines.append(f"  [{label(n)}: {', '.join(args(n))}] -> {temps[id(n)]}")
            bound.add(id(n))
    if r.result is not None:
        n = r.result
        text = expr(n) if id(n) in bound or is_leaf(n) else f"[{label(n)}: {', '.join(args(n))}]"
        lines.append(f"  {text} -> out")
    if r.memory is not None:
        lines.append(f"  {temps[id(r.memory)]} -> mem")
    inputs = ", ".join(f"{nm}: {t.name}" for nm, t in zip(naming.inputs, r.params, strict=True))
    ins = inputs + (", mem" if r.uses_memory else "")
    outs = [f"bv{r.result.width}"] if r.result is not None else []
    outs += ["mem"] if r.uses_memory else []
    return f"{naming.function} ({ins}) -> {', '.join(outs)}\n" + "\n".join(lines) + "\n"


def _inline(n: Node, naming: Naming) -> str:
    """A precondition written out whole (they are small)."""
    if n.op == "param":
        return naming.inputs[n.attr]
    if n.op == "const":
        return str(n.attr) if n.attr < 4096 else hex(n.attr)
    return f"{n.op}({', '.join(_inline(a, naming) for a in n.args)})"
