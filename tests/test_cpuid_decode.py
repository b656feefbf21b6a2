"""CPUID decoding against registers built from the Intel SDM / AMD APM and QEMU CPU
models, Linux's vendor rules (amd.c, hygon.c, intel.c) and QEMU's feature names.
This machine's CPUID against its Linux: test_cpuid_linux_host.py."""

import shutil

import pytest

import testing.synthetic_q35 as q35
from arch import X86_64
from discovery.cpufeatures import FLAGS
from discovery.cpuid import CpuidResult, CpuidTable
from kernel.x86_64.cpuid_rules import MAX_SUBLEAF, RULES, SubleafBound
from qemu.groundtruth import linux_flag, recognized_cpuid_flags


def table(rows):
    return CpuidTable([CpuidResult(**r) for r in rows])


def test_identity_of_a_qemu_haswell():
    t = table(q35.CPUID)
    assert (t.vendor, t.brand) == ("GenuineIntel", q35.BRAND)
    assert (t.family, t.model, t.stepping) == (6, 60, 4)
    assert t.address_sizes == (40, 48)
    assert t.hypervisor_vendor == "TCG"


def test_extended_family_applies_only_to_family_15():
    # AMD EPYC (QEMU model): family 23 = 0xF + 8, model 1, stepping 2.
    epyc = table([q35.regs(0, 0, 0xD), q35.regs(1, 0, 0x00800F12)])
    assert (epyc.family, epyc.model, epyc.stepping) == (23, 1, 2)
    # Family 5 with extended bits set: neither extension applies.
    pentium = table([q35.regs(0, 0, 1), q35.regs(1, 0, 0x00F10543)])
    assert (pentium.family, pentium.model, pentium.stepping) == (5, 4, 3)


def test_flags_are_linux_names_in_linux_order():
    assert table(q35.CPUID).flags == q35.EXPECTED_FLAGS


def test_named_bits_from_the_brief():
    t = table([q35.regs(0, 0, 1), q35.regs(1, 0, 0, 0, q35.bits(0, 20, 21, 31), 0),
               q35.regs(0x80000000, 0, 0x80000001), q35.regs(0x80000001, 0, 0, 0, 1, 0)])
    assert t.flags == ["pni", "sse4_2", "x2apic", "hypervisor", "lahf_lm"]


def test_leaves_beyond_the_maximum_are_ignored():
    rows = [q35.regs(0, 0, 1), q35.regs(7, 0, 0, q35.bits(5), 0, 0)]  # max leaf 1: leaf 7 is stale
    assert "avx2" not in table(rows).flags


def test_caches_from_leaf_4():
    caches = {c.lscpu_name: c for c in table(q35.CPUID).caches}
    assert {name: c.size for name, c in caches.items()} == q35.CACHE_SIZES
    assert (caches["L1d"].ways, caches["L1d"].line_size, caches["L1d"].sets) == (8, 64, 64)
    assert caches["L1i"].type == "Instruction" and caches["L2"].type == "Unified"


def test_logical_count_fallback_from_leaf_1():
    assert table(q35.CPUID).logical_per_package == 2  # EBX[23:16] with HTT set
    assert table([q35.regs(0, 0, 1), q35.regs(1, 0, 0, 0x00040000, 0, 0)]).logical_per_package == 1


def test_every_linux_name_has_one_position_and_each_position_one_name():
    positions = {(f.name, f.position) for f in FLAGS}
    assert len({name for name, _ in positions}) == len(positions) == len({p for _, p in positions})
    assert all(f.name == f.name.lower() and " " not in f.name for f in FLAGS)


def test_every_subleaf_the_table_reads_is_one_the_guest_enumerates():
    # The guest sends subleaf 0 of every leaf in range and other subleaves by its rules
    # (kernel/x86_64/cpuid_rules.py): 7.n up to 7.0 EAX, as Linux reads them; 0xD.1
    # always; 0xF.n / 0x10.n for the resources subleaf 0 lists.  A flag on a subleaf of a
    # leaf without a rule would never be set.
    rules = {r.leaf: r.kind for r in RULES}
    reaching = {SubleafBound.MAX_IN_REGISTER, SubleafBound.NONZERO, SubleafBound.BITMAP}
    unreached = {(hex(f.leaf), f.subleaf) for f in FLAGS if f.subleaf
                 and (rules.get(f.leaf) not in reaching or f.subleaf > MAX_SUBLEAF)}
    assert unreached == set()


def cpu(vendor, family, model, *rows, level=0xD, xlevel=0x80000008):
    """CPUID results of a CPU: vendor string and signature (leaf 0 and 1, SDM vol. 2A),
    the range maxima, and `rows` (q35.regs) over them."""
    ebx, edx, ecx = q35.ascii_regs(vendor, 3)
    base = (min(family, 0xF) << 8 | max(family - 0xF, 0) << 20 | (model & 0xF) << 4
            | (model >> 4) << 16)
    leaf1 = next((r for r in rows if r["leaf"] == 1), q35.regs(1))
    rows = [r for r in rows if r["leaf"] != 1]
    return table([q35.regs(0, 0, level, ebx, ecx, edx), {**leaf1, "eax": base},
                  q35.regs(0x80000000, 0, xlevel), *rows])


LM = q35.regs(0x80000001, 0, 0, 0, 0, q35.bits(29))  # AMD APM Fn8000_0001_EDX[29] long mode


