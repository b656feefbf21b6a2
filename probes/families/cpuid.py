"""CPUID sweep (x86-64, user): one probe per (leaf, subleaf); output = eax, ebx, ecx, edx."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

from arch import X86_64
from probes.probe import Probe

BASIC_LEAVES = range(0x0, 0x24)
EXTENDED_LEAVES = range(0x8000_0000, 0x8000_0024)
HYPERVISOR_LEAVES = range(0x4000_0000, 0x4000_0010)
SUBLEAVES = 8  # leaves 4, 7, 0xB, 0xD, 0xF, 0x10, 0x12, 0x14, 0x17, 0x18, 0x1F index by ecx


SOURCE = """\
mov eax, {leaf}
mov ecx, {subleaf}
cpuid
mov [rsi], eax
mov [rsi+4], ebx
mov [rsi+8], ecx
mov [rsi+12], edx
xor eax, eax
ret
"""
# Marks assembled in place of leaf and subleaf, found again in the code: `mov r32,
# imm32` always encodes the full immediate, so each probe is the template with its
# two immediates written in (assembling each one took 230 us).
_LEAF_MARK, _SUBLEAF_MARK = 0x1EAF_0BAD, 0x5AB1_EAF0


@cache
def _template() -> tuple[bytes, int, int]:
    code = X86_64.assemble(SOURCE.format(leaf=_LEAF_MARK, subleaf=_SUBLEAF_MARK))
    return (code, code.index(_LEAF_MARK.to_bytes(4, "little")),
            code.index(_SUBLEAF_MARK.to_bytes(4, "little")))


def cpuid_probe(leaf: int, subleaf: int) -> Probe:
    template, at_leaf, at_subleaf = _template()
    code = bytearray(template)
    code[at_leaf:at_leaf + 4] = leaf.to_bytes(4, "little")
    code[at_subleaf:at_subleaf + 4] = subleaf.to_bytes(4, "little")
    return Probe(X86_64, bytes(code), family="cpuid", output_size=16,
                 meta={"leaf": leaf, "subleaf": subleaf})


def cpuid_sweep(subleaves: int = SUBLEAVES) -> Iterator[Probe]:
    for leaves in (BASIC_LEAVES, HYPERVISOR_LEAVES, EXTENDED_LEAVES):
        for leaf in leaves:
            for subleaf in range(subleaves):
                yield cpuid_probe(leaf, subleaf)
