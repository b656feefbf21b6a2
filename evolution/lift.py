"""A proven machine program read back as a routine of the semantic core, and lowered for
another instruction set: what one ISA's search learned, as a start for the other's.

`lift` composes the program's meaning (semantics.compose) and fixes the machine state
the platform ABI leaves free: every register but the arguments, the upper bits of a
narrow x86-64 argument, the flags and every undefined value become 0 (a narrow riscv64
argument arrives sign-extended).  For a program proven against a routine (evolution/
proof.py: equal for *every* such state) the lifted routine equals that routine at every
input: it is the same function written the way the program computes it (x86's
`mul esi` for p25 becomes one 32-bit mulhu where the library's p25 adds partial
products).  It is then simplified (constants folded, truncations pushed down into the
operations whose low bits depend only on their operands' low bits and into a select's
values) so the other ISA's lowering sees a 32-bit operation as one, not a 64-bit one and
a truncation; and so that it sees what the program meant, not how its ISA says it: x86's
flags after `cmp` (SF xor OF) are the signed less-than, a comparison of registers
extended alike (riscv64's `max` of sign-extended arguments) the 32-bit comparison, a
product with -1 a negation.

`translate` lowers the lifted routine for the other ISA and board (sem/lower.py, the
frame taken off as for our own starts: starts.lowering).  What it gives is a candidate,
not a result: it is proven for its own ISA like every start before anyone uses it.
"""

from __future__ import annotations

from dataclasses import replace

from evolution.copies import recomputed, renamed_back, rewrites, right
from evolution.isa import IMM, Isa
from evolution.program import MachineProgram
from evolution.search import space
from evolution.semantics import compose
from evolution.starts import Start, lowering, without_bit_counts
from evolution.testset import TestSet, machine_vectors
from sem.canon import postorder
from sem.interp import run
from sem.ir import Node, Routine, const
from sem.regalloc import LoweringError

# operations whose result's low w bits depend only on the low w bits of their operands
_LOW_BITS = frozenset({"add", "sub", "mul", "and", "or", "xor", "not", "neg"})


def lift(isa: Isa, spec: Routine, program: MachineProgram) -> Routine:
    """The routine `program` computes for `spec`'s inputs, the free machine state fixed
    at 0 (see the module docstring); meaningful for a program proven against `spec`."""
    comp = compose(isa, program)
    fixed: dict[int, Node] = {}  # machine input position -> its value in the routine
    for position, width in enumerate(t.width for t in comp.params):
        fixed[position] = const(0, width)
    for i, (t, name) in enumerate(zip(spec.params, isa.abi.args, strict=False)):
        value = Node("param", t.width, (), i)
        if t.width < 64:
            value = Node("sext" if isa.abi.narrow_args == "sign" else "zext", 64, (value,), 64)
        fixed[isa.number(name)] = value
    mapped: dict[int, Node] = {}

    def substitute(root: Node | None) -> Node | None:
        if root is None:
            return None
        for n in postorder(Routine((), root, None)):
            if id(n) in mapped:
                continue
            if n.op == "param":
                value = fixed[n.attr]
                mapped[id(n)] = value if value.width == n.width else _fold(
                    Node("trunc", n.width, (value,), n.width))
            else:
                mapped[id(n)] = _simplify(Node(n.op, n.width, tuple(mapped[id(a)]
                                                                    for a in n.args), n.attr))
        return mapped[id(root)]

    result = None
    if spec.result is not None:
        out = substitute(comp.registers[isa.number(isa.abi.result)])
        w = spec.result_width
        result = out if w == 64 else _simplify(Node("trunc", w, (out,), w))
    memory = substitute(comp.memory) if comp.memory is not comp.initial_memory else None
    return Routine(spec.params, result, memory, spec.requires, hint_name=spec.hint_name)


def _fold(n: Node) -> Node:
    """A node of constants as its constant."""
    if n.op in ("const", "param", "mem", "load", "store") or not all(
            a.op == "const" for a in n.args):
        return n
    return const(run(Routine((), n, None), ()).result, n.width)


