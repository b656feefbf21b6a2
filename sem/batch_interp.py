"""The interpreter over a batch of vectors at once.

Each node of the routine is evaluated once, on a numpy array holding its value for every
vector (uint64, the bits above the node's width zero; a memory state is a vectors x
window-bytes array of uint8), in the order `interp.plan` gives.  The answers are those
of `interp.run`, which stays the reference: the tests compare the two on every
operation at every width and on every library routine.  Why: the motherboard checks
and audits batches of up to 100,000 vectors against the interpreter, at ~5-50 µs a
vector in Python; a routine's few dozen array operations take about as long for the
whole batch.  As in `interp.run`, memory is a window of bytes at DATA_ADDRESS, and an
access outside it is an IndexError.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sem.interp import plan
from sem.ir import Node, Routine
from sem.vectors import DATA_ADDRESS

U64 = np.uint64
LOW32 = U64(0xFFFF_FFFF)


@dataclass(frozen=True)
class BatchEvaluation:
    """Per vector, what `interp.run` gives: the result (None without one) and the final
    memory window (None for a routine without memory)."""

    result: np.ndarray | None
    memory: np.ndarray | None


def run_many(r: Routine, args: np.ndarray, memory: np.ndarray | None = None
             ) -> BatchEvaluation:
    """The routine on each row of `args` (vectors x inputs, uint64), with the row's memory
    window (vectors x bytes, uint8) for a routine with memory."""
    if r.uses_memory and memory is None:
        raise ValueError("a routine with memory needs each vector's memory window")
    made = plan(r, precondition=False)
    values = _values(made.steps, *_columns(r, args), memory)
    return BatchEvaluation(None if r.result is None else values[made.places[id(r.result)]],
                           None if r.memory is None else values[made.places[id(r.memory)]])


def admits_many(r: Routine, args: np.ndarray) -> np.ndarray:
    """Per row, whether the inputs are inside the routine's domain (interp.admits)."""
    if r.requires is None:
        return np.ones(len(args), dtype=bool)
    made = plan(r, precondition=True)
    return _values(made.steps, *_columns(r, args), None)[made.places[id(r.requires)]] == 1


def _columns(r: Routine, args: np.ndarray) -> tuple[list[np.ndarray], int]:
    """Each input's column, and the number of vectors."""
    args = np.asarray(args, dtype=U64)
    if args.ndim != 2 or args.shape[1] != len(r.params):
        raise ValueError(f"the routine takes {len(r.params)} inputs a vector, got an array"
                         f" of shape {args.shape}")
    return [args[:, k] for k in range(args.shape[1])], args.shape[0]


def _values(steps, columns: list[np.ndarray], n: int,
            memory: np.ndarray | None) -> list[np.ndarray]:
    values: list[np.ndarray] = []
    with np.errstate(all="ignore"):  # uint64 arithmetic wraps, as the IR's does
        for node, refs in steps:
            values.append(_eval(node, [values[j] for j in refs], columns, n, memory))
    return values


def _window(memory: np.ndarray, address: np.ndarray, nbytes: int) -> np.ndarray:
    """Per vector, the byte positions in its window of an access of `nbytes` at `address`."""
    offset = address.astype(np.int64) - DATA_ADDRESS
    if len(offset) and (offset.min() < 0 or offset.max() + nbytes > memory.shape[1]):
        raise IndexError(f"an access of {nbytes} bytes outside the test memory")
    return offset[:, None] + np.arange(nbytes)


def _load(memory: np.ndarray, address: np.ndarray, nbytes: int) -> np.ndarray:
    data = np.take_along_axis(memory, _window(memory, address, nbytes), axis=1)
    return data.copy().view(f"<u{nbytes}")[:, 0].astype(U64)


def _store(memory: np.ndarray, address: np.ndarray, nbytes: int,
           value: np.ndarray) -> np.ndarray:
    written = memory.copy()  # a store makes a new memory state, as Memory.store does
    data = value.astype(f"<u{nbytes}").view(np.uint8).reshape(len(value), nbytes)
    np.put_along_axis(written, _window(memory, address, nbytes), data, axis=1)
    return written


def _mask(width: int) -> np.uint64:
    return U64((1 << width) - 1)


def _signed(x: np.ndarray, width: int) -> np.ndarray:
    """The width-bit values as int64, sign-extended."""
    if width == 64:
        return x.view(np.int64)
    sign = np.int64(1 << (width - 1))
    return (x.astype(np.int64) ^ sign) - sign


