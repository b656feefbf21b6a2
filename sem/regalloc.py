"""Scheduling and register allocation of a routine's DAG, shared by both targets.

The schedule is a depth-first post-order of the DAG, with one extra rule for
memory: a store runs only after every load of the memory state it replaces.
Registers are assigned by a linear scan over that schedule: a value takes a
free register when computed (never one of its own operands, so two-address
x86 templates may write the destination first) and gives it back after its
last use.  Constants never occupy registers; each instruction template places
them as immediates or in its own scratch registers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sem.canon import canonicalize, parse
from sem.ir import Node, Routine


class LoweringError(RuntimeError):
    """The routine cannot be lowered as written; the message says why."""


@dataclass(frozen=True)
class Operand:
    """What an instruction template receives for one operand."""

    node: Node
    reg: str | None  # None: a constant, see `imm`

    @property
    def imm(self) -> int:
        return self.node.attr

    @property
    def width(self) -> int:
        return self.node.width


@dataclass(frozen=True)
class OneInstruction:
    """A node a target computes in one instruction from nodes below its arguments (x86's
    `blsr d, x` for x & (x - 1)): `absorbed` are not computed where this node is their only
    user, `reads` are what the instruction reads instead of the node's arguments."""

    mnemonic: str
    absorbed: tuple[Node, ...]
    reads: tuple[Node, ...]


class Target(Protocol):
    name: str
    param_regs: tuple[str, ...]
    pool: tuple[str, ...]  # allocatable, caller-saved first
    callee_saved: frozenset[str]
    # A comparison used only as selects' condition is not computed into a register: each
    # such select gets the comparison's operands (emit_select_on), so a target with
    # flags compares and moves on them directly (x86 cmp + cmovcc).
    fuses_compares: bool
    # A popcount whose every user keeps only its lowest bit (`and` with 1: the parity) is
    # not computed where the target reads parity from its flags (x86 PF): each such `and`
    # gets the popcount's operand (emit_parity).
    parity_in_flags: bool

    def emit(self, node: Node, dest: str | None, ops: list[Operand], out: list[str]) -> None: ...
    # what the target's extensions do in one instruction (None: the node's own template)
    def one_instruction(self, node: Node) -> OneInstruction | None: ...
    def emit_one(self, node: Node, dest: str, found: OneInstruction, ops: list[Operand],
                 out: list[str]) -> None: ...
    def emit_select_on(self, node: Node, dest: str, compare: Node, compare_ops: list[Operand],
                       if_true: Operand, if_false: Operand, out: list[str]) -> None: ...
    def emit_parity(self, node: Node, dest: str, operand: Operand, out: list[str]) -> None: ...
    def move(self, dst: str, src: str) -> str: ...
    def frame(self, saved: list[str], body: list[str], result: Operand | None) -> list[str]: ...


def _dependencies(r: Routine) -> tuple[list[Node], dict[int, list[Node]]]:
    """Reachable nodes in depth-first post-order, and what each must wait for:
    its operands and, for a store, every load of the memory state it replaces."""
    order: list[Node] = []
    seen: set[int] = set()

    def visit(n: Node) -> None:
        if id(n) not in seen:
            seen.add(id(n))
            for a in n.args:
                visit(a)
            order.append(n)

    for o in (r.result, r.memory):
        if o is not None:
            visit(o)
    deps = {id(n): list(n.args) for n in order}
    for n in order:
        if n.op == "load":
            for user in order:
                if user.op == "store" and user.args[0] is n.args[0]:
                    deps[id(user)].append(n)
    return order, deps


def schedule(r: Routine) -> list[Node]:
    """List scheduling that keeps few values live: among the ready nodes, take the
    one that frees the most registers (ties: depth-first order)."""
    order, deps = _dependencies(r)
    pending_users: dict[int, int] = {id(n): 0 for n in order}
    for n in order:
        for a in set(map(id, n.args)):
            pending_users[a] += 1
    done: set[int] = set()
    result: list[Node] = []
    remaining = list(order)

    def gain(n: Node) -> int:
        frees = sum(1 for a in {id(x): x for x in n.args}.values()
                    if a.op not in ("const", "mem") and pending_users[id(a)] == 1)
        return frees - (n.op != "store")

    while remaining:
        ready = [n for n in remaining if all(id(d) in done for d in deps[id(n)])]
        best = max(ready, key=gain)  # max() keeps the first of equals: depth-first order
        remaining = [n for n in remaining if n is not best]  # `==` on nodes builds IR
        done.add(id(best))
        result.append(best)
        for a in set(map(id, best.args)):
            pending_users[a] -= 1
    return result


@dataclass
class Lowered:
    arch: str
    text: str  # assembly, one statement per line


COMPARISONS = frozenset({"eq", "ne", "ult", "ule", "slt", "sle"})


def _low_bit(user: Node, n: Node) -> bool:
    """`user` is `and(n, 1)` (either way round)."""
    return (user.op == "and" and len(user.args) == 2 and any(a is n for a in user.args)
            and any(a.op == "const" and a.attr == 1 for a in user.args))


