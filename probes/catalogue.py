"""The probe families a campaign can be asked for by name, per architecture.

Each family says what it generates (a request -> an iterator of probes; the
generators themselves live in probes/families/) and, when its results mean more
than the counts every campaign keeps, how they are summarised (probes/summary.py).
The CLI knows families only through this registry.  `random` offers random byte
strings as probes: the vetter's stress test, and the unsafe mode's payload.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from arch import ARCHES, RISCV64, X86_64, Arch
from probes.families import PRIVILEGED_FAMILIES, cpuid, csr, discovery, memlat, msr, timing
from probes.probe import Probe
from probes.summary import CampaignContext, Results, Summary

RANDOM_LENGTHS = (1, 32)  # bytes of one random probe, inclusive


@dataclass(frozen=True)
class FamilyRequest:
    """What a campaign asks a family for."""

    arch: Arch
    seed: int = 0
    sequence: str | None = None  # the instructions a family that `measures` times


@dataclass(frozen=True)
class Family:
    name: str
    arches: tuple[Arch, ...]
    make: Callable[[FamilyRequest], Iterator[Probe]]
    about: str
    # what the results mean beyond the counts (None: the counts say it all)
    summarise: Callable[[Results, CampaignContext], Summary] | None = None
    measures: bool = False  # takes the instruction sequence to time (--sequence)

    @property
    def privileged(self) -> bool:
        """Its probes run in ring 0 / M-mode (the board boots with the privileged switch)."""
        return self.name in PRIVILEGED_FAMILIES


def random_probes(arch: Arch, seed: int = 0) -> Iterator[Probe]:
    """An endless stream of random byte strings (seeded), user probes of family `random`."""
    rng = random.Random(seed)
    while True:
        yield Probe(arch, rng.randbytes(rng.randint(*RANDOM_LENGTHS)), family="random",
                    output_size=16)


def _timing(request: FamilyRequest) -> Iterator[Probe]:
    if request.sequence is None:
        raise ValueError("the timing family measures a given instruction sequence:"
                         " pass one, e.g. --sequence 'imul rax, rax' (x86_64) or"
                         " 'mul t0, t0, t0' (riscv64)")
    return timing.timing_probes(request.arch, request.sequence)


def _isa(request: FamilyRequest) -> Iterator[Probe]:
    return discovery.probes_for(request.arch, discovery.SEARCHES[request.arch].candidates())


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("cpuid", (X86_64,), lambda _r: cpuid.cpuid_sweep(),
           "CPUID over basic, hypervisor and extended leaves"),
    Family("csr", (RISCV64,), lambda _r: csr.csr_sweep(), "csrr of all 4096 CSR numbers (M-mode)"),
    Family("msr", (X86_64,), lambda _r: msr.msr_sweep(),
           "rdmsr over the documented ranges (ring 0)"),
    Family("isa", ARCHES, _isa, "instruction-set discovery candidates (user mode)",
           summarise=discovery.summarise_campaign),
    Family("memlat", ARCHES,
           lambda r: (memlat.chase_probe(s, arch=r.arch) for s in memlat.working_sets()),
           "pointer-chasing latency over growing working sets",
           summarise=memlat.summarise_campaign),
    Family("timing", ARCHES, _timing,
           "latency and throughput of --sequence, nanoBench style (n and 2n, trimmed)",
           summarise=timing.summarise_campaign, measures=True),
    Family("random", ARCHES, lambda r: random_probes(r.arch, r.seed),
           "random byte strings (endless: use --limit)"),
)}


def family(name: str, arch: Arch, sequence: str | None = None) -> Family:
    """The family called `name`, checked against `arch` and `sequence`; raises
    ValueError saying what exists."""
    found = FAMILIES.get(name)
    if found is None:
        raise ValueError(f"unknown probe family {name!r}: choose one of "
                         f"{', '.join(sorted(FAMILIES))}")
    if arch not in found.arches:
        raise ValueError(f"family {name!r} runs on {', '.join(map(str, found.arches))}, not {arch}")
    if sequence is not None and not found.measures:
        measuring = ", ".join(n for n, f in FAMILIES.items() if f.measures)
        raise ValueError(f"--sequence is for the {measuring} family, not {name!r}")
    return found