def _simplify(n: Node) -> Node:
    n = _fold(n)
    if n.op == "const":
        return n
    args = n.args
    if n.op == "trunc":
        (x,) = args
        if x.op in ("zext", "sext"):
            inner = x.args[0]
            if inner.width == n.width:
                return inner
            if inner.width > n.width:
                return _simplify(Node("trunc", n.width, (inner,), n.width))
            return _simplify(Node(x.op, n.width, (inner,), n.width))
        if x.op == "trunc":
            return _simplify(Node("trunc", n.width, (x.args[0],), n.width))
        if x.op in _LOW_BITS:
            return _simplify(Node(x.op, n.width, tuple(
                _simplify(Node("trunc", n.width, (a,), n.width)) for a in x.args)))
        if x.op == "select":  # the condition as it is, each value's low bits
            c, a, b = x.args
            return _simplify(Node("select", n.width, (c, *(
                _simplify(Node("trunc", n.width, (v,), n.width)) for v in (a, b)))))
        if x.op == "shl" and x.args[1].op == "const" and x.args[1].attr < n.width:
            low = _simplify(Node("trunc", n.width, (x.args[0],), n.width))
            return Node("shl", n.width, (low, const(x.args[1].attr, n.width)))
        return n
    if n.op in ("zext", "sext") and args[0].op == n.op:
        return _simplify(Node(n.op, n.width, (args[0].args[0],), n.width))
    if n.op == "select" and args[0].op == "const":
        return args[1] if args[0].attr else args[2]
    if n.op == "select" and args[0].op == "not":  # x86's cmovge: the values swapped
        return _simplify(Node("select", n.width, (args[0].args[0], args[2], args[1])))
    if n.op == "not":
        (x,) = args
        if x.op == "not":
            return x.args[0]
        if x.op == "sext":  # the complement of a sign extension is the extended complement
            return _simplify(Node("sext", n.width, (_simplify(Node("not", x.args[0].width,
                                                                     (x.args[0],))),), n.width))
        if x.op in _NEGATED:  # a comparison's negation: the converse one, or the other way
            op, swapped = _NEGATED[x.op]
            return _simplify(Node(op, 1, x.args[::-1] if swapped else x.args))
    if n.op in ("ult", "eq", "ne") and args[1].op == "const":
        a, b = args
        if n.op == "ult" and b.attr == 1:  # below 1 is 0
            return _simplify(Node("eq", 1, (a, const(0, a.width))))
        if n.op in ("eq", "ne") and b.attr == 0 and a.op == "sub":  # a - b == 0 is a == b
            return _simplify(Node(n.op, 1, a.args))
    if n.op in _ORDERS:
        narrow = _narrow_comparison(n)
        if narrow is not None:
            return narrow
    if n.op == "xor":  # x ^ (x ^ y) is y: x86's SF xor OF after `cmp`, OF being SF ^ slt
        for x, other in (args, args[::-1]):
            if other.op == "xor" and any(x is y for y in other.args):
                return other.args[1] if other.args[0] is x else other.args[0]
    if len(args) == 2:
        a, b = args
        if b.op == "const" and a.op != "const" and n.op in ("add", "mul", "and", "or", "xor"):
            a, b = b, a  # constants first, for the rules below
        if a.op == "const":
            zero, ones = a.attr == 0, a.attr == (1 << a.width) - 1
            if n.op in ("add", "or", "xor") and zero:
                return b
            if n.op == "and" and zero or n.op == "mul" and zero:
                return a
            if n.op == "and" and ones or n.op == "mul" and a.attr == 1:
                return b
            if n.op == "mul" and ones:  # x86's `imul eax, edi, -1`
                return Node("neg", n.width, (b,))
            if n.op == "xor" and ones:  # riscv's `xori a5, a0, -1`
                return _simplify(Node("not", n.width, (b,)))
            if n.op == "xor" and a.attr == 1 and b.op == "zext" and b.args[0].width == 1:
                return _simplify(Node("zext", n.width, (_simplify(Node("not", 1, b.args)),),
                                      n.width))  # riscv's `sltu; xori 1`: the negation
        if n.op == "sub" and a.op == "const" and a.attr == 0:  # riscv's `subw a1, zero, a0`
            return _simplify(Node("neg", n.width, (b,)))
        if n.op in ("and", "or", "xor") and a.op == b.op and a.op in ("zext", "sext") \
                and a.args[0].width == b.args[0].width:  # bitwise: extended alike, either way
            inner = _simplify(Node(n.op, a.args[0].width, (a.args[0], b.args[0])))
            return _simplify(Node(a.op, n.width, (inner,), n.width))
        if n.op in ("sub", "shl", "lshr", "ashr", "rotl", "rotr") and b.op == "const" \
                and b.attr == 0:
            return a
        if n.op in ("xor", "sub") and a is b:
            return const(0, n.width)
        if n.op in ("and", "or") and a is b:
            return a
    return n


# comparison -> what it is on two values zero-extended alike and on two sign-extended
# alike (sign extension keeps both orders; zero extension the unsigned one, which the
# signed order of two zero-extended values is)
_ORDERS = {"eq": ("eq", "eq"), "ne": ("ne", "ne"), "ult": ("ult", "ult"),
           "ule": ("ule", "ule"), "slt": ("ult", "slt"), "sle": ("ule", "sle")}


# comparison -> its negation: (the comparison, whether its operands swap)
_NEGATED = {"eq": ("ne", False), "ne": ("eq", False), "ult": ("ule", True),
            "ule": ("ult", True), "slt": ("sle", True), "sle": ("slt", True)}


