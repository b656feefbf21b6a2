"""Memory hierarchy by pointer chasing over growing working sets.

Each probe builds, in scratch, a cyclic chain over `size // LINE` cache lines
visited with a large coprime stride (defeats next-line prefetchers), then times
`steps` dependent loads with the cycle counter (rdtsc; rdcycle).  Output: total
cycles, then where the chase ended (so the host can check the chain was
followed: after `steps` hops from line 0 it is at line steps * stride mod
lines).  The analysis turns (size, cycles per load) into the working-set sizes
where latency jumps.
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass
from functools import lru_cache
from math import gcd

from arch import RISCV64, X86_64, Arch
from contract.probe_abi import AREA, SCRATCH_SIZE, Outcome
from probes.probe import Probe
from probes.summary import CampaignContext, Results

LINE = 64
JUMP = 1.4  # a latency ratio between neighbouring sizes that marks a new level

# Both chases first write the chain in the order they will follow it: from line 0,
# each line gets the address of the line `stride` further on (wrapping), which
# after `lines` hops has written every line (stride and lines are coprime).

# riscv64: a0 = input (lines, stride * LINE, size, steps as u64), a1 = output, a2 = scratch.
_RISCV_CHASE = """
    ld t0, 0(a0)
    ld t1, 8(a0)
    ld t2, 16(a0)
    ld t6, 24(a0)
    add t4, a2, t2
    mv t3, a2
1:  add t5, t3, t1
    bltu t5, t4, 2f
    sub t5, t5, t2
2:  sd t5, 0(t3)
    mv t3, t5
    addi t0, t0, -1
    bnez t0, 1b
    mv t5, a2
    fence
    rdcycle t4
3:  ld t5, 0(t5)
    addi t6, t6, -1
    bnez t6, 3b
    rdcycle t3
    sub t3, t3, t4
    sd t3, 0(a1)
    sd t5, 8(a1)
    li a0, 0
    ret
"""


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


def chase_end(arch: Arch, size: int, steps: int) -> int:
    """Where a correct chase of `steps` hops over `size` bytes ends."""
    lines = size // LINE
    return AREA["scratch"].base(arch.probes) + LINE * (steps * _stride(lines) % lines)


@lru_cache(maxsize=1)
def _riscv_chase_code() -> bytes:
    return RISCV64.assemble(_RISCV_CHASE, extensions="rv64g")


def _riscv_chase(lines: int, stride: int, size: int, steps: int) -> tuple[bytes, bytes]:
    """One code for every working set; the chain's shape travels in the input."""
    return _riscv_chase_code(), struct.pack("<QQQQ", lines, stride * LINE, size, steps)


def _x86_chase(lines: int, stride: int, size: int, steps: int) -> tuple[bytes, bytes]:
    """rdx = scratch, rsi = output; the chain's shape is in the immediates."""
    code = X86_64.assemble(f"""\
mov rax, rdx
lea r11, [rdx + {size}]
mov ecx, {lines}
build:
lea r9, [rax + {stride * LINE}]
cmp r9, r11
jb nowrap
sub r9, {size}
nowrap:
mov [rax], r9
mov rax, r9
dec ecx
jnz build
mov r10, rdx
mov ecx, {steps}
lfence
rdtsc
shl rdx, 32
or rax, rdx
mov r8, rax
chase:
mov r10, [r10]
dec ecx
jnz chase
lfence
rdtsc
shl rdx, 32
or rax, rdx
sub rax, r8
mov [rsi], rax
mov [rsi+8], r10
xor eax, eax
ret
""")
    return code, b""


_CHASES = {X86_64: _x86_chase, RISCV64: _riscv_chase}


def chase_probe(size: int, steps: int = 4096, arch: Arch = X86_64) -> Probe:
    if not LINE <= size <= SCRATCH_SIZE:
        raise ValueError(f"working set {size} must be {LINE}..{SCRATCH_SIZE} bytes"
                         " (the scratch area)")
    lines = size // LINE
    stride = _stride(lines)
    budget = lines * 8 + steps * 3 + 64
    code, input = _CHASES[arch](lines, stride, size, steps)
    return Probe(arch, code, input=input, family="memlat", budget=budget, output_size=16,
                 meta={"size": size, "steps": steps})


def curve(results) -> list[tuple[int, float]]:
    """(working-set size, cycles per load) from (probe, observation) pairs that returned."""
    points = []
    for probe, obs in results:
        if probe.family == "memlat" and obs.outcome == Outcome.RETURNED and len(obs.output) >= 8:
            cycles = int.from_bytes(obs.output[:8], "little")
            points.append((probe.meta["size"], cycles / probe.meta["steps"]))
    return sorted(points)


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


@dataclass(frozen=True)
class LatencySummary:
    """A memlat campaign's latency by working set, and the plateaus (cache levels) in it."""

    accelerator: str
    curve: list[tuple[int, float]]  # (working-set bytes, cycles per load), by size
    levels: list[Level]

    def to_json(self) -> dict:
        return {"memory_latency": {
            "curve": [{"working_set": size, "cycles_per_load": round(cycles, 3)}
                      for size, cycles in self.curve],
            "levels": [asdict(level) for level in self.levels],
        } if self.curve else None}

    def result_json(self, probe: Probe) -> dict:
        return {}

    def level_of(self, size: int) -> int:
        """The plateau (1 = fastest) a working set of `size` bytes falls in."""
        return next(number for number, level in enumerate(self.levels, 1) if size <= level.up_to)


def summarise_campaign(results: Results, context: CampaignContext) -> LatencySummary:
    points = curve(results)
    return LatencySummary(context.accelerator, points, levels(points))
