"""Canonical form and identity of a routine.

The canonical form is a hash-consed DAG written as text: nodes in depth-first
post-order from the outputs, operands of commutative operations ordered by the
structural hash of the operand, constants already normalised to their width,
inputs known only by position and type.  Two routines that mean the same
structure therefore print the same text whatever they were called and in
whatever order they were built; the ID is BLAKE2b-256 of that text.  A routine
with a precondition names its node in the header (`req=N`, after the outputs'
nodes); one without has no such field, so its text and ID are what they were
before preconditions existed.

    sem1 in=bv32,bv32 ret=3 mem=-
    param 32 0
    const 32 1
    sub 32 - 0 1
    and 32 - 0 2
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sem.ir import OPS, TYPES, Node, Routine

FORMAT = "sem1"
SHORT = 12  # hex digits of the short form of an ID, like git


@dataclass(frozen=True)
class Canonical:
    text: str
    id: str

    @property
    def short(self) -> str:
        return self.id[:SHORT]


def _merkle(node: Node, params: tuple, memo: dict[int, bytes]) -> bytes:
    """Structural hash of a node (names and construction order play no part)."""
    key = id(node)
    if key in memo:
        return memo[key]
    kids = [_merkle(a, params, memo) for a in node.args]
    if OPS[node.op].commutative:
        kids.sort()
    extra = params[node.attr].name if node.op == "param" else ""
    head = f"{node.op}|{node.width}|{node.attr}|{extra}|".encode()
    digest = hashlib.blake2b(head + b"".join(kids), digest_size=16).digest()
    memo[key] = digest
    return digest


def canonicalize(r: Routine) -> Canonical:
    memo: dict[int, bytes] = {}
    index: dict[bytes, int] = {}  # structural hash -> line: this is the hash-consing
    lines: list[str] = []

    def visit(node: Node) -> int:
        h = _merkle(node, r.params, memo)
        if h in index:
            return index[h]
        args = list(node.args)
        if OPS[node.op].commutative:
            args.sort(key=lambda a: memo[id(a)])
        refs = [visit(a) for a in args]
        attr = "-" if node.attr is None else str(node.attr)
        index[h] = len(lines)
        lines.append(" ".join([node.op, str(node.width), attr, *map(str, refs)]))
        return index[h]

    ret = "-" if r.result is None else str(visit(r.result))
    mem = "-" if r.memory is None else str(visit(r.memory))
    header = f"{FORMAT} in={','.join(t.name for t in r.params)} ret={ret} mem={mem}"
    if r.requires is not None:
        header += f" req={visit(r.requires)}"
    text = "\n".join([header, *lines]) + "\n"
    return Canonical(text, hashlib.blake2b(text.encode(), digest_size=32).hexdigest())


def routine_id(r: Routine) -> str:
    return canonicalize(r).id


def parse(text: str) -> Routine:
    """Rebuild a routine from its canonical text (no names: those live in the store)."""
    header, *body = text.strip("\n").split("\n")
    fields = dict(f.split("=", 1) for f in header.split()[1:])
    if not header.startswith(FORMAT):
        raise ValueError(f"not a canonical routine (expected {FORMAT!r} header): {header!r}")
    params = tuple(TYPES[t] for t in fields["in"].split(",") if t)
    nodes: list[Node] = []
    for line in body:
        op, width, attr, *refs = line.split()
        nodes.append(
            Node(op, int(width), tuple(nodes[int(i)] for i in refs),
                 None if attr == "-" else int(attr))
        )
    pick = lambda f: None if fields.get(f, "-") == "-" else nodes[int(fields[f])]  # noqa: E731
    return Routine(params, pick("ret"), pick("mem"), pick("req"))


def postorder(r: Routine) -> list[Node]:
    """Every node reachable from the outputs, each after its operands (not the
    precondition's: see `precondition_order`)."""
    seen: set[int] = set()
    order: list[Node] = []

    def visit(n: Node) -> None:
        if id(n) in seen:
            return
        seen.add(id(n))
        for a in n.args:
            visit(a)
        order.append(n)

    for out in (r.result, r.memory):
        if out is not None:
            visit(out)
    return order


def precondition_order(r: Routine) -> list[Node]:
    """Every node reachable from the precondition, each after its operands (none when the
    routine has no precondition)."""
    return [] if r.requires is None else postorder(Routine(r.params, r.requires, None))
