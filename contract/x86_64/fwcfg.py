"""QEMU's fw_cfg device, port interface (docs/specs/fw_cfg.rst in QEMU).

The host passes named files with `-fw_cfg name=opt/...,string=...`; the guest
finds them in the file directory (key FILE_DIR): a big-endian u32 count, then
per file a big-endian u32 size, u16 selector, u16 reserved and a 56-byte name."""

from __future__ import annotations

PORT_SELECTOR = 0x510  # 16-bit write: which item the data port reads
PORT_DATA = 0x511  # 8-bit reads walk through the selected item
FILE_DIR = 0x19
NAME_SIZE = 56


def asm_constants() -> dict[str, int]:
    return {
        "FW_CFG_PORT_SELECTOR": PORT_SELECTOR,
        "FW_CFG_PORT_DATA": PORT_DATA,
        "FW_CFG_FILE_DIR": FILE_DIR,
        "FW_CFG_NAME_SIZE": NAME_SIZE,
    }
