"""Sorting routines as compare-exchange networks written out in each ISA's own
min/max idiom: the correct programs a sort search starts from (AlphaDev-S starts
from a correct program), often already short.

A network is loads, one compare-exchange per comparator, stores.  Each ISA's
templates say how to write a compare-exchange with the features a target has;
registers are renamed as the templates free them.

x86-64 saves the copy a compare-exchange needs when one of its inputs is still the
element as loaded: memory keeps the original, and `cmovg reg, [element]` fetches it
(3 instructions instead of 4).  Networks with many such comparators therefore win
there: a bubble pass first, each comparator taking one fresh element, then a sort
of the rest (sort5: 4 x 3 + 5 x 4 = 32 instructions between loads and stores).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from evolution.sortsearch import CMOVG, CMP, LOAD, MOV, SortStep, final_registers
from sem.library.sorting import NETWORKS

# the library's networks, and others of the same sizes (all verified by the proof anyway):
# a bubble pass (each comparator taking one element not yet compared) then a smaller sort
NETWORK_CHOICES: dict[int, tuple[tuple[tuple[int, int], ...], ...]] = {
    3: (NETWORKS[3], ((0, 1), (1, 2), (0, 1))),
    4: (NETWORKS[4], ((0, 1), (1, 2), (2, 3), *NETWORKS[3])),
    5: (NETWORKS[5], ((0, 1), (1, 2), (2, 3), (3, 4), *NETWORKS[4])),
}


@dataclass(frozen=True)
class Exchange:
    """lines(a, b, spares, original a, original b) -> (statements, register now holding
    the minimum, the maximum, the spare registers afterwards).  An original is the byte
    offset of the element the register still holds as loaded, else None."""

    spares: int
    lines: Callable[[str, str, list[str], int | None, int | None],
                    tuple[list[str], str, str, list[str]]]


@dataclass(frozen=True)
class NetworkTemplates:
    pointer: str
    values: tuple[str, ...]  # registers for the elements, then spares
    load: Callable[[str, int], str]  # (register, byte offset)
    store: Callable[[str, int], str]
    exchange: Exchange
    # how sortsearch's steps (mov, cmp, cmovl, cmovg) are written, where the ISA has them
    step: Callable[[str, str, str], str] | None = None  # (op, destination, source)


def _x86_cmov(a: str, b: str, spares: list[str], original_a: int | None,
              original_b: int | None):
    if original_a is not None:  # a's old value, needed when a > b, is still in memory
        return ([f"cmp {a}, {b}", f"cmovg {a}, {b}",
                 f"cmovg {b}, dword ptr [rdi + {original_a}]"], a, b, spares)
    if original_b is not None:
        return ([f"cmp {a}, {b}", f"cmovg {b}, {a}",
                 f"cmovg {a}, dword ptr [rdi + {original_b}]"], a, b, spares)
    t = spares[0]
    return [f"mov {t}, {a}", f"cmp {a}, {b}", f"cmovg {a}, {b}", f"cmovg {b}, {t}"], a, b, spares


def _riscv_minmax(a: str, b: str, spares: list[str], *_originals):
    t = spares[0]
    return [f"min {t}, {a}, {b}", f"max {b}, {a}, {b}"], t, b, [a, *spares[1:]]


def _riscv_branch_moves(a: str, b: str, spares: list[str], *_originals):
    """Branches over a move (evolution's riscv64 compound forms): t = a, then t = min(t, b),
    b = max(a, b); five instructions where the xor swap takes six."""
    t = spares[0]
    return ([f"mv {t}, {a}", f"blt {t}, {b}, 1f; mv {t}, {b}; 1:",
             f"blt {a}, {b}, 1f; mv {b}, {a}; 1:"], t, b, [a, *spares[1:]])


def x86_64_templates(features: frozenset[str]) -> NetworkTemplates:
    return NetworkTemplates(
        "rdi", ("eax", "ecx", "edx", "esi", "r8d", "r9d", "r10d", "r11d"),
        lambda r, off: f"mov {r}, dword ptr [rdi + {off}]",
        lambda r, off: f"mov dword ptr [rdi + {off}], {r}",
        Exchange(1, _x86_cmov), lambda op, a, b: f"{op} {a}, {b}")


def riscv64_templates(features: frozenset[str]) -> NetworkTemplates:
    exchange = (Exchange(1, _riscv_minmax) if "zbb" in features
                else Exchange(1, _riscv_branch_moves))
    return NetworkTemplates(
        "a0", ("a1", "a2", "a3", "a4", "a5", "a6", "a7", "t0", "t1", "t2"),
        lambda r, off: f"lw {r}, {off}(a0)", lambda r, off: f"sw {r}, {off}(a0)", exchange)


def body_text(templates: NetworkTemplates, n: int, body: Sequence[SortStep],
              return_text: str) -> str:
    """A sortsearch body as assembly: loads, the body, stores from wherever it left each."""
    regs = templates.values[: max([n - 1, *(max(s.dst, s.src) for s in body)]) + 1]
    out = [templates.load(r, 4 * i) for i, r in enumerate(regs[:n])]
    for s in body:
        if s.op == LOAD:
            out.append(templates.load(regs[s.dst], 4 * s.src))
        else:
            out.append(templates.step(s.op, regs[s.dst], regs[s.src]))
    holders = final_registers(n, len(regs), body)
    out += [templates.store(regs[r], 4 * i) for i, r in enumerate(holders)]
    return "\n".join([*out, return_text]) + "\n"


def network_steps(n: int, spare: int) -> list[SortStep]:
    """The network as sortsearch steps (mov, cmp, cmovg, cmovg per comparator)."""
    out = []
    for i, j in NETWORKS[n]:
        out += [SortStep(MOV, spare, i), SortStep(CMP, i, j), SortStep(CMOVG, i, j),
                SortStep(CMOVG, j, spare)]
    return out


def network_text(templates: NetworkTemplates, network: Sequence[tuple[int, int]], n: int,
                 return_text: str) -> str:
    """Assembly of the n-element sort: loads, the network's compare-exchanges, stores."""
    regs = list(templates.values[:n])
    spares = list(templates.values[n : n + templates.exchange.spares])
    if len(spares) < templates.exchange.spares:
        raise ValueError(f"not enough registers for a {n}-element network")
    out = [templates.load(r, 4 * i) for i, r in enumerate(regs)]
    untouched = set(range(n))  # positions still holding their element as loaded
    for i, j in network:
        original = [4 * k if k in untouched else None for k in (i, j)]
        lines, regs[i], regs[j], spares = templates.exchange.lines(regs[i], regs[j], spares,
                                                                   *original)
        untouched -= {i, j}
        out += lines
    out += [templates.store(r, 4 * i) for i, r in enumerate(regs)]
    return "\n".join([*out, return_text]) + "\n"
