"""How an x86-64 guest leaves QEMU: the `isa-debug-exit` device (QEMU
hw/misc/debugexit.c) turns a write of V into QEMU exit status (V << 1) | 1, so
neither value can be mistaken for QEMU's own 0 (normal) or 1 (error)."""

from __future__ import annotations

DEBUG_EXIT_PORT = 0xF4  # the iobase the board gives the device (qemu/boards.py)
DEBUG_EXIT_PASS = 0x10  # -> QEMU exit status 33
DEBUG_EXIT_FAIL = 0x11  # -> QEMU exit status 35


def debug_exit_status(value: int) -> int:
    """The QEMU process exit status produced by writing `value` to isa-debug-exit."""
    return (value << 1) | 1


def asm_constants() -> dict[str, int]:
    return {"DEBUG_EXIT_PORT": DEBUG_EXIT_PORT, "DEBUG_EXIT_PASS": DEBUG_EXIT_PASS,
            "DEBUG_EXIT_FAIL": DEBUG_EXIT_FAIL}
