"""Other formulations of a routine, found at the level of the semantic core's IR rather
than of one machine's instructions (as Souper searches LLVM IR): the smallest IR
expressions over the routine's parameters that agree with it on many inputs.

Why: a machine search walks from the start it is given, and the lowering of the
routine as written keeps the routine's algorithm.  Hacker's Delight's p25 builds the
high half of a product from 16-bit halves (18 x86-64 instructions from gcc); the IR
expression `mulhu(x, y)` says the same in one operation, and its lowering is 5.  The
same holds for a bit count written as shifts and masks (`popcount(x)`) and a parity
(`popcount(x) & 1`).  One search serves every ISA: the expression is lowered for each
board's features and handed to the machine search as one more start.

The enumeration is bottom-up by size (operations in the expression), keeping one
expression per distinct vector of values (observational equivalence: two expressions
with equal values on every test input are interchangeable for what follows), with
the values computed by numpy over all the inputs at once.  Agreement on the inputs is
only a hypothesis: a start is proven equal to the routine at full width by Z3 before
it is used, like every start (evolve.py).  The inputs are drawn inside the routine's
domain (its precondition): outside it any value is right.

Besides the enumeration, rewrite rules (RULES): an identity that holds under a side
condition, applied wherever the routine's precondition implies the side condition (Z3
decides the implication).  Hacker's Delight's snoob (p20) divides by the lowest set
bit; our routine shifts by its position, `lshr(y, ctz(x))`, which RISC-V without Zbb
counts in a loop, while `udiv(y, x & -x)` is one divuw: equal wherever x != 0, which
p20 requires.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import z3

from sem import interp
from sem.canon import postorder, routine_id
from sem.ir import Node, Routine, build, const, select, trunc, udiv, zext
from sem.z3sem import admitted, translate

VECTORS = 192  # inputs the expressions are compared on (corner values first, then random)
MAX_SIZE = 3  # operations in an expression, at most
BUDGET_S = 1.0  # seconds of enumeration at the routine's width, at most (as much again at 64)
MAX_FOUND = 3  # expressions handed on (the smallest first)
CASES_DEPTH = 3  # conditions in a case analysis, at most (see _cases)
CORNERS = (0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x55555555,
           0xAAAAAAAA, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)

_BYTE_ONES = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint64)

Expr = tuple  # ("param", i) | ("const", value) | (op, child, ...)


@dataclass(frozen=True)
class Reformulation:
    """`routine` (same parameters and result width as the original) whose result is
    `expression`, which agreed with the original on every test input."""

    routine: Routine
    expression: str


def _signed(a: np.ndarray, w: int) -> np.ndarray:
    if w == 64:
        return a.view(np.int64)
    return a.astype(np.int64) - ((a >> np.uint64(w - 1)) & np.uint64(1)).astype(np.int64) * (1 << w)


def _bit_length(a: np.ndarray) -> np.ndarray:
    """Exact below 2**53 (float64's mantissa): every width this module takes."""
    return np.frexp(a.astype(np.float64))[1].astype(np.uint64)


def _popcount(a: np.ndarray, w: int) -> np.ndarray:
    total = np.zeros_like(a)
    for shift in range(0, w, 8):
        total += _BYTE_ONES[(a >> np.uint64(shift)) & np.uint64(0xFF)]
    return total


def _unary(w: int) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """At 64 bits without clz and ctz (float64's exactness ends at 2**53)."""
    mask = np.uint64((1 << w) - 1)
    ops = {
        "neg": lambda a: (np.uint64(0) - a) & mask,
        "not": lambda a: ~a & mask,
        "popcount": lambda a: _popcount(a, w),
        "clz": lambda a: np.uint64(w) - _bit_length(a),
        "ctz": lambda a: np.where(a == 0, np.uint64(w),
                                  _bit_length(a & ((np.uint64(0) - a) & mask)) - np.uint64(1)),
    }
    return {op: fn for op, fn in ops.items() if w < 64 or op not in ("clz", "ctz")}


def _binary(w: int) -> dict[str, tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], bool]]:
    """op -> (values, commutative), each as sem/interp.py defines it (shift amounts modulo
    the width; comparisons give 0 or 1, zero-extended).  At 64 bits without the high
    halves of products (they would need 128)."""
    ops = _binary_ops(w)
    return {op: v for op, v in ops.items() if w < 64 or op not in ("mulhu", "mulhs")}


