"""Lowering entry point by architecture name."""

from __future__ import annotations

from collections.abc import Callable

from sem.ir import Routine
from sem.lower_riscv import lower_riscv
from sem.lower_x86 import lower_x86
from sem.regalloc import Lowered

LOWERINGS: dict[str, Callable[[Routine], Lowered]] = {"x86_64": lower_x86, "riscv64": lower_riscv}


def lower_for(arch: str) -> Callable[[Routine], Lowered]:
    if arch not in LOWERINGS:
        raise ValueError(f"no lowering for {arch!r}; choose one of {', '.join(LOWERINGS)}")
    return LOWERINGS[arch]
