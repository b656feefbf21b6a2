"""What an x86-64 CPU claims about its features (CPUID, as Linux names the
flags), and which feature a discovery candidate needs: the inputs of
discovery's second cross-check on x86-64.

Claims are the discovery inventory's CPU flags.  A candidate's feature comes
from capstone's instruction groups; a candidate in no feature group (base
x86-64) gets no claim, so only capstone judges it.
"""

from __future__ import annotations

from capstone import x86_const

from arch import X86_64
from discovery.inventory import Inventory
from probes.families.candidate import Candidate

# capstone instruction group -> the /proc/cpuinfo flag that advertises it
GROUP_FLAGS = {
    x86_const.X86_GRP_CMOV: "cmov", x86_const.X86_GRP_MMX: "mmx",
    x86_const.X86_GRP_3DNOW: "3dnow",
    x86_const.X86_GRP_SSE1: "sse", x86_const.X86_GRP_SSE2: "sse2", x86_const.X86_GRP_SSE3: "pni",
    x86_const.X86_GRP_SSSE3: "ssse3", x86_const.X86_GRP_SSE41: "sse4_1",
    x86_const.X86_GRP_SSE42: "sse4_2", x86_const.X86_GRP_SSE4A: "sse4a",
    x86_const.X86_GRP_AVX: "avx", x86_const.X86_GRP_AVX2: "avx2",
    x86_const.X86_GRP_AVX512: "avx512f", x86_const.X86_GRP_BWI: "avx512bw",
    x86_const.X86_GRP_DQI: "avx512dq", x86_const.X86_GRP_CDI: "avx512cd",
    x86_const.X86_GRP_ERI: "avx512er", x86_const.X86_GRP_PFI: "avx512pf",
    x86_const.X86_GRP_VLX: "avx512vl",
    x86_const.X86_GRP_FMA: "fma", x86_const.X86_GRP_FMA4: "fma4", x86_const.X86_GRP_F16C: "f16c",
    x86_const.X86_GRP_XOP: "xop", x86_const.X86_GRP_TBM: "tbm",
    x86_const.X86_GRP_AES: "aes", x86_const.X86_GRP_PCLMUL: "pclmulqdq",
    x86_const.X86_GRP_SHA: "sha_ni", x86_const.X86_GRP_BMI: "bmi1", x86_const.X86_GRP_BMI2: "bmi2",
    x86_const.X86_GRP_ADX: "adx", x86_const.X86_GRP_FSGSBASE: "fsgsbase",
    x86_const.X86_GRP_RTM: "rtm", x86_const.X86_GRP_HLE: "hle",
}


def claimed_features(inventory: Inventory) -> frozenset[str]:
    """The CPU's feature flags from discovery (CPUID, Linux names)."""
    table = getattr(inventory.cpu, "table", None)
    flags = table.flags if table is not None else None
    if not flags:
        raise ValueError("the discovery inventory has no CPUID flags: nothing claims any feature")
    return frozenset(flags)


def required_features(candidate: Candidate) -> frozenset[str] | None:
    """The flags capstone's decoding of the candidate needs; None: base x86-64 or undecodable."""
    decoded = next(X86_64.disassembler.disasm(candidate.encoding, 0, 1), None)
    if decoded is None:
        return None
    needed = frozenset(GROUP_FLAGS[g] for g in decoded.groups if g in GROUP_FLAGS)
    return needed or None


def claimed_supported(candidate: Candidate, claims: frozenset[str]) -> bool | None:
    """True / False as the CPU's flags cover the candidate's features; None: unattributed."""
    needed = required_features(candidate)
    return None if needed is None else needed <= claims
