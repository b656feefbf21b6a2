"""The typed IR of loop-free routines, and the Python DSL that builds it.

A routine is a DAG of `Node`s over fixed-width bit-vectors (1 for booleans,
8/16/32/64 for values) plus an explicit memory token: every `load` names the
memory state it reads and every `store` turns one memory state into the next,
so the order of memory effects is part of the structure, not of the schedule.

Python's operators build nodes (`x & (x - 1)`).  Where Python is ambiguous
about signedness (`>>`, `<`, `<=`, ...) the operator refuses and names the
explicit helper (`lshr`/`ashr`, `ult`/`slt`, ...).

Semantics worth stating once (the interpreter, Z3 and both lowerings agree):
shift and rotate amounts are taken modulo the width; clz(0) = ctz(0) = width;
mulhs/mulhu are the high half of the double-width signed/unsigned product;
udiv/urem are unsigned division as SMT-LIB's bvudiv/bvurem (and RISC-V's divu/remu)
define it: x / 0 is all ones, x % 0 is x.

A routine may carry a precondition (`requires`): a 1-bit node over its inputs
saying where it is defined, the reference C's undefined behaviour made explicit
(Hacker's Delight's snoob divides by the lowest set bit: x != 0).  Outside it any
answer is right, so everything that compares a program with the routine (proofs,
test vectors, the machine checks, the motherboard's oracle) asks only inside it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

VALUE_WIDTHS = (8, 16, 32, 64)
BOOL = 1
MEMORY = 0  # the width of a memory token


@dataclass(frozen=True)
class OpInfo:
    arity: int
    commutative: bool = False


# op -> shape.  Result widths: see `_result_width`.
OPS: dict[str, OpInfo] = {
    "param": OpInfo(0),  # attr = input position
    "const": OpInfo(0),  # attr = value, normalised to the width
    "mem": OpInfo(0),  # the routine's initial memory state
    **{op: OpInfo(2, True) for op in ("add", "mul", "mulhs", "mulhu", "and", "or", "xor")},
    **{op: OpInfo(2) for op in ("sub", "shl", "lshr", "ashr", "rotl", "rotr", "udiv", "urem")},
    **{op: OpInfo(1) for op in ("not", "neg", "popcount", "clz", "ctz")},
    **{op: OpInfo(2, True) for op in ("eq", "ne")},
    **{op: OpInfo(2) for op in ("ult", "ule", "slt", "sle")},
    "select": OpInfo(3),  # (condition, if true, if false)
    "zext": OpInfo(1),  # attr = new width
    "sext": OpInfo(1),
    "trunc": OpInfo(1),
    "load": OpInfo(2),  # (memory, base pointer); attr = byte offset; width = loaded width
    "store": OpInfo(3),  # (memory, base pointer, value); attr = byte offset
}
COMPARISONS = ("eq", "ne", "ult", "ule", "slt", "sle")


class IRError(TypeError):
    """A routine that is not well formed; the message says how to write it."""


class Node:
    """One operation.  Identity inside a process is the Python object; the
    routine's identity is computed by `canon` from structure alone."""

    __slots__ = ("op", "width", "args", "attr")
    __hash__ = object.__hash__  # `==` builds an `eq` node, so hashing stays by identity

    def __init__(self, op: str, width: int, args: tuple[Node, ...] = (), attr: int | None = None):
        self.op, self.width, self.args, self.attr = op, width, args, attr

    def __repr__(self) -> str:
        return f"Node({self.op}/{self.width}{'' if self.attr is None else f':{self.attr}'})"

    def __bool__(self) -> bool:
        raise IRError("a symbolic value has no truth value here; use select(cond, a, b)")

    # arithmetic and logic
    def __add__(self, o): return build("add", self, o)
    def __radd__(self, o): return build("add", o, self)
    def __sub__(self, o): return build("sub", self, o)
    def __rsub__(self, o): return build("sub", o, self)
    def __mul__(self, o): return build("mul", self, o)
    def __rmul__(self, o): return build("mul", o, self)
    def __and__(self, o): return build("and", self, o)
    def __rand__(self, o): return build("and", o, self)
    def __or__(self, o): return build("or", self, o)
    def __ror__(self, o): return build("or", o, self)
    def __xor__(self, o): return build("xor", self, o)
    def __rxor__(self, o): return build("xor", o, self)
    def __lshift__(self, o): return build("shl", self, o)
    def __invert__(self): return build("not", self)
    def __neg__(self): return build("neg", self)
    def __eq__(self, o): return build("eq", self, o)  # type: ignore[override]
    def __ne__(self, o): return build("ne", self, o)  # type: ignore[override]

    def __rshift__(self, o):
        raise IRError("`>>` is ambiguous: write lshr(x, n) (logical) or ashr(x, n) (arithmetic)")

    __rrshift__ = __rshift__

    def _ordered(self, o):
        raise IRError("`<`/`>` are ambiguous: write ult/ule/ugt/uge or slt/sle/sgt/sge")

    __lt__ = __le__ = __gt__ = __ge__ = _ordered


