"""The frame CRC-32 lookup table (host.protocol.crc32_table) as an assembly
data source, for the kernel's byte-at-a-time frame CRC."""

from __future__ import annotations

from contract.protocol import crc32_table

from .asmdata import data_source


def source() -> str:
    return ".align 4\n" + data_source("contract/protocol.py", "crc32_table", 4, crc32_table())
