"""The probe families a campaign can be asked for by name, per architecture.

Each entry turns (arch, seed) into an iterator of probes; the generators
themselves live in probes/families/.  `random` offers random byte strings as
probes: the vetter's stress test, and the unsafe mode's payload.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from arch import ARCHES, RISCV64, X86_64, Arch
from probes.families import cpuid, csr, discovery, memlat, msr, timing
from probes.probe import Probe

RANDOM_LENGTHS = (1, 32)  # bytes of one random probe, inclusive


@dataclass(frozen=True)
class Family:
    name: str
    arches: tuple[Arch, ...]
    make: Callable[[Arch, int], Iterator[Probe]]  # (arch, seed) -> probes
    about: str


def random_probes(arch: Arch, seed: int = 0) -> Iterator[Probe]:
    """An endless stream of random byte strings (seeded), user probes of family `random`."""
    rng = random.Random(seed)
    while True:
        yield Probe(arch, rng.randbytes(rng.randint(*RANDOM_LENGTHS)), family="random", output_size=16)


def _timing_needs_a_sequence(_arch: Arch, _seed: int) -> Iterator[Probe]:
    raise ValueError("the timing family measures a given instruction sequence:"
                     " pass one, e.g. --sequence 'imul rax, rax' (x86_64) or 'mul t0, t0, t0' (riscv64)")


def _isa(arch: Arch, _seed: int) -> Iterator[Probe]:
    return discovery.probes_for(arch, discovery.SEARCHES[arch].candidates())


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("cpuid", (X86_64,), lambda _a, _s: cpuid.cpuid_sweep(), "CPUID over basic, hypervisor and extended leaves"),
    Family("csr", (RISCV64,), lambda _a, _s: csr.csr_sweep(), "csrr of all 4096 CSR numbers (M-mode)"),
    Family("msr", (X86_64,), lambda _a, _s: msr.msr_sweep(), "rdmsr over the documented ranges (ring 0)"),
    Family("isa", ARCHES, _isa, "instruction-set discovery candidates (user mode)"),
    Family("memlat", ARCHES, lambda a, _s: (memlat.chase_probe(s, arch=a) for s in memlat.working_sets()),
           "pointer-chasing latency over growing working sets"),
    Family("timing", ARCHES, _timing_needs_a_sequence,
           "latency and throughput of --sequence, nanoBench style (n and 2n, trimmed)"),
    Family("random", ARCHES, random_probes, "random byte strings (endless: use --limit)"),
)}


def family_probes(name: str, arch: Arch, seed: int = 0, sequence: str | None = None) -> Iterator[Probe]:
    """The probes of family `name` for `arch` (`sequence`: what `timing` measures);
    raises ValueError saying what exists."""
    if sequence is not None and name != "timing":
        raise ValueError(f"--sequence is for the timing family, not {name!r}")
    family = FAMILIES.get(name)
    if family is None:
        raise ValueError(f"unknown probe family {name!r}: choose one of {', '.join(sorted(FAMILIES))}")
    if arch not in family.arches:
        raise ValueError(f"family {name!r} runs on {', '.join(map(str, family.arches))}, not {arch}")
    if name == "timing" and sequence is not None:
        return timing.timing_probes(arch, sequence)
    return family.make(arch, seed)
