"""Timing in the style of nanoBench: a snippet unrolled n and 2n times between
two cycle-counter reads, several runs each after warm-up, trimmed statistics,
and the difference (2n - n) / n, which cancels the measurement's own overhead.

Numbers are only as real as the accelerator: under TCG they describe QEMU,
under KVM the silicon; results are stored with the accelerator they came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import mean

from probes.families.riscv_encode import A1, A0, T0, T1, T2, ZERO, addi, csrrs, ret, sd, words
from probes.families.x86_asm import assemble
from probes.probe import Probe

CYCLE_CSR = 0xC00  # rdcycle
WARMUP_RUNS = 5
MEASURED_RUNS = 10
TRIM = 0.2  # fraction dropped from each end before averaging


def x86_timing_probe(body: str, unroll: int) -> Probe:
    """`body`: x86 assembly for one instance, not touching rsi, r8."""
    snippet = assemble(body)
    head = assemble("lfence; rdtsc; shl rdx, 32; or rax, rdx; mov r8, rax; lfence")
    tail = assemble("lfence; rdtsc; shl rdx, 32; or rax, rdx; sub rax, r8; mov [rsi], rax; xor eax, eax; ret")
    return Probe("x86_64", head + snippet * unroll + tail, family="timing", budget=unroll * 64 + 64,
                 output_size=8, meta={"body": body, "unroll": unroll})


def riscv_timing_probe(body: bytes, unroll: int) -> Probe:
    """`body`: encoded instructions for one instance, not touching a1, t1, t2."""
    head = words(csrrs(T1, CYCLE_CSR))
    tail = words(csrrs(T2, CYCLE_CSR), 0x40000033 | (T0 << 7) | (T2 << 15) | (T1 << 20),  # sub t0, t2, t1
                 sd(T0, A1, 0), addi(A0, ZERO, 0), ret())
    return Probe("riscv64", head + body * unroll + tail, family="timing", budget=unroll * 64 + 64,
                 output_size=8, meta={"unroll": unroll})


def timing_pair(arch: str, body, unroll: int = 100) -> tuple[Probe, Probe]:
    """The n and 2n probes of one measurement."""
    make = x86_timing_probe if arch == "x86_64" else riscv_timing_probe
    return make(body, unroll), make(body, 2 * unroll)


def trimmed_mean(samples: list[float], trim: float = TRIM) -> float:
    if not samples:
        raise ValueError("no samples: run the timing probes before estimating")
    ordered = sorted(samples)
    cut = int(len(ordered) * trim)
    kept = ordered[cut : len(ordered) - cut] or ordered
    return mean(kept)


@dataclass(frozen=True)
class TimingEstimate:
    per_instance: float  # cycles per snippet instance
    overhead: float  # cycles the measurement itself costs (intercept)
    runs: int


def estimate(cycles_n: list[float], cycles_2n: list[float], unroll: int,
             warmup: int = WARMUP_RUNS) -> TimingEstimate:
    """nanoBench's subtraction: drop warm-up runs, trim, then (t(2n) - t(n)) / n."""
    n_runs, n2_runs = cycles_n[warmup:], cycles_2n[warmup:]
    t_n, t_2n = trimmed_mean(n_runs), trimmed_mean(n2_runs)
    per = (t_2n - t_n) / unroll
    return TimingEstimate(per, t_n - per * unroll, min(len(n_runs), len(n2_runs)))