def _binary_ops(w: int) -> dict[str, tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], bool]]:
    mask = np.uint64((1 << w) - 1)
    width = np.uint64(w)

    def shift(a: np.ndarray) -> np.ndarray:
        return a % width

    return {
        "add": (lambda a, b: (a + b) & mask, True),
        "sub": (lambda a, b: (a - b) & mask, False),
        "mul": (lambda a, b: (a * b) & mask, True),
        "and": (lambda a, b: a & b, True),
        "or": (lambda a, b: a | b, True),
        "xor": (lambda a, b: a ^ b, True),
        "shl": (lambda a, b: (a << shift(b)) & mask, False),
        "lshr": (lambda a, b: a >> shift(b), False),
        "ashr": (lambda a, b: (_signed(a, w) >> shift(b).astype(np.int64)).astype(np.uint64)
                 & mask, False),
        "mulhu": (lambda a, b: (a * b) >> width, True),
        "mulhs": (lambda a, b: ((_signed(a, w) * _signed(b, w)) >> w).astype(np.uint64)
                  & mask, True),
        "eq": (lambda a, b: (a == b).astype(np.uint64), True),
        "ult": (lambda a, b: (a < b).astype(np.uint64), False),
        "slt": (lambda a, b: (_signed(a, w) < _signed(b, w)).astype(np.uint64), False),
    }


_COMPARISONS = {"eq", "ult", "slt"}


