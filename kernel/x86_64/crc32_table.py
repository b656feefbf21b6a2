"""The CRC-32 lookup table (IEEE 802.3, reflected polynomial 0xEDB88320: the
CRC zlib.crc32 computes), for the kernel's byte-at-a-time frame CRC."""

from __future__ import annotations

from .asmdata import data_source

POLYNOMIAL_REFLECTED = 0xEDB88320


def crc32_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (POLYNOMIAL_REFLECTED if crc & 1 else 0)
        table.append(crc)
    return table


def source() -> str:
    return ".align 4\n" + data_source(
        "kernel/x86_64/crc32_table.py", "crc32_table", 4, crc32_table()
    )
