"""The frame CRC-32 lookup tables (contract.protocol.crc32_slicing_tables) as an
assembly data source, for the kernel's eight-bytes-a-step frame CRC."""

from __future__ import annotations

from contract.protocol import crc32_slicing_tables

from .asmdata import data_source


def source() -> str:
    values = [v for table in crc32_slicing_tables() for v in table]
    return ".align 4\n" + data_source("contract/protocol.py", "crc32_tables", 4, values)
