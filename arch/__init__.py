"""The instruction-set architectures MetaOS knows, one object each (arch/isa.py).

    from arch import X86_64, RISCV64, ARCHES, by_name
"""

from __future__ import annotations

from arch.isa import Arch, UnknownArch
from arch.riscv64 import RISCV64
from arch.x86_64 import X86_64

ARCHES: tuple[Arch, ...] = (X86_64, RISCV64)
_BY_NAME = {a.name: a for a in ARCHES}
_BY_WIRE = {a.wire: a for a in ARCHES}

__all__ = ["ARCHES", "RISCV64", "X86_64", "Arch", "UnknownArch", "by_name", "by_wire", "names"]


def names() -> tuple[str, ...]:
    return tuple(_BY_NAME)


def by_name(name: str | Arch) -> Arch:
    """The architecture called `name` (an Arch passes through)."""
    if isinstance(name, Arch):
        return name
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownArch(f"unknown architecture {name!r}: choose one of {', '.join(_BY_NAME)}")\
            from None


def by_wire(code: int) -> Arch | None:
    """The architecture a HELLO frame names, or None for a code this host does not know."""
    return _BY_WIRE.get(code)
