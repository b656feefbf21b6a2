"""x86 CPUID feature bits under the names Linux prints in /proc/cpuinfo "flags".

Transcribed from Linux arch/x86/include/asm/cpufeatures.h (names are the quoted
strings in its comments; bits without one are not shown by Linux and are left
out) plus the CPUID-backed entries of arch/x86/kernel/cpu/scattered.c for leaf
0x80000007 EDX.  Rows are in Linux's word order, so flags come out in the order
/proc/cpuinfo lists them.  Linux's synthetic flags (constant_tsc, rep_good...)
are not CPUID bits and are deliberately absent.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureWord:
    leaf: int
    subleaf: int
    register: str  # "eax" | "ebx" | "ecx" | "edx"
    bits: dict[int, str]  # bit -> /proc/cpuinfo name


FEATURE_WORDS: tuple[FeatureWord, ...] = (
    # word 0: CPUID 1 EDX
    FeatureWord(0x1, 0, "edx", {
        0: "fpu", 1: "vme", 2: "de", 3: "pse", 4: "tsc", 5: "msr", 6: "pae", 7: "mce",
        8: "cx8", 9: "apic", 11: "sep", 12: "mtrr", 13: "pge", 14: "mca", 15: "cmov",
        16: "pat", 17: "pse36", 18: "pn", 19: "clflush", 21: "dts", 22: "acpi", 23: "mmx",
        24: "fxsr", 25: "sse", 26: "sse2", 27: "ss", 28: "ht", 29: "tm", 30: "ia64", 31: "pbe",
    }),
    # word 1: CPUID 0x80000001 EDX (bits redundant with leaf 1 are not named by Linux)
    FeatureWord(0x80000001, 0, "edx", {
        11: "syscall", 19: "mp", 20: "nx", 22: "mmxext", 25: "fxsr_opt", 26: "pdpe1gb",
        27: "rdtscp", 29: "lm", 30: "3dnowext", 31: "3dnow",
    }),
    # word 4: CPUID 1 ECX
    FeatureWord(0x1, 0, "ecx", {
        0: "pni", 1: "pclmulqdq", 2: "dtes64", 3: "monitor", 4: "ds_cpl", 5: "vmx", 6: "smx",
        7: "est", 8: "tm2", 9: "ssse3", 10: "cid", 11: "sdbg", 12: "fma", 13: "cx16",
        14: "xtpr", 15: "pdcm", 17: "pcid", 18: "dca", 19: "sse4_1", 20: "sse4_2",
        21: "x2apic", 22: "movbe", 23: "popcnt", 24: "tsc_deadline_timer", 25: "aes",
        26: "xsave", 28: "avx", 29: "f16c", 30: "rdrand", 31: "hypervisor",
    }),
    # word 6: CPUID 0x80000001 ECX
    FeatureWord(0x80000001, 0, "ecx", {
        0: "lahf_lm", 1: "cmp_legacy", 2: "svm", 3: "extapic", 4: "cr8_legacy", 5: "abm",
        6: "sse4a", 7: "misalignsse", 8: "3dnowprefetch", 9: "osvw", 10: "ibs", 11: "xop",
        12: "skinit", 13: "wdt", 15: "lwp", 16: "fma4", 17: "tce", 19: "nodeid_msr",
        21: "tbm", 22: "topoext", 23: "perfctr_core", 24: "perfctr_nb", 26: "bpext",
        27: "ptsc", 28: "perfctr_llc", 29: "mwaitx",
    }),
    # word 7 (scattered.c): CPUID 0x80000007 EDX, in word-7 order cpb, hw_pstate, proc_feedback
    FeatureWord(0x80000007, 0, "edx", {9: "cpb", 7: "hw_pstate", 11: "proc_feedback"}),
    # word 9: CPUID 7.0 EBX
    FeatureWord(0x7, 0, "ebx", {
        0: "fsgsbase", 1: "tsc_adjust", 2: "sgx", 3: "bmi1", 4: "hle", 5: "avx2", 7: "smep",
        8: "bmi2", 9: "erms", 10: "invpcid", 11: "rtm", 12: "cqm", 14: "mpx", 15: "rdt_a",
        16: "avx512f", 17: "avx512dq", 18: "rdseed", 19: "adx", 20: "smap", 21: "avx512ifma",
        23: "clflushopt", 24: "clwb", 25: "intel_pt", 26: "avx512pf", 27: "avx512er",
        28: "avx512cd", 29: "sha_ni", 30: "avx512bw", 31: "avx512vl",
    }),
    # word 10: CPUID 0xD.1 EAX
    FeatureWord(0xD, 1, "eax", {0: "xsaveopt", 1: "xsavec", 2: "xgetbv1", 3: "xsaves"}),
    # word 12: CPUID 7.1 EAX
    FeatureWord(0x7, 1, "eax", {4: "avx_vnni", 5: "avx512_bf16", 17: "fred", 26: "lam"}),
    # word 13: CPUID 0x80000008 EBX
    FeatureWord(0x80000008, 0, "ebx", {
        0: "clzero", 1: "irperf", 2: "xsaveerptr", 4: "rdpru", 9: "wbnoinvd", 23: "amd_ppin",
        25: "virt_ssbd", 27: "cppc", 31: "brs",
    }),
    # word 16: CPUID 7.0 ECX
    FeatureWord(0x7, 0, "ecx", {
        1: "avx512vbmi", 2: "umip", 3: "pku", 4: "ospke", 5: "waitpkg", 6: "avx512_vbmi2",
        8: "gfni", 9: "vaes", 10: "vpclmulqdq", 11: "avx512_vnni", 12: "avx512_bitalg",
        13: "tme", 14: "avx512_vpopcntdq", 16: "la57", 22: "rdpid", 24: "bus_lock_detect",
        25: "cldemote", 27: "movdiri", 28: "movdir64b", 29: "enqcmd", 30: "sgx_lc",
    }),
    # word 18: CPUID 7.0 EDX
    FeatureWord(0x7, 0, "edx", {
        2: "avx512_4vnniw", 3: "avx512_4fmaps", 4: "fsrm", 8: "avx512_vp2intersect",
        10: "md_clear", 14: "serialize", 16: "tsxldtrk", 18: "pconfig", 19: "arch_lbr",
        20: "ibt", 22: "amx_bf16", 23: "avx512_fp16", 24: "amx_tile", 25: "amx_int8",
        28: "flush_l1d", 29: "arch_capabilities",
    }),
    # word 19: CPUID 0x8000001F EAX
    FeatureWord(0x8000001F, 0, "eax", {
        0: "sme", 1: "sev", 3: "sev_es", 4: "sev_snp", 14: "debug_swap", 28: "svsm",
    }),
)


def flag_names(read) -> list[str]:
    """Linux flag names set in a CPUID result source.

    `read(leaf, subleaf)` returns a mapping with eax/ebx/ecx/edx, or None when the
    leaf was not reported (then its flags are absent, as on a CPU without it)."""
    names: list[str] = []
    for word in FEATURE_WORDS:
        regs = read(word.leaf, word.subleaf)
        if regs is None:
            continue
        value = regs[word.register]
        names += [name for bit, name in word.bits.items() if value >> bit & 1]
    return names