def const(value: int, width: int) -> Node:
    return Node("const", width, (), value & ((1 << width) - 1))


def _coerce(x, width: int) -> Node:
    if isinstance(x, Node):
        return x
    if isinstance(x, bool) or not isinstance(x, int):
        raise IRError(f"cannot use {x!r} in a routine; use a Node or an int constant")
    return const(x, width)


def _result_width(op: str, args: tuple[Node, ...], attr: int | None) -> int:
    ws = [a.width for a in args]
    if op in COMPARISONS:
        if ws[0] != ws[1]:
            raise IRError(f"{op}: operands have widths {ws}; extend one with zext/sext first")
        return BOOL
    if op == "select":
        if ws[0] != BOOL or ws[1] != ws[2]:
            raise IRError(f"select needs a 1-bit condition and equal-width arms, got {ws}")
        return ws[1]
    if op in ("zext", "sext"):
        if attr not in VALUE_WIDTHS or attr <= ws[0]:
            raise IRError(f"{op} to {attr} bits from {ws[0]}: the new width must be wider")
        return attr
    if op == "trunc":
        if attr is None or not 1 <= attr < ws[0]:
            raise IRError(f"trunc to {attr} bits from {ws[0]}: the new width must be narrower")
        return attr
    if len(set(ws)) != 1:
        raise IRError(f"{op}: operands have widths {ws}; extend one with zext/sext first")
    return ws[0]


def build(op: str, *xs, attr: int | None = None) -> Node:
    """Make a node, turning int constants into constants of the other operand's width."""
    width = next((x.width for x in xs if isinstance(x, Node) and x.width), None)
    if op == "select":
        width = next((x.width for x in xs[1:] if isinstance(x, Node)), None)
    if width is None:
        raise IRError(f"{op}: at least one operand must be a routine value, not only constants")
    args = tuple(_coerce(x, BOOL if (op == "select" and i == 0) else width)
                 for i, x in enumerate(xs))
    return Node(op, _result_width(op, args, attr), args, attr)


# explicit helpers where Python operators are ambiguous or missing
def lshr(x, n): return build("lshr", x, n)
def ashr(x, n): return build("ashr", x, n)
def rotl(x, n): return build("rotl", x, n)
def rotr(x, n): return build("rotr", x, n)
def ult(a, b): return build("ult", a, b)
def ule(a, b): return build("ule", a, b)
def ugt(a, b): return build("ult", b, a)
def uge(a, b): return build("ule", b, a)
def slt(a, b): return build("slt", a, b)
def sle(a, b): return build("sle", a, b)
def sgt(a, b): return build("slt", b, a)
def sge(a, b): return build("sle", b, a)
def mulhs(a, b): return build("mulhs", a, b)
def mulhu(a, b): return build("mulhu", a, b)
def udiv(a, b): return build("udiv", a, b)
def urem(a, b): return build("urem", a, b)
def popcount(x): return build("popcount", x)
def clz(x): return build("clz", x)
def ctz(x): return build("ctz", x)
def select(cond, if_true, if_false): return build("select", cond, if_true, if_false)
def zext(x, width: int): return build("zext", x, attr=width)
def sext(x, width: int): return build("sext", x, attr=width)
def trunc(x, width: int): return build("trunc", x, attr=width)
def smin(a, b): return select(slt(a, b), a, b)
def smax(a, b): return select(slt(a, b), b, a)


@dataclass(frozen=True)
class Type:
    """An input's type: a bit-vector of `width` bits, or a pointer into memory."""

    name: str
    width: int

    def __repr__(self) -> str:
        return self.name


