"""Assembly for tests written in keystone's one-line style: `;` separates instructions
(in our x86 dialect `;` starts a comment, so each becomes a line of its own)."""

from __future__ import annotations

from arch import X86_64


def x86(source: str) -> bytes:
    """`source` (e.g. "mov eax, 1; ret") assembled for x86-64 (arch.X86_64.assemble)."""
    return X86_64.assemble(source.replace(";", "\n"))
