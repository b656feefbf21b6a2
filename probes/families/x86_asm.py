"""Assembling x86-64 probe templates with keystone, each result checked by capstone."""

from __future__ import annotations

from functools import cache

import capstone
import keystone


@cache
def _assembler() -> keystone.Ks:
    return keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64)


def assemble(source: str) -> bytes:
    """Machine code for `source` (`;`-separated); raises if capstone cannot read it back."""
    encoding, _ = _assembler().asm(source)
    code = bytes(encoding or b"")
    decoded = sum(i.size for i in capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64).disasm(code, 0))
    if not code or decoded != len(code):
        raise ValueError(f"keystone produced {code.hex()} for {source!r}, which capstone does not decode fully")
    return code
