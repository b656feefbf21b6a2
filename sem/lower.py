"""Lowering entry point by architecture."""

from __future__ import annotations

from collections.abc import Callable

from arch import RISCV64, X86_64, Arch
from sem.lower_riscv import lower_riscv
from sem.lower_x86 import lower_x86
from sem.regalloc import Lowered

# each takes the routine and, optionally, the ISA extensions the machine has beyond the
# baseline the lowering assumes
LOWERINGS: dict[Arch, Callable[..., Lowered]] = {X86_64: lower_x86, RISCV64: lower_riscv}


def lower_for(arch: Arch) -> Callable[..., Lowered]:
    return LOWERINGS[arch]