def _narrow_comparison(n: Node) -> Node | None:
    """A comparison of two values extended alike from one width (or one of them a constant
    that is such an extension) as the comparison of the narrow values: a riscv64 program's
    registers hold its 32-bit arguments sign-extended, and its `max` compares them so."""
    a, b = n.args
    extended = next((x for x in (a, b) if x.op in ("zext", "sext")), None)
    if extended is None:
        return None
    kind, w = extended.op, extended.args[0].width

    def narrow(x: Node) -> Node | None:
        if x.op == kind and x.args[0].width == w:
            return x.args[0]
        if x.op == "const":
            low = x.attr & ((1 << w) - 1)
            back = low if kind == "zext" or not low >> (w - 1) else low - (1 << w) + (1 << x.width)
            return const(low, w) if back == x.attr else None
        return None

    na, nb = narrow(a), narrow(b)
    if na is None or nb is None:
        return None
    op = _ORDERS[n.op][kind == "sext"]
    return _simplify(Node(op, 1, (na, nb)))


def polish(isa: Isa, spec: Routine, program: MachineProgram, features: frozenset[str],
           vectors: int = 32, seed: int = 0) -> MachineProgram:
    """`program` with the copies and recomputed values a lowering leaves taken out
    (evolution/copies.py, both ways), one at a time while a shorter program is right on `vectors`
    test vectors; tried too from the program with instructions in their word forms
    (`_word_forms`) or their operands commuted (`_commuted`), no shorter themselves but
    without the extension or the copy that followed.  Right on vectors only: the result
    still has to be proven."""
    s = space(isa, spec, features)
    testset = TestSet(isa, spec, machine_vectors(isa, spec, vectors, seed), s.write_registers)
    best = program
    while True:
        alike = [*_word_forms(isa, best), *_commuted(isa, best)]
        # each candidate once (rewrites of different copies often agree), in order
        found = right(isa, testset, list(dict.fromkeys(
            shorter for begin in (best, *right(isa, testset, alike))
            for shorter in (*rewrites(isa, s, begin), *renamed_back(isa, s, begin),
                            *recomputed(isa, s, testset, begin)))))
        if not found:
            return best
        best = min(found, key=lambda p: p.instructions)  # the first of the shortest


def _word_forms(isa: Isa, program: MachineProgram) -> list[MachineProgram]:
    """`program` with one of its instructions that has a word form (Isa.word_forms:
    riscv64 `addi` as `addiw`) in that form, each in turn, and with all of them: a lowering
    computes a 32-bit value with 64-bit instructions and sign-extends it before the return
    (`addiw a0, a2, 0`), which after `addiw` and `addw` is a copy that polish takes out."""
    def fits(i: int) -> bool:
        insn = program.insns[i]
        form = isa.by_name.get(isa.word_forms.get(insn.form, ""))
        if form is None:
            return False
        return all(o.lo <= insn.imm <= o.hi for o in form.operands if o.kind == IMM)

    which = [i for i in range(len(program.insns)) if fits(i)]

    def worded(chosen: list[int]) -> MachineProgram:
        insns = list(program.insns)
        for i in chosen:
            insns[i] = replace(insns[i], form=isa.word_forms[insns[i].form])
        return replace(program, insns=tuple(insns))

    return [worded([i]) for i in which] + ([worded(which)] if len(which) > 1 else [])


def _commuted(isa: Isa, program: MachineProgram) -> list[MachineProgram]:
    """`program` with one two-address instruction whose operands commute (Isa.
    commutative_forms) written the other way round, the two registers' names swapped in
    every instruction after it: x86's `and edi, esi; mov rax, rdi` as `and esi, edi; mov
    rax, rsi`, whose copy polish takes out by naming esi eax before it (where the old
    esi is not read again; the caller keeps what is right)."""
    out = []
    for i, insn in enumerate(program.insns):
        if insn.form not in isa.commutative_forms or insn.regs[0] == insn.regs[1]:
            continue
        a, b = insn.regs
        swap = {a: b, b: a}
        later = [replace(x, regs=tuple(swap.get(r, r) for r in x.regs))
                 for x in program.insns[i + 1:]]
        if all(isa.fits(x.form, x.regs) for x in later):
            out.append(replace(program, insns=(*program.insns[:i], replace(insn, regs=(b, a)),
                                               *later)))
    return out


def translate(source: Isa, spec: Routine, program: MachineProgram, target: Isa,
              features: frozenset[str]) -> Start | None:
    """`program` (proven for `spec` on `source`) lifted, lowered for `target` with a
    board's `features` and polished; None when the lowering cannot be read as a start (it
    branches, or needs more registers than it allocates) or uses a form the board lacks.
    Not proven: see the module docstring.  Routines that use memory (the sorts) are not
    translated: each ISA's sorting network is its own idiom, and the lowering of another
    ISA's network read back is far longer (x86's sort3 network, 17 instructions, becomes
    64 on riscv64, whose own is 22)."""
    if spec.uses_memory:
        return None
    lifted = lift(source, spec, program)
    usable = {f.name for f in target.available(features)}
    # as our own starts: where the lowering loops (riscv64's bit counts without Zbb) or
    # uses a form the board lacks (x86's popcnt on qemu64), the bit counts as formulas
    for routine in (lifted, without_bit_counts(lifted)):
        if routine is None:
            continue
        try:
            start = lowering(target, routine, features)
        except LoweringError:
            continue
        if start is not None and all(i.form in usable for i in start.program.insns):
            return Start(f"lifted from {source.name}",
                         polish(target, spec, start.program, features))
    return None
