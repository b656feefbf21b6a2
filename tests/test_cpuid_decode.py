"""CPUID decoding against registers built from the Intel SDM / QEMU CPU models,
and against this machine's own CPUID (hwloc-gather-cpuid) read by Linux and lscpu."""

from arch import X86_64
import platform
import shutil
import subprocess

import pytest
import synthetic_q35 as q35

from discovery.cpufeatures import FEATURE_WORDS
from discovery.cpuid import CpuidResult, CpuidTable
from discovery.dumps import read_cpuid_dump


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


def test_every_linux_name_is_unique_and_lowercase():
    names = [n for w in FEATURE_WORDS for n in w.bits.values()]
    assert len(names) == len(set(names))
    assert all(n == n.lower() and " " not in n for n in names)


needs_host_cpuid = pytest.mark.skipif(
    platform.machine() != X86_64 or not shutil.which("hwloc-gather-cpuid") or not shutil.which("lscpu"),
    reason="needs an x86-64 host with hwloc-gather-cpuid and lscpu",
)

# Linux clears these at run time depending on kernel configuration (5-level
# paging off, protection keys unsupported by the OS...), even when CPUID has them.
LINUX_RUNTIME_CLEARED = {"la57", "pku", "ospke", "umip", "tme", "hypervisor", "sgx", "sgx_lc"}


@needs_host_cpuid
def test_against_this_machines_cpuid_and_linux(tmp_path):
    subprocess.run(["hwloc-gather-cpuid", str(tmp_path / "g")], check=True, capture_output=True)
    t = CpuidTable(read_cpuid_dump(tmp_path / "g" / "pu0"))
    lscpu = dict(
        line.split(":", 1) for line in subprocess.run(
            ["lscpu"], env={"LC_ALL": "C"}, capture_output=True, text=True, check=True
        ).stdout.splitlines() if ":" in line
    )
    lscpu = {k.strip(): v.strip() for k, v in lscpu.items()}
    assert t.vendor == lscpu["Vendor ID"]
    assert t.brand == lscpu["Model name"]
    assert (str(t.family), str(t.model), str(t.stepping)) == (lscpu["CPU family"], lscpu["Model"], lscpu["Stepping"])
    ours = set(t.flags)
    known = {n for w in FEATURE_WORDS for n in w.bits.values()}
    linux = [f for f in lscpu["Flags"].split() if f in known]
    assert set(linux) <= ours
    assert ours - set(linux) <= LINUX_RUNTIME_CLEARED
    assert [f for f in t.flags if f in set(linux)] == linux  # same order
