"""Small routines covering every IR operation at every width (shared by the sem tests)."""

from sem import ir
from sem.ir import Mem, Node, Routine, bv8, bv16, bv32, bv64, ptr

TYPES = {8: bv8, 16: bv16, 32: bv32, 64: bv64}
BINARY = ("add", "sub", "mul", "mulhs", "mulhu", "udiv", "urem", "and", "or", "xor",
          "shl", "lshr", "ashr", "rotl", "rotr", "eq", "ne", "ult", "ule", "slt", "sle")
UNARY = ("not", "neg", "popcount", "clz", "ctz")


def _widen(x: Node) -> Node:
    """Comparisons return 1 bit; return them as 8 bits so the ABI sees a byte."""
    return ir.zext(x, 8) if x.width == 1 else x


def _small_routines():
    for w, t in TYPES.items():
        x, y = Node("param", w, (), 0), Node("param", w, (), 1)
        for op in BINARY:
            yield f"{op}{w}", Routine((t, t), _widen(ir.build(op, x, y)), None)
            const = 5 if "s" in op[:2] else -3
            yield f"{op}{w}_const", Routine((t,), _widen(ir.build(op, x, const)), None)
        for op in UNARY:
            yield f"{op}{w}", Routine((t,), ir.build(op, x), None)
        c = ir.ult(x, y)
        yield f"select{w}", Routine((t, t), ir.select(c, x + 7, y), None)
        yield f"select{w}_const", Routine((t, t), ir.select(c, -1, x), None)
        # the condition also used as a value: computed into a register, not fused into the
        # select (x86-64 cmp + cmovcc)
        yield f"select{w}_shared", Routine((t, t), ir.select(c, x, y) + ir.zext(c, w), None)
        for to in (tw for tw in TYPES if tw > w):
            yield f"zext{w}_{to}", Routine((t,), ir.zext(x, to), None)
            yield f"sext{w}_{to}", Routine((t,), ir.sext(x, to), None)
            wide = Node("param", to, (), 0)
            yield f"trunc{to}_{w}", Routine((TYPES[to],), ir.trunc(wide, w), None)
        p = Node("param", 64, (), 0)
        mem = Mem()
        v = mem.load(p, 8, w)
        mem.store(p, 0, v + 1)
        mem.store(p, 16, ir.const(-2, w))
        yield f"memory{w}", Routine((ptr,), mem.load(p, 4, w) ^ v, mem.token)


SMALL = list(_small_routines())
