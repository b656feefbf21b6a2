"""x86 CPUID feature bits under the names Linux prints in /proc/cpuinfo "flags".

One table, typed from Linux's arch/x86/include/asm/cpufeatures.h (6.15-6.18: the
quoted name that opens a comment is what /proc/cpuinfo shows; a bit without one
is not shown and is left out) and arch/x86/kernel/cpu/scattered.c (the CPUID bits
Linux gathers into words of its own).  Every flag keeps Linux's position in its
capability array (word * 32 + bit): /proc/cpuinfo lists flags in that order, and
so do we.

Covered, by Linux word: 0 (CPUID 1 EDX), 1 (0x8000_0001 EDX), 4 (1 ECX),
5 (0xC000_0001 EDX, read on Centaur and Zhaoxin only, as centaur.c/zhaoxin.c do),
6 (0x8000_0001 ECX), 9 (7.0 EBX), 10 (0xD.1 EAX), 12 (7.1 EAX), 13 (0x8000_0008
EBX), 14 (6 EAX), 15 (0x8000_000A EDX), 16 (7.0 ECX), 17 (0x8000_0007 EBX),
18 (7.0 EDX), 19 (0x8000_001F EAX), and the named scattered bits of words 3, 7,
11 and 21 (leaves 6, 7.1, 0xF, 0x10, 0x8000_0007/8, 0x8000_0022).  Word 20
(0x8000_0021 EAX) and the scattered bits of 7.1 ECX/EDX, 7.2, 0x12, 0x8000_0020
and 0x8000_0026 have no /proc/cpuinfo name.  Word 2 (Transmeta 0x8086_0001) is
read by 32-bit kernels only.

Not CPUID bits, so absent: Linux's synthetic flags (constant_tsc, rep_good,
vmmcall, ibpb...; words 3, 7, 8, 11, 21 outside scattered.c), which it derives
from MSRs, microcode or its own settings.  "la57" is the CPUID bit 7.0 ECX[16],
as Linux named it up to 6.15 (6.16 moved the name to "5-level paging in use").

Linux also adjusts a few of these flags by vendor and model, from nothing but
CPUID (amd.c, hygon.c, intel.c): LINUX_RULES below, applied by `flag_names`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

CENTAUR_VENDORS = ("CentaurHauls", "  Shanghai  ")  # VIA/Centaur, Zhaoxin
AMD, HYGON, INTEL = "AuthenticAMD", "HygonGenuine", "GenuineIntel"


class Registers(Protocol):
    def __getitem__(self, register: str) -> int: ...


Read = Callable[[int, int], Registers | None]  # (leaf, subleaf) -> registers, None if absent


@dataclass(frozen=True)
class FeatureWord:
    """A Linux capability word that is one CPUID register, bit for bit."""

    word: int
    leaf: int
    subleaf: int
    register: str  # "eax" | "ebx" | "ecx" | "edx"
    bits: dict[int, str]  # bit -> /proc/cpuinfo name
    vendors: tuple[str, ...] = ()  # Linux reads the word on these vendors only; () = all


@dataclass(frozen=True)
class ScatteredBit:
    """A CPUID bit Linux copies into a word of its own (scattered.c)."""

    name: str
    position: int  # word * 32 + bit in Linux's capability array
    leaf: int
    subleaf: int
    register: str
    bit: int


@dataclass(frozen=True)
class CpuFlag:
    """One /proc/cpuinfo flag and the CPUID bit it stands for."""

    name: str
    position: int
    leaf: int
    subleaf: int
    register: str
    bit: int
    vendors: tuple[str, ...] = ()


FEATURE_WORDS: tuple[FeatureWord, ...] = (
    FeatureWord(0, 0x1, 0, "edx", {
        0: "fpu", 1: "vme", 2: "de", 3: "pse", 4: "tsc", 5: "msr", 6: "pae", 7: "mce",
        8: "cx8", 9: "apic", 11: "sep", 12: "mtrr", 13: "pge", 14: "mca", 15: "cmov",
        16: "pat", 17: "pse36", 18: "pn", 19: "clflush", 21: "dts", 22: "acpi", 23: "mmx",
        24: "fxsr", 25: "sse", 26: "sse2", 27: "ss", 28: "ht", 29: "tm", 30: "ia64", 31: "pbe",
    }),
    # Bits redundant with leaf 1 EDX have no name of their own here.
    FeatureWord(1, 0x80000001, 0, "edx", {
        11: "syscall", 19: "mp", 20: "nx", 22: "mmxext", 25: "fxsr_opt", 26: "pdpe1gb",
        27: "rdtscp", 29: "lm", 30: "3dnowext", 31: "3dnow",
    }),
    FeatureWord(4, 0x1, 0, "ecx", {
        0: "pni", 1: "pclmulqdq", 2: "dtes64", 3: "monitor", 4: "ds_cpl", 5: "vmx", 6: "smx",
        7: "est", 8: "tm2", 9: "ssse3", 10: "cid", 11: "sdbg", 12: "fma", 13: "cx16",
        14: "xtpr", 15: "pdcm", 17: "pcid", 18: "dca", 19: "sse4_1", 20: "sse4_2",
        21: "x2apic", 22: "movbe", 23: "popcnt", 24: "tsc_deadline_timer", 25: "aes",
        26: "xsave", 28: "avx", 29: "f16c", 30: "rdrand", 31: "hypervisor",
    }),
    FeatureWord(5, 0xC0000001, 0, "edx", {
        2: "rng", 3: "rng_en", 6: "ace", 7: "ace_en", 8: "ace2", 9: "ace2_en", 10: "phe",
        11: "phe_en", 12: "pmm", 13: "pmm_en",
    }, vendors=CENTAUR_VENDORS),
    FeatureWord(6, 0x80000001, 0, "ecx", {
        0: "lahf_lm", 1: "cmp_legacy", 2: "svm", 3: "extapic", 4: "cr8_legacy", 5: "abm",
        6: "sse4a", 7: "misalignsse", 8: "3dnowprefetch", 9: "osvw", 10: "ibs", 11: "xop",
        12: "skinit", 13: "wdt", 15: "lwp", 16: "fma4", 17: "tce", 19: "nodeid_msr",
        21: "tbm", 22: "topoext", 23: "perfctr_core", 24: "perfctr_nb", 26: "bpext",
        27: "ptsc", 28: "perfctr_llc", 29: "mwaitx",
    }),
    FeatureWord(9, 0x7, 0, "ebx", {
        0: "fsgsbase", 1: "tsc_adjust", 2: "sgx", 3: "bmi1", 4: "hle", 5: "avx2", 7: "smep",
        8: "bmi2", 9: "erms", 10: "invpcid", 11: "rtm", 12: "cqm", 14: "mpx", 15: "rdt_a",
        16: "avx512f", 17: "avx512dq", 18: "rdseed", 19: "adx", 20: "smap", 21: "avx512ifma",
        23: "clflushopt", 24: "clwb", 25: "intel_pt", 26: "avx512pf", 27: "avx512er",
        28: "avx512cd", 29: "sha_ni", 30: "avx512bw", 31: "avx512vl",
    }),
    FeatureWord(10, 0xD, 1, "eax", {0: "xsaveopt", 1: "xsavec", 2: "xgetbv1", 3: "xsaves"}),
    FeatureWord(12, 0x7, 1, "eax", {4: "avx_vnni", 5: "avx512_bf16", 17: "fred", 26: "lam"}),
    FeatureWord(13, 0x80000008, 0, "ebx", {
        0: "clzero", 1: "irperf", 2: "xsaveerptr", 4: "rdpru", 9: "wbnoinvd", 23: "amd_ppin",
        25: "virt_ssbd", 27: "cppc", 31: "brs",
    }),
    FeatureWord(14, 0x6, 0, "eax", {
        0: "dtherm", 1: "ida", 2: "arat", 4: "pln", 6: "pts", 7: "hwp", 8: "hwp_notify",
        9: "hwp_act_window", 10: "hwp_epp", 11: "hwp_pkg_req", 19: "hfi",
    }),
    FeatureWord(15, 0x8000000A, 0, "edx", {
        0: "npt", 1: "lbrv", 2: "svm_lock", 3: "nrip_save", 4: "tsc_scale", 5: "vmcb_clean",
        6: "flushbyasid", 7: "decodeassists", 10: "pausefilter", 12: "pfthreshold",
        13: "avic", 15: "v_vmsave_vmload", 16: "vgif", 18: "x2avic", 20: "v_spec_ctrl",
        25: "vnmi",
    }),
    FeatureWord(16, 0x7, 0, "ecx", {
        1: "avx512vbmi", 2: "umip", 3: "pku", 4: "ospke", 5: "waitpkg", 6: "avx512_vbmi2",
        8: "gfni", 9: "vaes", 10: "vpclmulqdq", 11: "avx512_vnni", 12: "avx512_bitalg",
        13: "tme", 14: "avx512_vpopcntdq", 16: "la57", 22: "rdpid", 24: "bus_lock_detect",
        25: "cldemote", 27: "movdiri", 28: "movdir64b", 29: "enqcmd", 30: "sgx_lc",
    }),
    FeatureWord(17, 0x80000007, 0, "ebx", {0: "overflow_recov", 1: "succor", 3: "smca"}),
    FeatureWord(18, 0x7, 0, "edx", {
        2: "avx512_4vnniw", 3: "avx512_4fmaps", 4: "fsrm", 8: "avx512_vp2intersect",
        10: "md_clear", 14: "serialize", 16: "tsxldtrk", 18: "pconfig", 19: "arch_lbr",
        20: "ibt", 22: "amx_bf16", 23: "avx512_fp16", 24: "amx_tile", 25: "amx_int8",
        28: "flush_l1d", 29: "arch_capabilities",
    }),
    FeatureWord(19, 0x8000001F, 0, "eax", {
        0: "sme", 1: "sev", 3: "sev_es", 4: "sev_snp", 14: "debug_swap", 28: "svsm",
    }),
)

# scattered.c's table, the entries with a /proc/cpuinfo name.  "mba" has two sources
# (Intel RDT leaf 0x10, AMD 0x8000_0008) for one position.
SCATTERED: tuple[ScatteredBit, ...] = (
    ScatteredBit("amd_lbr_v2", 3 * 32 + 17, 0x80000022, 0, "eax", 1),
    ScatteredBit("aperfmperf", 3 * 32 + 28, 0x6, 0, "ecx", 0),
    ScatteredBit("cpb", 7 * 32 + 2, 0x80000007, 0, "edx", 9),
    ScatteredBit("epb", 7 * 32 + 3, 0x6, 0, "ecx", 3),
    ScatteredBit("cat_l3", 7 * 32 + 4, 0x10, 0, "ebx", 1),
    ScatteredBit("cat_l2", 7 * 32 + 5, 0x10, 0, "ebx", 2),
    ScatteredBit("cdp_l3", 7 * 32 + 6, 0x10, 1, "ecx", 2),
    ScatteredBit("hw_pstate", 7 * 32 + 8, 0x80000007, 0, "edx", 7),
    ScatteredBit("proc_feedback", 7 * 32 + 9, 0x80000007, 0, "edx", 11),
    ScatteredBit("intel_ppin", 7 * 32 + 14, 0x7, 1, "ebx", 0),
    ScatteredBit("cdp_l2", 7 * 32 + 15, 0x10, 2, "ecx", 2),
    ScatteredBit("mba", 7 * 32 + 18, 0x10, 0, "ebx", 3),
    ScatteredBit("mba", 7 * 32 + 18, 0x80000008, 0, "ebx", 6),
    ScatteredBit("perfmon_v2", 7 * 32 + 20, 0x80000022, 0, "eax", 0),
    ScatteredBit("cqm_llc", 11 * 32 + 0, 0xF, 0, "edx", 1),
    ScatteredBit("cqm_occup_llc", 11 * 32 + 1, 0xF, 1, "edx", 0),
    ScatteredBit("cqm_mbm_total", 11 * 32 + 2, 0xF, 1, "edx", 1),
    ScatteredBit("cqm_mbm_local", 11 * 32 + 3, 0xF, 1, "edx", 2),
    ScatteredBit("amd_lbr_pmc_freeze", 21 * 32 + 0, 0x80000022, 0, "eax", 2),
)


def _flatten() -> tuple[CpuFlag, ...]:
    flags = [CpuFlag(name, w.word * 32 + bit, w.leaf, w.subleaf, w.register, bit, w.vendors)
             for w in FEATURE_WORDS for bit, name in w.bits.items()]
    flags += [CpuFlag(s.name, s.position, s.leaf, s.subleaf, s.register, s.bit)
              for s in SCATTERED]
    return tuple(sorted(flags, key=lambda f: f.position))


FLAGS: tuple[CpuFlag, ...] = _flatten()  # in /proc/cpuinfo order
POSITIONS: dict[str, int] = {f.name: f.position for f in FLAGS}


@dataclass(frozen=True)
class LinuxRule:
    """A flag Linux sets or clears by vendor and model, from CPUID alone."""

    sets: bool  # True: Linux sets the flag; False: it clears it
    name: str
    vendors: tuple[str, ...]
    source: str  # the Linux function that does it, and why
    families: range | None = None  # None: any family
    models: tuple[range, ...] = ()  # () = any model
    when_any: tuple[str, ...] = ()  # only when one of these flags is set
    bare_metal: bool = False  # only when CPUID says no hypervisor


def _models(*spans: tuple[int, int]) -> tuple[range, ...]:
    return tuple(range(low, high + 1) for low, high in spans)


def _sets(name: str, vendors: tuple[str, ...], source: str, **when) -> LinuxRule:
    return LinuxRule(True, name, vendors, source, **when)


def _clears(name: str, vendors: tuple[str, ...], source: str, **when) -> LinuxRule:
    return LinuxRule(False, name, vendors, source, **when)


LINUX_RULES: tuple[LinuxRule, ...] = (
    _clears("pbe", (AMD, HYGON), "init_amd/init_hygon: leaf 1 EDX[31] is a nonstandard"
            " 3DNow bit on AMD"),
    _sets("arat", (AMD,), "init_amd: family 0x12 on keeps the APIC timer running in deep"
          " C states", families=range(0x12, 0x100)),
    _sets("arat", (HYGON,), "init_hygon: the APIC timer runs in deep C states"),
    _sets("3dnowprefetch", (AMD,), "init_amd: 3DNow or long mode implies PREFETCHW",
          when_any=("3dnow", "lm")),
    _sets("cpb", (HYGON,), "init_hygon: core performance boost, always"),
    _sets("cpb", (AMD,), "init_amd_zen1: erratum 1076, CPB missing from CPUID",
          families=range(0x17, 0x18), models=_models((0x00, 0x2F), (0x50, 0x5F)),
          bare_metal=True),
    _clears("v_vmsave_vmload", (AMD,), "init_amd_zen4: these SoCs' virtual VMLOAD/VMSAVE"
            " can reboot the host", families=range(0x19, 0x1A),
            models=_models((0x18, 0x1F), (0x60, 0x7F))),
    _clears("lahf_lm", (AMD,), "init_amd_k8: erratum 110, only K8 revision D (model 0x14)"
            " on has LAHF/SAHF in long mode", families=range(0xF, 0x10),
            models=_models((0x00, 0x13)), bare_metal=True),
    # Yonah, Merom, Merom-L, Penryn, Dunnington, Nehalem (-G, -EP, -EX), Westmere (-EP),
    # Sandy Bridge (arch/x86/include/asm/intel-family.h).
    _clears("ss", (INTEL,), "check_memory_type_self_snoop_errata: self-snoop errata",
            families=range(6, 7),
            models=_models(*((m, m) for m in (0x0E, 0x0F, 0x16, 0x17, 0x1D, 0x1E, 0x1F, 0x1A,
                                               0x2E, 0x25, 0x2C, 0x2A)))),
)


def _applies(rule: LinuxRule, vendor: str, family: int, model: int,
             flags: set[str]) -> bool:
    return (vendor in rule.vendors
            and (rule.families is None or family in rule.families)
            and (not rule.models or any(model in span for span in rule.models))
            and (not rule.when_any or any(name in flags for name in rule.when_any))
            and not (rule.bare_metal and "hypervisor" in flags))


def cpuid_flag_names(read: Read, vendor: str) -> list[str]:
    """The flags whose CPUID bit is set, in /proc/cpuinfo order.

    `read(leaf, subleaf)` returns a mapping with eax/ebx/ecx/edx, or None when the
    leaf was not reported (then its flags are absent, as on a CPU without it)."""
    names: list[str] = []
    for flag in FLAGS:
        if flag.vendors and vendor not in flag.vendors:
            continue
        regs = read(flag.leaf, flag.subleaf)
        if regs is not None and regs[flag.register] >> flag.bit & 1 and flag.name not in names:
            names.append(flag.name)
    return names


def flag_names(read: Read, vendor: str, family: int, model: int) -> list[str]:
    """The flags Linux shows for these CPUID results: the CPUID bits, adjusted by
    LINUX_RULES, in /proc/cpuinfo order."""
    flags = set(cpuid_flag_names(read, vendor))
    for rule in LINUX_RULES:
        if _applies(rule, vendor, family, model, flags):
            if rule.sets:
                flags.add(rule.name)
            else:
                flags.discard(rule.name)
    return sorted(flags, key=POSITIONS.__getitem__)
