"""Frame-header field offsets for the assembly, derived from host.protocol.HEADER.

PROPOSAL for contract/protocol.py: asm_constants() could export these itself
(FRAME_HEADER_TYPE/FLAGS/SEQ); until then they are derived here from the
protocol's own struct, never typed by hand."""

from __future__ import annotations

import struct

from contract.protocol import HEADER, LAYOUTS, MAX_BODY, Msg

HEADER_FIELDS = ("TYPE", "FLAGS", "SEQ")


def asm_constants() -> dict[str, int]:
    codes = HEADER.format.lstrip("<")
    if len(codes) != len(HEADER_FIELDS):
        raise ValueError(f"protocol HEADER {HEADER.format!r} changed; update this module")
    consts = {}
    for index, name in enumerate(HEADER_FIELDS):
        consts[f"FRAME_HEADER_{name}"] = struct.calcsize("<" + codes[:index])
    # The kernel indexes CPUID registers as an array eax, ebx, ecx, edx.
    cpuid = LAYOUTS[Msg.CPUID].offsets()
    if [cpuid[r] - cpuid["eax"] for r in ("eax", "ebx", "ecx", "edx")] != [0, 4, 8, 12]:
        raise ValueError("CPUID body no longer holds eax..edx in a row; fix kernel/x86_64/cpuid.s")
    pci = LAYOUTS[Msg.PCI_FUNCTION].offsets()
    if [pci[f"bar{i}_readback"] - pci["bar0_readback"] for i in range(6)] != list(range(0, 24, 4)):
        raise ValueError("PCI_FUNCTION BAR readbacks are not in a row; fix kernel/x86_64/pci.s")
    if LAYOUTS[Msg.ACPI_RSDP].fields != LAYOUTS[Msg.ACPI_TABLE].fields:
        raise ValueError("ACPI_RSDP and ACPI_TABLE bodies differ now; fix kernel/x86_64/acpi.s")
    consts["ACPI_TABLE_MAX_RAW"] = MAX_BODY - LAYOUTS[Msg.ACPI_TABLE].size
    return consts
