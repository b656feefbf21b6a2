"""Where a search starts: correct programs we already have (AlphaDev-S starts from
one), as evolution's program form.

  - the semantic core's lowering (sem.lower), its frame taken off: callee-saved
    registers it used are renamed to caller-saved ones it left free, and the saves
    and restores go (evolved programs touch no callee-saved register);
  - for the sorts, the sorting network in the ISA's own compare-exchange idiom;
  - the lowerings of smaller IR expressions found to mean the same (reformulate.py: p25's
    high half of a product built from 16-bit halves is `mulhu(x, y)`);
  - where the lowering loops (riscv64 without Zbb counts bits in loops) or uses a form
    the board lacks (x86's popcnt on qemu64), the lowering of the same routine with its
    bit counts written as branch-free formulas (Hacker's Delight 5-1: popcount by adding
    bit fields; ctz and clz as popcounts of masks).

A start that cannot be read (branches in a lowering) is simply not offered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evolution.isa import Isa
from evolution.program import MachineProgram, ParseError, parse
from evolution.proof import Proof
from evolution.reformulate import cached_reformulations
from evolution.registry import SORT_NETWORKS
from evolution.sortnet import NETWORK_CHOICES, body_text, network_steps, network_text
from evolution.sortsearch import search
from sem.canon import postorder, routine_id
from sem.ir import Node, Routine, lshr
from sem.library import sorting
from sem.library.sorting import NETWORKS
from sem.lower import lower_for

# lines that only build or tear down a frame: x86 push/pop, riscv sp adjust and saves
_FRAME = re.compile(r"^\s*(push|pop)\s|^\s*addi\s+sp,\s*sp,|^\s*(sd|ld)\s+\w+,\s*-?\d+\(sp\)")
_WORD = re.compile(r"\b\w+\b")
_SORT_IDS = {n: routine_id(getattr(sorting, f"sort{n}")) for n in NETWORKS}  # by meaning, not name


@dataclass(frozen=True)
class Start:
    name: str  # where it came from
    program: MachineProgram
    # a proof the caller already holds and vouches for (the market's board checked this
    # program's artifact with Z3 itself): the search does not prove it again.  None: the
    # search proves it like every candidate
    proof: Proof | None = None


def _rename(isa: Isa, text: str) -> str:
    """Callee-saved registers the text uses, renamed to caller-saved ones it does not."""
    names = {}
    for word in set(_WORD.findall(text)):
        parsed = isa.parse_register(word)
        if parsed is not None:
            names[word] = parsed
    used = {number for number, _ in names.values()}
    free = [n for n in map(isa.number, isa.scratch) if n not in used]
    mapping = {}
    for name in isa.abi.preserved:
        n = isa.number(name)
        if n in used and free:
            mapping[n] = free.pop(0)

    def swap(match: re.Match) -> str:
        word = match.group(0)
        if word in names and names[word][0] in mapping:
            return isa.render_register(mapping[names[word][0]], names[word][1])
        return word

    return _WORD.sub(swap, text)


def lowering(isa: Isa, spec: Routine, features: frozenset[str] = frozenset()) -> Start | None:
    """The semantic core's lowering, given the board's features (riscv64's bit counts are
    loops, no start, unless Zbb makes them instructions).  It leaves the bits above a narrow
    result unspecified; where the ABI wants them (riscv64 sign-extends 32-bit results) its
    fix-up goes before the return."""
    text = lower_for(isa.arch)(spec, features).text
    lines = [line for line in text.splitlines() if not _FRAME.match(line)]
    narrow = spec.result is not None and spec.result_width < 64
    if narrow and isa.abi.result_fixup is not None:
        lines.insert(len(lines) - 1, isa.abi.result_fixup)
    body = "\n".join(lines)
    try:
        return Start("lowering", parse(isa, _rename(isa, body)))
    except ParseError:
        return None


def _repeated(byte: int, width: int) -> int:
    """`byte` in every byte of a `width`-bit value (its low `width` bits below 8)."""
    return int.from_bytes(bytes([byte]) * max(1, width // 8), "little") & ((1 << width) - 1)


def _popcount(x: Node) -> Node:
    """Hacker's Delight 5-1: counts of 2, 4, 8 bits, then bytes added by shifts."""
    w = x.width
    x = x - (lshr(x, 1) & _repeated(0x55, w))
    x = (x & _repeated(0x33, w)) + (lshr(x, 2) & _repeated(0x33, w))
    x = (x + lshr(x, 4)) & _repeated(0x0F, w)
    shift = 8
    while shift < w:
        x = x + lshr(x, shift)
        shift *= 2
    return x & ((1 << w.bit_length()) - 1)


