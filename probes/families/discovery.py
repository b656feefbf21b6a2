"""Instruction discovery: candidate records, probes from them, and findings.

A finding is any disagreement between what the hardware (or the emulator)
did with a candidate and what capstone — or the CPU's own feature claims —
say about it: capstone decodes it but it raises #UD; capstone cannot decode it
but it executes; the lengths differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from arch import RISCV64, X86_64, Arch
from contract.probe_abi import Outcome
from discovery.inventory import Inventory
from probes.families import isa_riscv, isa_x86, riscv_claims, x86_claims
from probes.families.candidate import Candidate
from probes.probe import Observation, Probe
from probes.summary import CampaignContext, Results


class Behaviour(StrEnum):
    EXECUTES = "executes"
    UNDEFINED = "undefined"  # #UD / illegal instruction
    OTHER_FAULT = "other_fault"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Finding:
    candidate: Candidate
    behaviour: Behaviour
    measured_length: int | None
    disagreement: str | None  # None: capstone and the machine agree


@dataclass(frozen=True)
class IsaSearch:
    """Instruction discovery on one ISA: its candidates, each candidate as a probe, and
    what the CPU claims to support (CPUID flags; misa and riscv,isa)."""

    candidates: Callable[[], Iterator[Candidate]]
    wrap: Callable[[Candidate], bytes]
    claimed: Callable[[Inventory], frozenset[str]]
    claimed_supported: Callable[[Candidate, frozenset[str]], bool | None]


SEARCHES = {
    X86_64: IsaSearch(isa_x86.candidates, isa_x86.wrap, x86_claims.claimed_features,
                      x86_claims.claimed_supported),
    RISCV64: IsaSearch(isa_riscv.candidates, isa_riscv.wrap, riscv_claims.claimed_extensions,
                       riscv_claims.claimed_supported),
}


def probes_for(arch: Arch, candidates: Iterable[Candidate], budget: int = 64) -> Iterator[Probe]:
    wrap = SEARCHES[arch].wrap
    for c in candidates:
        yield Probe(arch, wrap(c), family="isa", budget=budget, output_size=0,
                    meta={"candidate": c}, measure_length=True)


def behaviour(arch: Arch, obs: Observation) -> Behaviour:
    if obs.outcome == Outcome.TIMEOUT:
        return Behaviour.TIMEOUT
    if obs.outcome == Outcome.FAULT and obs.fault is not None:
        undefined = obs.fault.vector == arch.illegal_instruction
        return Behaviour.UNDEFINED if undefined else Behaviour.OTHER_FAULT
    return Behaviour.EXECUTES


def finding(arch: Arch, candidate: Candidate, obs: Observation, measured_length: int | None = None,
            claimed_supported: bool | None = None) -> Finding:
    """Cross-check one candidate's result with capstone (and, if given, with what
    CPUID / misa claim about the extension it belongs to)."""
    how = behaviour(arch, obs)
    known = candidate.capstone_length is not None
    problems = []
    deliberately_undefined = (candidate.capstone_text or "").startswith(
        ("ud0", "ud1", "ud2", "unimp", "c.unimp"))
    expected_undefined = deliberately_undefined or claimed_supported is False  # the CPU said so
    if how == Behaviour.UNDEFINED and known and not expected_undefined:
        problems.append(f"capstone decodes '{candidate.capstone_text}' but the machine raises #UD")
    if how == Behaviour.EXECUTES and not known:
        problems.append("executes, but capstone cannot decode it")
    if measured_length is not None and known and measured_length != candidate.capstone_length \
            and not candidate.transfers_control:
        problems.append(f"length {measured_length}, capstone says {candidate.capstone_length}")
    if claimed_supported is True and how == Behaviour.UNDEFINED:
        problems.append("the CPU claims the extension but rejects the instruction")
    if claimed_supported is False and how == Behaviour.EXECUTES:
        problems.append("executes although the CPU does not claim the extension")
    return Finding(candidate, how, measured_length, "; ".join(problems) or None)


SHOWN_EXAMPLES = 3  # encodings kept per kind of finding


@dataclass(frozen=True)
class FindingKind:
    """One kind of disagreement and the candidates that show it."""

    kind: str
    count: int
    examples: tuple[bytes, ...]  # the first few candidates' encodings


@dataclass(frozen=True)
class DiscoverySummary:
    """An instruction-discovery campaign: what the CPU claims, each candidate's finding
    (by probe content hash) and the findings grouped by kind, most frequent first."""

    claims: frozenset[str]
    findings: dict[bytes, Finding]
    kinds: list[FindingKind]

    def to_json(self) -> dict:
        return {"claimed_extensions": sorted(self.claims)}

    def result_json(self, probe: Probe) -> dict:
        """The candidate, cross-checked with capstone and the CPU's claims."""
        found = self.findings.get(probe.content_hash)
        if found is None:
            return {}
        c = found.candidate
        return {"candidate": {"encoding": c.encoding.hex(), "space": c.space,
                              "capstone": c.capstone_text, "capstone_length": c.capstone_length,
                              "measured_length": found.measured_length,
                              "behaviour": found.behaviour.value,
                              "disagreement": found.disagreement}}


def _kind(problem: str) -> str:
    # the instruction text differs per candidate: group all of them as one kind
    if problem.startswith("capstone decodes"):
        return "capstone decodes an instruction but the machine raises #UD"
    return problem


def summarise_campaign(results: Results, context: CampaignContext) -> DiscoverySummary:
    search = SEARCHES[context.arch]
    claims = search.claimed(context.inventory)
    findings: dict[bytes, Finding] = {}
    grouped: dict[str, list[bytes]] = {}
    for probe, observation in results:
        candidate = probe.meta.get("candidate")
        if candidate is None:
            continue
        found = finding(context.arch, candidate, observation, observation.length,
                        claimed_supported=search.claimed_supported(candidate, claims))
        findings[probe.content_hash] = found
        for problem in filter(None, (found.disagreement or "").split("; ")):
            grouped.setdefault(_kind(problem), []).append(candidate.encoding)
    kinds = [FindingKind(kind, len(encodings), tuple(encodings[:SHOWN_EXAMPLES]))
             for kind, encodings in sorted(grouped.items(), key=lambda item: -len(item[1]))]
    return DiscoverySummary(claims, findings, kinds)
