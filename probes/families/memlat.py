"""Memory hierarchy by pointer chasing over growing working sets (x86-64).

Each probe builds, in scratch, a cyclic chain over `size // LINE` cache lines
visited with a large coprime stride (defeats next-line prefetchers), then times
`steps` dependent loads with rdtsc.  Output: total cycles.  The analysis turns
(size, cycles per load) into the working-set sizes where latency jumps.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

from probes.abi import SCRATCH_SIZE
from probes.families.x86_asm import assemble
from probes.probe import Probe

LINE = 64
JUMP = 1.4  # a latency ratio between neighbouring sizes that marks a new level


def working_sets(smallest: int = 4096, largest: int = SCRATCH_SIZE) -> list[int]:
    sizes, size = [], smallest
    while size <= largest:
        sizes.append(size)
        size *= 2
    return sizes


def _stride(lines: int) -> int:
    step = max(1, int(lines * 0.618))
    while gcd(step, lines) != 1:
        step += 1
    return step


def chase_probe(size: int, steps: int = 4096) -> Probe:
    if not LINE <= size <= SCRATCH_SIZE:
        raise ValueError(f"working set {size} must be {LINE}..{SCRATCH_SIZE} bytes (the scratch area)")
    lines = size // LINE
    stride = _stride(lines)
    # rdx = scratch.  Build: for i in 0..lines-1: line[i] = &line[(i + stride) % lines].
    code = assemble(
        f"xor ecx, ecx;"
        f"build: lea rax, [rcx + {stride}]; cmp rax, {lines}; jb nowrap; sub rax, {lines};"
        f"nowrap: shl rax, 6; add rax, rdx; mov r9, rcx; shl r9, 6; mov [rdx + r9], rax;"
        f"inc rcx; cmp rcx, {lines}; jb build;"
        f"mov r10, rdx; mov ecx, {steps}; lfence; rdtsc; shl rdx, 32; or rax, rdx; mov r8, rax;"
        f"chase: mov r10, [r10]; dec ecx; jnz chase;"
        f"lfence; rdtsc; shl rdx, 32; or rax, rdx; sub rax, r8; mov [rsi], rax; mov [rsi+8], r10;"
        f"xor eax, eax; ret"
    )
    return Probe("x86_64", code, family="memlat", budget=lines * 12 + steps * 3 + 64, output_size=16,
                 meta={"size": size, "steps": steps})


@dataclass(frozen=True)
class Level:
    up_to: int  # largest working set (bytes) still at this latency
    cycles_per_load: float


def levels(points: list[tuple[int, float]], jump: float = JUMP) -> list[Level]:
    """Group (working-set size, cycles per load) into latency plateaus."""
    ordered = sorted(points)
    if not ordered:
        return []
    found, plateau = [], [ordered[0]]
    for size, lat in ordered[1:]:
        if lat > jump * plateau[-1][1]:
            found.append(Level(plateau[-1][0], sum(p[1] for p in plateau) / len(plateau)))
            plateau = []
        plateau.append((size, lat))
    found.append(Level(plateau[-1][0], sum(p[1] for p in plateau) / len(plateau)))
    return found