def _clz(x: Node) -> Node:
    """The zeros above the highest one are the ones of the complement of x smeared right."""
    shift = 1
    while shift < x.width:
        x = x | lshr(x, shift)
        shift *= 2
    return _popcount(~x)


_FORMULAS = {"popcount": _popcount, "ctz": lambda x: _popcount(~x & (x - 1)), "clz": _clz}


def without_bit_counts(spec: Routine) -> Routine | None:
    """`spec` with every popcount, ctz and clz (of 8 bits or more) replaced by its formula,
    equal at every input (ctz and clz of zero: the width); None when it has none."""
    mapped: dict[int, Node] = {}
    changed = False
    for n in postorder(spec):
        args = tuple(mapped[id(a)] for a in n.args)
        if n.op in _FORMULAS and n.width >= 8:
            mapped[id(n)] = _FORMULAS[n.op](args[0])
            changed = True
        elif any(a is not b for a, b in zip(args, n.args, strict=True)):
            mapped[id(n)] = Node(n.op, n.width, args, n.attr)
        else:
            mapped[id(n)] = n
    if not changed:
        return None
    return Routine(spec.params, None if spec.result is None else mapped[id(spec.result)],
                   None if spec.memory is None else mapped[id(spec.memory)], spec.requires,
                   hint_name=spec.hint_name)


def _sort_size(spec: Routine) -> int | None:
    return next((k for k in NETWORKS if routine_id(spec) == _SORT_IDS[k]), None)


def network(isa: Isa, spec: Routine, features: frozenset[str]) -> Start | None:
    """For sort3/4/5 (a pointer input, n words sorted in place): the network program."""
    n = _sort_size(spec)
    if n is None or isa.name not in SORT_NETWORKS:
        return None
    templates = SORT_NETWORKS[isa.name](features)
    programs = [parse(isa, network_text(templates, choice, n, isa.return_text))
                for choice in NETWORK_CHOICES[n]]
    return Start("sorting network", min(programs, key=lambda p: p.instructions))


def enumerated(isa: Isa, spec: Routine, features: frozenset[str], below: int) -> Start | None:
    """For sort3 on an ISA with conditional moves: the shortest body sortsearch finds after
    the network's first compare-exchange, if it makes a program of fewer than `below`
    instructions (the full search is out of reach in Python; sort4 and sort5 even so)."""
    n = _sort_size(spec)
    templates = SORT_NETWORKS[isa.name](features) if isa.name in SORT_NETWORKS else None
    if n != 3 or templates is None or templates.step is None:
        return None
    prefix = network_steps(n, n)[:4]
    longest = below - 1 - 2 * n - 1 - len(prefix)  # loads, stores and the return besides
    rest = search(n, n + 1, longest, prefix=prefix) if longest >= 0 else None
    if rest is None:
        return None
    text = body_text(templates, n, [*prefix, *rest], isa.return_text)
    return Start("sort search (breadth-first, cmp/cmov)", parse(isa, text))


def reformulated(isa: Isa, spec: Routine, features: frozenset[str]) -> list[Start]:
    """The lowerings of the smaller IR expressions that agreed with `spec` on the
    reformulation search's inputs (reformulate.py): hypotheses, proven like every start."""
    found = []
    for reformulation in cached_reformulations(spec):
        start = lowering(isa, reformulation.routine, features)
        if start is not None:
            found.append(Start(f"lowering of {reformulation.expression}", start.program))
    return found


def starts(isa: Isa, spec: Routine, features: frozenset[str]) -> list[Start]:
    available = {f.name for f in isa.available(features)}

    def usable(found: list[Start | None]) -> list[Start]:
        return [s for s in found
                if s is not None and all(i.form in available for i in s.program.insns)]

    found = usable([lowering(isa, spec, features), network(isa, spec, features)])
    if not found:
        rewritten = without_bit_counts(spec)
        start = None if rewritten is None else lowering(isa, rewritten, features)
        if start is not None:
            found.append(Start("lowering, bit counts as formulas", start.program))
    found += usable(list(reformulated(isa, spec, features)))
    best = min((s.program.instructions for s in found), default=1000)
    more = enumerated(isa, spec, features, best)
    return found + ([more] if more is not None else [])
