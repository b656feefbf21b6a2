"""MSR discovery (x86-64, privileged): rdmsr over the documented ranges, #GP caught
by the guest.  Output = edx:eax."""

from __future__ import annotations

from collections.abc import Iterator

from arch import X86_64
from contract.probe_abi import Privilege
from probes.probe import Probe

# Architectural and model-specific (Intel SDM vol. 4), AMD64 (APM vol. 2:
# 0xC000_0000 "long mode" and 0xC001_0000 AMD) ranges.
DOCUMENTED_RANGES = ((0x0000_0000, 0x0000_2000),
                     (0xC000_0000, 0xC000_2000),
                     (0xC001_0000, 0xC001_2000))


def msr_probe(msr: int) -> Probe:
    code = X86_64.assemble(f"mov ecx, {msr}\nrdmsr\nmov [rsi], eax\nmov [rsi+4], edx\n"
                           "xor eax, eax\nret")
    return Probe(X86_64, code, Privilege.PRIVILEGED, family="msr", output_size=8, meta={"msr": msr})


def msr_sweep(ranges: tuple[tuple[int, int], ...] = DOCUMENTED_RANGES) -> Iterator[Probe]:
    for start, end in ranges:
        for msr in range(start, end):
            yield msr_probe(msr)