def _fused(order: list[Node], target: Target, result: Node | None
           ) -> tuple[set[int], dict[int, OneInstruction]]:
    """The comparisons whose every user is a select taking it as its condition only, the
    popcounts whose every user takes only their lowest bit (where the target fuses them),
    and the nodes a target's one instruction absorbs into their only user (none when it
    is the result itself); and those one-instruction nodes."""
    users: dict[int, list[Node]] = {}
    for n in order:
        for a in {id(x): x for x in n.args}.values():
            users.setdefault(id(a), []).append(n)
    ones: dict[int, OneInstruction] = {}
    fused: set[int] = set()
    for n in reversed(order):  # users first: a node another's instruction absorbs is not
        found = target.one_instruction(n)  # computed, so its own instruction is not either
        if found is not None and id(n) not in fused and all(
                a is not result and len(users.get(id(a), ())) == 1 for a in found.absorbed):
            ones[id(n)] = found
            fused |= {id(a) for a in found.absorbed}
    if target.fuses_compares:
        fused |= {id(n) for n in order if n.op in COMPARISONS and users.get(id(n))
                  and n is not result
                  and all(u.op == "select" and u.args[0] is n and n is not u.args[1]
                          and n is not u.args[2] for u in users[id(n)])}
    if target.parity_in_flags:
        fused |= {id(n) for n in order if n.op == "popcount" and users.get(id(n))
                  and n is not result and all(_low_bit(u, n) for u in users[id(n)])}
    return fused, ones


def _parity_of(n: Node, fused: set[int]) -> Node | None:
    """The fused popcount n takes the lowest bit of, if any."""
    if n.op != "and":
        return None
    return next((a for a in n.args if a.op == "popcount" and id(a) in fused), None)


def _reads(n: Node, fused: set[int], ones: dict[int, OneInstruction]) -> tuple[Node, ...]:
    """What computing n reads from registers: a select on a fused comparison reads the
    comparison's operands instead of its value, a parity the popcount's operand, a
    one-instruction node what its instruction reads."""
    if id(n) in ones:
        return ones[id(n)].reads
    if n.op == "select" and id(n.args[0]) in fused:
        return (*n.args[0].args, n.args[1], n.args[2])
    counted = _parity_of(n, fused)
    if counted is not None:
        return counted.args
    return n.args


def lower(r: Routine, target: Target) -> Lowered:
    r = parse(canonicalize(r).text)  # the hash-consed DAG: equal subterms computed once
    order = schedule(r)
    fused, ones = _fused(order, target, r.result)
    last_use: dict[int, int] = {}
    for i, n in enumerate(order):
        for a in _reads(n, fused, ones):
            last_use[id(a)] = i
    if r.result is not None:
        last_use[id(r.result)] = len(order)

    if len(r.params) > len(target.param_regs):
        raise LoweringError(f"{len(r.params)} inputs; the {target.name} lowering passes at most "
                            f"{len(target.param_regs)} in registers")
    home: dict[int, str] = {}
    used_params = {n.attr: n for n in order if n.op == "param"}
    abi = set(target.param_regs[: len(r.params)])
    free = [reg for reg in target.pool if reg not in abi]
    moves: list[str] = []
    for index, n in sorted(used_params.items()):
        incoming = target.param_regs[index]
        if incoming in target.pool:
            home[id(n)] = incoming
        else:  # arrives in a register the templates use as scratch: move it out first
            if not free:
                raise LoweringError("too many inputs for the registers available")
            home[id(n)] = free.pop(0)
            moves.append(target.move(home[id(n)], incoming))
    for reg in target.param_regs[: len(r.params)]:
        if reg in target.pool and reg not in home.values():
            free.append(reg)
    free.sort(key=target.pool.index)
    touched = set(home.values())

    body: list[str] = list(moves)
    for i, n in enumerate(order):
        if n.op in ("param", "const", "mem") or id(n) in fused:
            continue
        ops = [Operand(a, home.get(id(a))) for a in n.args]
        dest = None
        if n.op != "store":
            if not free:
                raise LoweringError(
                    f"{target.name}: more than {len(target.pool)} values live at once; "
                    "this lowering does not spill yet, so split the routine")
            dest = free.pop(0)
            home[id(n)] = dest
            touched.add(dest)
        if id(n) in ones:
            assert dest is not None
            found = ones[id(n)]
            target.emit_one(n, dest, found, [Operand(a, home.get(id(a))) for a in found.reads],
                            body)
        elif n.op == "select" and id(n.args[0]) in fused:
            assert dest is not None
            compare = n.args[0]
            target.emit_select_on(n, dest, compare,
                                  [Operand(a, home.get(id(a))) for a in compare.args],
                                  ops[1], ops[2], body)
        elif (counted := _parity_of(n, fused)) is not None:
            assert dest is not None
            value = counted.args[0]
            target.emit_parity(n, dest, Operand(value, home.get(id(value))), body)
        else:
            target.emit(n, dest, ops, body)
        for a in {id(a): a for a in _reads(n, fused, ones)}.values():
            if last_use.get(id(a)) == i and id(a) in home:
                free.append(home[id(a)])
        if dest is not None and id(n) not in last_use:
            free.append(dest)  # computed but unused (a load kept for ordering)
        free.sort(key=target.pool.index)

    result = None if r.result is None else Operand(r.result, home.get(id(r.result)))
    saved = [reg for reg in target.pool if reg in touched and reg in target.callee_saved]
    text = "\n".join(target.frame(saved, body, result)) + "\n"
    return Lowered(target.name, text)