def _inputs(count: int, params: int, w: int, seed: int) -> list[tuple[int, ...]]:
    """Corner values (every pair, for the first two parameters), then random rows, a third
    of them with one parameter equal to another (routines such as p21 mean something
    only when inputs coincide, which random values never do)."""
    rng = random.Random(seed)
    mask = (1 << w) - 1
    corners = sorted({c & mask for c in CORNERS})
    rows = []
    for i in range(count):
        if i < len(corners) ** min(params, 2) and i < count // 2:
            row = [corners[(i // len(corners) ** k) % len(corners)] for k in range(params)]
        else:
            row = [rng.getrandbits(w) for _ in range(params)]
            if params > 1 and i % 3 == 0:
                a, b = rng.sample(range(params), 2)
                row[a] = row[b]
        rows.append(tuple(row))
    return rows


def _domain_rows(spec: Routine, rows: list[tuple[int, ...]], w: int,
                 seed: int) -> list[tuple[int, ...]]:
    """`rows` inside the routine's domain, as many again drawn at random for those outside
    (a precondition random values nearly never meet gives fewer rows)."""
    if spec.requires is None:
        return rows
    rng = random.Random(seed)
    inside = [row for row in rows if interp.admits(spec, row)]
    for _ in range(100 * (len(rows) - len(inside))):
        if len(inside) == len(rows):
            break
        row = tuple(rng.getrandbits(w) for _ in spec.params)
        if interp.admits(spec, row):
            inside.append(row)
    return inside


@dataclass(frozen=True)
class RewriteRule:
    """`pattern(node)`: the operand the side condition is about when the rule applies at
    `node` (else None); `side(operand)`: the condition, a 1-bit node; `rewrite(node)`:
    the replacement, equal to `node` wherever the side condition holds."""

    name: str
    pattern: Callable[[Node], Node | None]
    side: Callable[[Node], Node]
    rewrite: Callable[[Node], Node]


RULES = (
    # the shift by the lowest set bit's position is the division by that bit; at x = 0
    # the shift is by ctz(0) = w, taken modulo w (by 0), the division by 0 all ones
    RewriteRule("lshr(y, ctz(x)) = udiv(y, x & -x) where x != 0",
         lambda n: n.args[1].args[0] if n.op == "lshr" and n.args[1].op == "ctz" else None,
         lambda x: x != 0,
         lambda n: udiv(n.args[0], n.args[1].args[0] & -n.args[1].args[0])),
)


def _implied(spec: Routine, condition: Node) -> bool:
    """Whether the routine's precondition implies `condition` (a node over its inputs)."""
    s = translate(Routine(spec.params, condition, None))
    solver = z3.Solver()
    solver.set("timeout", 5_000)
    solver.add(admitted(spec, s.inputs), s.result != 1)
    return solver.check() == z3.unsat


def rewritten(spec: Routine) -> list[Reformulation]:
    """The routine with every rule applied wherever its side condition holds (one
    routine, or none where no rule applies)."""
    if spec.result is None or spec.uses_memory:
        return []
    mapped: dict[int, Node] = {}
    used: list[str] = []
    for n in postorder(spec):
        args = tuple(mapped[id(a)] for a in n.args)
        node = n if all(a is b for a, b in zip(args, n.args, strict=True)) else \
            Node(n.op, n.width, args, n.attr)
        for rule in RULES:
            operand = rule.pattern(node)
            if operand is not None and _implied(spec, rule.side(operand)):
                node = rule.rewrite(node)
                used.append(rule.name)
        mapped[id(n)] = node
    if not used:
        return []
    routine = Routine(spec.params, mapped[id(spec.result)], None, spec.requires,
                      hint_name=spec.hint_name, hint_params=spec.hint_params)
    return [Reformulation(routine, "the routine with " + "; ".join(dict.fromkeys(used)))]


def _operations(spec: Routine) -> int:
    """Operations in a routine (shared subterms once), parameters and constants not."""
    return sum(1 for n in postorder(spec) if n.op not in ("param", "const"))


def _to_ir(expr: Expr, params: list[Node], w: int) -> Node:
    op = expr[0]
    if op == "param":
        return params[expr[1]]
    if op in ("zext", "sext"):  # a parameter extended to w bits (the wide search's leaves)
        return build(op, params[expr[1]], attr=w)
    if op == "const":
        return const(expr[1], w)
    if op == "select":  # its condition a comparison, one bit
        cond, if_true, if_false = expr[1:]
        return select(build(cond[0], *(_to_ir(e, params, w) for e in cond[1:])),
                      _to_ir(if_true, params, w), _to_ir(if_false, params, w))
    args = [_to_ir(e, params, w) for e in expr[1:]]
    if op in _COMPARISONS:
        return zext(build(op, *args), w)
    return build(op, *args)


def _text(expr: Expr, names: list[str]) -> str:
    op = expr[0]
    if op == "param":
        return names[expr[1]]
    if op in ("zext", "sext"):
        return f"{op}({names[expr[1]]})"
    if op == "const":
        return hex(expr[1]) if expr[1] > 9 else str(expr[1])
    return f"{op}({', '.join(_text(e, names) for e in expr[1:])})"


def _size(expr: Expr) -> int:
    """Operations, leaves (a parameter, extended or not, or a constant) not counted."""
    if expr[0] in ("param", "const", "zext", "sext"):
        return 0
    return 1 + sum(_size(e) for e in expr[1:])


def _parameter_reads(expr: Expr) -> int:
    if expr[0] in ("param", "zext", "sext"):
        return 1
    return sum(_parameter_reads(e) for e in expr[1:] if isinstance(e, tuple))


def _cases(leaves: list[tuple[Expr, np.ndarray]], wanted: np.ndarray, params: int,
           w: int) -> Expr | None:
    """A case analysis that gives `wanted` on every input: `select(c1, l1, select(c2, l2,
    ... l))` with each condition a comparison of two parameters (eq, ult, slt, either
    way round, or its negation) and each result a parameter or constant, of at most
    CASES_DEPTH conditions, fewest first (p21's cycle among three values is two).  Sets
    of inputs are bit masks over the inputs; a condition and a result are taken when the
    result is right wherever the condition holds on the inputs still open."""
    everything = (1 << len(wanted)) - 1

    def mask(flags: np.ndarray) -> int:
        return int.from_bytes(np.packbits(flags.astype(np.uint8), bitorder="little").tobytes(),
                              "little")

    right = [(expr, mask(values == wanted)) for expr, values in leaves]
    binary = _binary(w)
    conditions = []
    for op in ("eq", "ult", "slt"):
        fn = binary[op][0]
        for i in range(params):
            for j in range(params):
                if i == j or (op == "eq" and j < i):
                    continue
                held = mask(fn(leaves[i][1], leaves[j][1]) == 1)
                cond = (op, ("param", i), ("param", j))
                conditions += [(cond, held, False), (cond, everything & ~held, True)]

    def solve(open_: int, depth: int) -> Expr | None:
        for expr, ok in right:
            if open_ & ~ok == 0:
                return expr
        if depth == 0:
            return None
        for cond, held, negated in conditions:
            taken = open_ & held
            if not taken or taken == open_:
                continue
            chosen = next((expr for expr, ok in right if taken & ~ok == 0), None)
            if chosen is None:
                continue
            rest = solve(open_ & ~held, depth - 1)
            if rest is not None:
                return ("select", cond, rest, chosen) if negated else \
                    ("select", cond, chosen, rest)
        return None

    for depth in range(1, CASES_DEPTH + 1):
        found = solve(everything, depth)
        if found is not None:
            return found
    return None


def _applicable(spec: Routine) -> int | None:
    """The width the enumeration works at, or None: a result, no memory, every parameter
    of the result's width, at most 32 bits (products are computed in 64)."""
    w = spec.result_width
    if w is None or spec.uses_memory or w > 32 or not spec.params:
        return None
    return w if all(t.width == w for t in spec.params) else None


PROBE_COLUMNS = 16  # inputs the last size is tried on before all of them (spread out)


@dataclass
class _Level:
    """The expressions of one size kept so far (one per distinct vector of values), their
    values a row each, and the same rows on the probe inputs alone."""

    exprs: list[Expr]
    values: np.ndarray  # (expressions, inputs)
    probe: np.ndarray  # (expressions, PROBE_COLUMNS)


def _enumerate(leaves: list[tuple[Expr, np.ndarray]], width: int, wanted: np.ndarray,
               mask: np.uint64, max_size: int, deadline: float,
               clock: Callable[[], float]) -> list[Expr]:
    """Bottom-up by size over `leaves` at `width` bits, one expression per distinct vector of
    values; the expressions (not leaves) whose values, masked, are `wanted`, the smallest
    size first, or none once `deadline` (on `clock`) has passed.

    Each operation runs on one operand against the whole level of the other at once.  The
    last size is only tried, never kept: each candidate on the probe inputs first, those
    right there on every input (the bulk of the work, so most of it on a twelfth of it)."""
    inputs = len(wanted)
    columns = np.linspace(0, inputs - 1, min(PROBE_COLUMNS, inputs)).astype(np.intp)
    probe_wanted = wanted[columns]
    # distinct vectors of values told apart by a random linear hash (a collision would
    # only drop an expression that is new)
    weights = np.random.default_rng(0).integers(1, 2**63, inputs, dtype=np.uint64) | 1
    seen: set[int] = set()
    found: list[Expr] = []

    def hashes(values: np.ndarray) -> list[int]:
        return (values * weights).sum(axis=1, dtype=np.uint64).tolist()

    def agree(values: np.ndarray, wanted_: np.ndarray) -> np.ndarray:
        return np.all((values & mask) == wanted_, axis=1)

    def add(level: list, exprs: Callable[[int], Expr], values: np.ndarray) -> None:
        """Keep the rows of `values` not seen before (row j is `exprs(j)`)."""
        new = []
        for j, h in enumerate(hashes(values)):
            if h not in seen:
                seen.add(h)
                new.append(j)
                level.append((exprs(j), values[j]))
        if new:
            found.extend(exprs(j) for j in np.array(new)[agree(values[new], wanted)].tolist())

    def try_last(exprs: Callable[[int], Expr], probe: np.ndarray,
                 full: Callable[[np.ndarray], np.ndarray]) -> None:
        """The candidates right on the probe inputs, then on all (`full` of their rows)."""
        rows = np.flatnonzero(agree(probe, probe_wanted))
        if len(rows):
            for j in rows[agree(full(rows), wanted)].tolist():
                found.append(exprs(j))

    def frozen(items: list[tuple[Expr, np.ndarray]]) -> _Level:
        values = (np.array([v for _, v in items], dtype=np.uint64) if items
                  else np.zeros((0, inputs), dtype=np.uint64))
        return _Level([e for e, _ in items], values, np.ascontiguousarray(values[:, columns]))

    first: list[tuple[Expr, np.ndarray]] = []
    for expr, values in leaves:
        h = hashes(values[None, :])[0]
        if h not in seen:
            seen.add(h)
            first.append((expr, values))
    levels = [frozen(first)]
    unary, binary = _unary(width), _binary(width)
    for size in range(1, max_size + 1):
        last = size == max_size
        kept: list[tuple[Expr, np.ndarray]] = []
        below = levels[size - 1]
        for op, fn in unary.items():
            if clock() > deadline:
                break
            if last:
                try_last(lambda j, op=op, e=below.exprs: (op, e[j]), fn(below.probe),
                         lambda rows, fn=fn, v=below.values: fn(v[rows]))
            else:
                add(kept, lambda j, op=op, e=below.exprs: (op, e[j]), fn(below.values))
        for op, (fn, commutative) in binary.items():
            for left_size in range(size):
                a, b = levels[left_size], levels[size - 1 - left_size]
                if commutative and left_size > size - 1 - left_size:
                    continue
                same = commutative and a is b
                # one operand a row, the other its whole level: the smaller level's rows
                by_left = not last or same or len(a.exprs) <= len(b.exprs)
                rows_of, other = (a, b) if by_left else (b, a)
                for i in range(len(rows_of.exprs)):
                    if (found and not last) or clock() > deadline:
                        break
                    start = i if same else 0
                    if by_left:
                        def expr(j, i=i, op=op, start=start, a=a, b=b):
                            return (op, a.exprs[i], b.exprs[start + j])

                        def values(rows, i=i, fn=fn, start=start, a=a, b=b):
                            return fn(a.values[i], b.values[start + rows])
                        probe = (fn(a.probe[i], b.probe[start:]) if last else None)
                    else:
                        def expr(j, i=i, op=op, a=a, b=b):
                            return (op, a.exprs[j], b.exprs[i])

                        def values(rows, i=i, fn=fn, a=a, b=b):
                            return fn(a.values[rows], b.values[i])
                        probe = fn(a.probe, b.probe[i])
                    if last:
                        try_last(expr, probe, values)
                    else:
                        add(kept, expr, values(np.arange(len(other.exprs) - start)))
        if found or last or clock() > deadline:
            break
        levels.append(frozen(kept))
    return found


def reformulations(spec: Routine, budget_s: float = BUDGET_S, max_size: int = MAX_SIZE,
                   clock: Callable[[], float] = time.thread_time) -> list[Reformulation]:
    """The smallest expressions (at most `max_found`) that agree with `spec` on every test
    input, smallest first; none for a routine this module does not take (see _applicable)
    or when nothing of `max_size` operations or fewer agrees within `budget_s` seconds of
    this thread's CPU (by default: on wall time a loaded machine found nothing for p10 and
    p15, load average 8, and the search of every board went without them).
    Only expressions of fewer operations than the routine's own are offered (others are
    the routine rewritten, which its lowering already starts from).

    Three tries, each only when the one before found nothing: expressions at the
    routine's width; at 64 bits over its parameters zero- or sign-extended, the result's
    low bits taken (a carry or a product that a narrow width loses: p14's floor average
    is `(zext x + zext y) >> 1`), in as much time again; a case analysis (see _cases)."""
    w = _applicable(spec)
    if w is None:
        return []
    operations = _operations(spec)
    max_size = min(max_size, operations - 1)
    names = list(spec.hint_params) or [f"x{i}" for i in range(len(spec.params))]
    seed = len(spec.params) * 1000 + w
    rows = _domain_rows(spec, _inputs(VECTORS, len(spec.params), w, seed), w, seed)
    wanted = np.array([interp.run(spec, row).result for row in rows], dtype=np.uint64)
    columns = np.array(rows, dtype=np.uint64).T
    constants = sorted({1, 2, w // 2, w - 1, (1 << w) - 1})
    leaves = [(("param", i), columns[i]) for i in range(len(spec.params))]
    leaves += [(("const", c), np.full(len(rows), c, dtype=np.uint64)) for c in constants]
    started = clock()
    found = _enumerate(leaves, w, wanted, np.uint64((1 << w) - 1), max_size,
                       started + budget_s, clock)
    wide = False
    if not found and w < 64:
        mask = np.uint64((1 << w) - 1)
        extended = [(("zext", i), columns[i]) for i in range(len(spec.params))]
        extended += [(("sext", i), _signed(columns[i], w).astype(np.uint64))
                     for i in range(len(spec.params))]
        extended += [(("const", c), np.full(len(rows), c, dtype=np.uint64))
                     for c in sorted({1, 2, w, w - 1, 2**64 - 1})]
        found = _enumerate(extended, 64, wanted, mask, max_size, clock() + budget_s, clock)
        wide = bool(found)
    # of one size, those reading the parameters fewest times first: each further read is a
    # copy on a two-address machine (p15's (x + y + 1) >> 1 before x - ((x - y) >> 1))
    found.sort(key=_parameter_reads)
    if not found and 2 * CASES_DEPTH < operations:
        cases = _cases(leaves, wanted, len(spec.params), w)
        if cases is not None and _size(cases) < operations:
            found.append(cases)
    params = [Node("param", t.width, (), i) for i, t in enumerate(spec.params)]

    def result(expr: Expr) -> Node:
        return trunc(_to_ir(expr, params, 64), w) if wide else _to_ir(expr, params, w)

    return [Reformulation(Routine(spec.params, result(expr), None, spec.requires,
                                  hint_name=spec.hint_name, hint_params=spec.hint_params),
                          f"low {w} bits of {_text(expr, names)}" if wide else _text(expr, names))
            for expr in found[:MAX_FOUND]]


@dataclass(frozen=True)
class _ByIdentity:
    identity: str  # the routine's content hash: what the memo is keyed by
    spec: Routine = field(compare=False, hash=False)


@lru_cache(maxsize=256)
def _memo(key: _ByIdentity) -> tuple[Reformulation, ...]:
    return (*rewritten(key.spec), *reformulations(key.spec))


def cached_reformulations(spec: Routine) -> tuple[Reformulation, ...]:
    """rewritten(spec), then reformulations(spec) with the defaults, once per routine (by
    its content hash) in a process: every board's search of a routine asks for the
    same."""
    return _memo(_ByIdentity(routine_id(spec), spec))