def _high_product(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The high 64 bits of the 128-bit product of 64-bit x and y, from 32-bit halves."""
    xh, xl, yh, yl = x >> U64(32), x & LOW32, y >> U64(32), y & LOW32
    middle = xh * yl + ((xl * yl) >> U64(32))  # cannot carry out of 64 bits
    other = xl * yh + (middle & LOW32)
    return xh * yh + (middle >> U64(32)) + (other >> U64(32))


def _product_shifted(x: np.ndarray, y: np.ndarray, width: int, signed: bool) -> np.ndarray:
    """(x * y) >> width of width-bit operands, as mulhu / mulhs compute it: from the
    128-bit product of the operands extended to 64 bits."""
    if signed:
        sx, sy = _signed(x, width), _signed(y, width)
        ux, uy = sx.view(U64), sy.view(U64)
        # the signed high half from the unsigned one: less y where x < 0, x where y < 0
        high = (_high_product(ux, uy) - np.where(sx < 0, uy, U64(0))
                - np.where(sy < 0, ux, U64(0)))
    else:
        ux, uy = x, y
        high = _high_product(ux, uy)
    if width == 64:
        return high
    return ((high << U64(64 - width)) | ((ux * uy) >> U64(width))) & _mask(width)


def _bit_length(x: np.ndarray) -> np.ndarray:
    """Per value, the index of its highest set bit plus one (0 for 0)."""
    length = np.zeros(len(x), dtype=U64)
    rest = x.copy()
    for step in (32, 16, 8, 4, 2, 1):
        high = (rest >> U64(step)) != 0
        length += np.where(high, U64(step), U64(0))
        rest = np.where(high, rest >> U64(step), rest)
    return length + (rest != 0)


def _rotate_left(x: np.ndarray, by: np.ndarray, width: int) -> np.ndarray:
    """Rotating by 0, the right shift is by 0 for a 64-bit value (the width mod 64: a
    shift by 64 is undefined) and by the width below 64 bits, which gives 0: either way
    the value comes back unchanged."""
    by = by % U64(width)
    return ((x << by) | (x >> ((U64(width) - by) % U64(64)))) & _mask(width)


def _eval(node: Node, a: list[np.ndarray], columns: list[np.ndarray], n: int,
          memory: np.ndarray | None) -> np.ndarray:
    w, op = node.width, node.op
    mask = _mask(w)
    if op == "param":
        return columns[node.attr] & mask
    if op == "const":
        return np.full(n, node.attr, dtype=U64)
    if op == "mem":
        return memory
    if op == "load":
        return _load(a[0], a[1] + U64(node.attr), w // 8)
    if op == "store":
        return _store(a[0], a[1] + U64(node.attr), node.args[2].width // 8, a[2])
    if op == "select":
        return np.where(a[0] != 0, a[1], a[2])
    aw = node.args[0].width
    x = a[0]
    y = a[1] if len(a) > 1 else None
    match op:
        case "add": return (x + y) & mask
        case "sub": return (x - y) & mask
        case "mul": return (x * y) & mask
        case "mulhu": return _product_shifted(x, y, w, signed=False)
        case "mulhs": return _product_shifted(x, y, w, signed=True)
        case "udiv": return np.where(y == 0, mask, x // np.where(y == 0, U64(1), y))
        case "urem": return np.where(y == 0, x, x % np.where(y == 0, U64(1), y))
        case "and": return x & y
        case "or": return x | y
        case "xor": return x ^ y
        case "shl": return (x << (y % U64(w))) & mask
        case "lshr": return x >> (y % U64(w))
        case "ashr": return (_signed(x, aw) >> (y % U64(w)).astype(np.int64)).view(U64) & mask
        case "rotl": return _rotate_left(x, y, w)
        case "rotr": return _rotate_left(x, (U64(w) - y % U64(w)) % U64(w), w)
        case "not": return ~x & mask
        case "neg": return (U64(0) - x) & mask
        case "popcount": return np.bitwise_count(x).astype(U64)
        case "clz": return U64(w) - _bit_length(x)
        case "ctz": return np.where(x == 0, U64(w), _bit_length(x & (U64(0) - x)) - U64(1))
        case "eq": return (x == y).astype(U64)
        case "ne": return (x != y).astype(U64)
        case "ult": return (x < y).astype(U64)
        case "ule": return (x <= y).astype(U64)
        case "slt": return (_signed(x, aw) < _signed(y, aw)).astype(U64)
        case "sle": return (_signed(x, aw) <= _signed(y, aw)).astype(U64)
        case "zext" | "trunc": return x & mask
        case "sext": return _signed(x, aw).view(U64) & mask
    raise ValueError(f"the batch interpreter does not know operation {op!r}")
