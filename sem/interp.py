"""Reference semantics of the IR: the oracle every other rendering is tested against."""

from __future__ import annotations

from dataclasses import dataclass

from sem.canon import postorder, precondition_order
from sem.ir import Node, Routine


@dataclass(frozen=True)
class Memory:
    """A flat little-endian memory window [base, base + len(data)); stores make a new one."""

    base: int
    data: bytes

    def load(self, addr: int, nbytes: int) -> int:
        off = self._offset(addr, nbytes)
        return int.from_bytes(self.data[off : off + nbytes], "little")

    def store(self, addr: int, nbytes: int, value: int) -> Memory:
        off = self._offset(addr, nbytes)
        data = bytearray(self.data)
        data[off : off + nbytes] = value.to_bytes(nbytes, "little")
        return Memory(self.base, bytes(data))

    def _offset(self, addr: int, nbytes: int) -> int:
        off = addr - self.base
        if off < 0 or off + nbytes > len(self.data):
            raise IndexError(f"access of {nbytes} bytes at {addr:#x} is outside the test memory")
        return off


def signed(v: int, w: int) -> int:
    return v - (1 << w) if v >> (w - 1) & 1 else v


def _clz(v: int, w: int) -> int:
    return w - v.bit_length()


def _ctz(v: int, w: int) -> int:
    return w if v == 0 else (v & -v).bit_length() - 1


def _rotl(v: int, n: int, w: int) -> int:
    n %= w
    return ((v << n) | (v >> (w - n))) & ((1 << w) - 1)


def _eval(n: Node, a: list, args: tuple[int, ...], memory: Memory | None):
    w = n.width
    mask = (1 << w) - 1
    op = n.op
    if op == "param":
        return args[n.attr] & mask
    if op == "const":
        return n.attr
    if op == "mem":
        return memory
    if op == "load":
        return a[0].load(a[1] + n.attr, w // 8)
    if op == "store":
        return a[0].store(a[1] + n.attr, n.args[2].width // 8, a[2])
    if op == "select":
        return a[1] if a[0] else a[2]
    aw = n.args[0].width
    x = a[0]
    y = a[1] if len(a) > 1 else 0
    match op:
        case "add": return (x + y) & mask
        case "sub": return (x - y) & mask
        case "mul": return (x * y) & mask
        case "mulhu": return (x * y) >> w
        case "mulhs": return ((signed(x, aw) * signed(y, aw)) >> w) & mask
        case "udiv": return x // y if y else mask
        case "urem": return x % y if y else x
        case "and": return x & y
        case "or": return x | y
        case "xor": return x ^ y
        case "shl": return (x << (y % w)) & mask
        case "lshr": return x >> (y % w)
        case "ashr": return (signed(x, aw) >> (y % w)) & mask
        case "rotl": return _rotl(x, y, w)
        case "rotr": return _rotl(x, w - y % w, w)
        case "not": return ~x & mask
        case "neg": return -x & mask
        case "popcount": return bin(x).count("1")
        case "clz": return _clz(x, w)
        case "ctz": return _ctz(x, w)
        case "eq": return int(x == y)
        case "ne": return int(x != y)
        case "ult": return int(x < y)
        case "ule": return int(x <= y)
        case "slt": return int(signed(x, aw) < signed(y, aw))
        case "sle": return int(signed(x, aw) <= signed(y, aw))
        case "zext" | "trunc": return x & mask
        case "sext": return signed(x, aw) & mask
    raise ValueError(f"the interpreter does not know operation {op!r}")


@dataclass(frozen=True)
class Evaluation:
    """What evaluating a routine gave: its result and its final memory."""

    result: int | None
    memory: Memory | None


# A routine's nodes in evaluation order, each with the places of its operands in that
# order, worked out once per routine object: a routine is evaluated on thousands of
# vectors, and walking its graph again for each took a third of the time.  Keyed by the
# object's id, which the entry keeps alive so that the id is not reused; a Routine
# compares its nodes with ==, which builds IR, so it cannot be a dict key itself.
Steps = list[tuple[Node, tuple[int, ...]]]


@dataclass(frozen=True)
class EvaluationPlan:
    routine: Routine
    steps: Steps
    places: dict[int, int]  # id(node) -> its place in `steps`


_PLANS: dict[tuple[int, bool], EvaluationPlan] = {}
PLANS_KEPT = 1024  # routines made on the fly (lifted programs) must not pile up here


def plan(r: Routine, precondition: bool) -> EvaluationPlan:
    """The routine's nodes in evaluation order with their operands' places (of its
    precondition with `precondition`), made once per routine object."""
    key = (id(r), precondition)
    found = _PLANS.get(key)
    if found is None or found.routine is not r:
        if len(_PLANS) >= PLANS_KEPT:
            _PLANS.clear()
        order = precondition_order(r) if precondition else postorder(r)
        places = {id(n): i for i, n in enumerate(order)}
        steps = [(n, tuple(places[id(a)] for a in n.args)) for n in order]
        found = _PLANS[key] = EvaluationPlan(r, steps, places)
    return found


def _values(made: EvaluationPlan, args: tuple[int, ...], memory: Memory | None) -> list:
    values: list = [None] * len(made.steps)
    for i, (n, refs) in enumerate(made.steps):
        values[i] = _eval(n, [values[j] for j in refs], args, memory)
    return values


def run(r: Routine, args: tuple[int, ...] | list[int], memory: Memory | None = None) -> Evaluation:
    """Evaluate a routine on concrete inputs (and a memory window if it uses memory)."""
    if len(args) != len(r.params):
        raise ValueError(f"the routine takes {len(r.params)} inputs, got {len(args)}")
    made = plan(r, precondition=False)
    values = _values(made, tuple(args), memory)
    result = None if r.result is None else values[made.places[id(r.result)]]
    final = memory if r.memory is None else values[made.places[id(r.memory)]]
    return Evaluation(result, final)


def admits(r: Routine, args: tuple[int, ...] | list[int]) -> bool:
    """Whether the inputs are inside the routine's domain (its precondition holds; every
    input is, for a routine without one).  Outside it any answer is right."""
    if r.requires is None:
        return True
    made = plan(r, precondition=True)
    return _values(made, tuple(args), None)[made.places[id(r.requires)]] == 1