bv8, bv16, bv32, bv64 = (Type(f"bv{w}", w) for w in VALUE_WIDTHS)
ptr = Type("ptr", 64)
TYPES = {t.name: t for t in (bv8, bv16, bv32, bv64, ptr)}


class Mem:
    """The DSL's handle on memory: it threads the memory token through loads and
    stores in program order (annotate a routine parameter with `Mem`)."""

    def __init__(self, token: Node | None = None):
        self.token = token or Node("mem", MEMORY)
        self.used = False

    def load(self, base: Node, offset: int, width: int) -> Node:
        self._check(base, width)
        self.used = True
        return Node("load", width, (self.token, base), offset)

    def store(self, base: Node, offset: int, value: Node) -> None:
        self._check(base, value.width)
        self.used = True
        self.token = Node("store", MEMORY, (self.token, base, value), offset)

    @staticmethod
    def _check(base: Node, width: int) -> None:
        if not isinstance(base, Node) or base.width != 64:
            raise IRError("memory is addressed through a `ptr` input (64-bit base) plus an offset")
        if width not in VALUE_WIDTHS:
            raise IRError(f"memory holds 8/16/32/64-bit values, not {width}-bit ones")


@dataclass
class Routine:
    """A routine's meaning: input types, an optional result and an optional final
    memory state, and an optional precondition `requires` (a 1-bit node over the
    inputs: the routine is defined where it is 1; None: everywhere), part of the
    identity.  `hint_name`/`hint_params` are names a user wrote; they are views,
    stored in the names table, and never part of the identity."""

    params: tuple[Type, ...]
    result: Node | None
    memory: Node | None
    requires: Node | None = None
    hint_name: str | None = field(default=None, compare=False)
    hint_params: tuple[str, ...] = field(default=(), compare=False)

    @property
    def result_width(self) -> int | None:
        return None if self.result is None else self.result.width

    @property
    def uses_memory(self) -> bool:
        return self.memory is not None


def routine(fn: Callable | None = None, *,
            requires: Callable[..., Node] | None = None) -> Routine | Callable[[Callable], Routine]:
    """Decorator: build a Routine by calling `fn` on symbolic inputs.

        @routine
        def p01(x: bv32) -> bv32:
            return x & (x - 1)

        @routine(requires=lambda x: x != 0)
        def p20(x: bv32) -> bv32: ...

    A parameter annotated `Mem` receives the memory handle (it is not an input
    register; its final state is the routine's memory effect).  `requires` is called
    on the same symbolic inputs (without the memory handle, so it reads the inputs
    only) and returns the precondition, a 1-bit value (a comparison, or several
    joined by & and |)."""
    if fn is None:
        return lambda f: _build_routine(f, requires)
    return _build_routine(fn, requires)


def _build_routine(fn: Callable, requires: Callable[..., Node] | None) -> Routine:
    hints = inspect.get_annotations(fn, eval_str=True)
    args, params, names, mem = [], [], [], None
    for pname in inspect.signature(fn).parameters:
        t = hints.get(pname)
        if t is Mem:
            mem = Mem()
            args.append(mem)
        elif isinstance(t, Type):
            args.append(Node("param", t.width, (), len(params)))
            params.append(t)
            names.append(pname)
        else:
            raise IRError(f"{fn.__name__}: annotate parameter {pname!r} with bv8..bv64, ptr or Mem")
    result = fn(*args)
    if result is not None and not isinstance(result, Node):
        raise IRError(f"{fn.__name__} must return a routine value or None, not {result!r}")
    declared = hints.get("return")
    if isinstance(declared, Type) and (result is None or result.width != declared.width):
        got = None if result is None else result.width
        raise IRError(f"{fn.__name__} is declared to return {declared} but returns width {got}")
    memory = mem.token if mem is not None and mem.token.op == "store" else None
    if result is None and memory is None:
        raise IRError(f"{fn.__name__} has no effect: return a value or store to memory")
    condition = None
    if requires is not None:
        condition = requires(*(a for a in args if not isinstance(a, Mem)))
        if not isinstance(condition, Node) or condition.width != BOOL:
            raise IRError(f"{fn.__name__}: requires must give a 1-bit value over the inputs "
                          f"(a comparison such as x != 0), not {condition!r}")
    return Routine(tuple(params), result, memory, condition, fn.__name__, tuple(names))