def test_the_flags_the_issue_found_missing_come_from_their_cpuid_bits():
    # Intel SDM CPUID.06H:EAX[2] ARAT; AMD APM Fn8000_0001_ECX[8] 3DNowPrefetch,
    # Fn8000_000A_EDX[0] NP (nested paging).  Intel, so no vendor rule adds any.
    t = cpu("GenuineIntel", 6, 0x3C, q35.regs(6, 0, q35.bits(2)),
            q35.regs(0x80000001, 0, 0, 0, q35.bits(8), 0), q35.regs(0x8000000A, 0, 0, 0, 0, 1),
            xlevel=0x8000000A)
    assert t.flags == ["3dnowprefetch", "arat", "npt"]  # words 6, 14, 15
    assert cpu("GenuineIntel", 6, 0x3C, q35.regs(0x8000000A, 0, 0, 0, 0, 1)).flags == []


def test_scattered_bits_land_in_linux_order():
    # Intel SDM: 06H:ECX[0] APERF/MPERF, 0FH.1:EDX[0] L3 occupancy, 10H:EBX[3] MBA;
    # AMD APM Fn8000_0008_EBX[6] MBA: two sources, one flag.
    t = cpu("GenuineIntel", 6, 0x55, q35.regs(6, 0, 0, 0, 1, 0), q35.regs(0xF, 1, 0, 0, 0, 1),
            q35.regs(0x10, 0, 0, q35.bits(3)), q35.regs(0x80000008, 0, 0, q35.bits(6)),
            level=0x10)
    assert t.flags == ["aperfmperf", "mba", "cqm_occup_llc"]  # words 3, 7, 11


@pytest.mark.parametrize("vendor, family, model, rows, present, absent", [
    # arch/x86/kernel/cpu/amd.c init_amd: family > 0x11 sets arat; 3DNow or LM sets
    # 3dnowprefetch; leaf 1 EDX[31] is cleared.
    ("AuthenticAMD", 0x17, 0x31, [LM, q35.regs(1, 0, 0, 0, 0, q35.bits(31))],
     {"arat", "3dnowprefetch"}, {"pbe"}),
    ("AuthenticAMD", 0xF, 0x6B, [LM], {"3dnowprefetch"}, {"arat"}),  # qemu64's signature
    ("AuthenticAMD", 0x10, 0x02, [], set(), {"3dnowprefetch", "arat"}),
    ("GenuineIntel", 6, 0x3C, [LM, q35.regs(1, 0, 0, 0, 0, q35.bits(31))], {"pbe"},
     {"arat", "3dnowprefetch"}),
    # hygon.c init_hygon: arat and cpb always.
    ("HygonGenuine", 0x18, 0x00, [], {"arat", "cpb"}, set()),
    # amd.c init_amd_zen1: erratum 1076, cpb on bare metal only.
    ("AuthenticAMD", 0x17, 0x01, [], {"cpb"}, set()),
    ("AuthenticAMD", 0x17, 0x01, [q35.regs(1, 0, 0, 0, q35.bits(31), 0)], {"hypervisor"},
     {"cpb"}),
    # amd.c init_amd_zen4: virtual VMLOAD/VMSAVE cleared on models 0x18-0x1f, 0x60-0x7f.
    ("AuthenticAMD", 0x19, 0x61, [q35.regs(0x8000000A, 0, 0, 0, 0, q35.bits(15))], set(),
     {"v_vmsave_vmload"}),
    ("AuthenticAMD", 0x19, 0x11, [q35.regs(0x8000000A, 0, 0, 0, 0, q35.bits(15))],
     {"v_vmsave_vmload"}, set()),
    # intel.c check_memory_type_self_snoop_errata: Sandy Bridge (6, 0x2a) loses ss.
    ("GenuineIntel", 6, 0x2A, [q35.regs(1, 0, 0, 0, 0, q35.bits(27))], set(), {"ss"}),
    ("GenuineIntel", 6, 0x3C, [q35.regs(1, 0, 0, 0, 0, q35.bits(27))], {"ss"}, set()),
])
def test_linux_vendor_rules(vendor, family, model, rows, present, absent):
    flags = set(cpu(vendor, family, model, *rows, xlevel=0x8000000A).flags)
    assert present <= flags and not absent & flags


def test_word_5_is_read_on_centaur_and_zhaoxin_only():
    # Linux centaur.c/zhaoxin.c: 0xC000_0001 EDX when 0xC000_0000 says it exists;
    # bit 2 is the RNG (xstore), bit 6 ACE.
    rows = (q35.regs(0xC0000000, 0, 0xC0000001), q35.regs(0xC0000001, 0, 0, 0, 0, q35.bits(2, 6)))
    assert cpu("CentaurHauls", 6, 0x0F, *rows).flags == ["rng", "ace"]
    assert cpu("  Shanghai  ", 7, 0x3B, *rows).flags == ["rng", "ace"]
    assert cpu("GenuineIntel", 6, 0x3C, *rows).flags == []  # 0xC000_0000 on Intel is no leaf
    stale = (q35.regs(0xC0000000, 0, 0xC0000000), rows[1])  # maximum below the leaf
    assert cpu("CentaurHauls", 6, 0x0F, *stale).flags == []


@pytest.mark.qemu
@pytest.mark.skipif(not shutil.which(X86_64.qemu_binary),
                    reason=f"{X86_64.qemu_binary} not installed (./run installs it)")
def test_every_feature_bit_qemu_names_is_one_of_our_flags_or_unnamed_by_linux():
    # QEMU names CPUID bits on its own (target/i386/cpu.c); mapped to Linux's names
    # (qemu/groundtruth.py), each is a flag of the table unless Linux shows none for it.
    ours = {f.name for f in FLAGS}
    recognized = recognized_cpuid_flags(X86_64.qemu_binary)
    assert len(recognized) > 200
    missing = {name: linux_flag(name) for name in recognized}
    assert {q: name for q, name in missing.items() if name is not None and name not in ours} == {}
