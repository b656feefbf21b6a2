"""The boards of the evolution goals, as an ISA and the features found working there.

Until ISA discovery feeds them (the capability store), the features are those each
QEMU CPU model offers: qemu64 has none of BMI/LZCNT/POPCNT/ADX; Haswell has BMI1,
BMI2, LZCNT and POPCNT (not ADX, a Broadwell addition); riscv64's rv64 has M and
Zba/Zbb/Zbs, and `rv64,zba=false,zbb=false,zbc=false,zbs=false` only M.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MachineTarget:
    """An ISA, the features a board was found to have, and the forms of those it was seen
    to run otherwise than their semantics (QEMU 7.2's ctzw counts all 64 bits): the search
    never uses those."""

    name: str
    isa: str
    features: frozenset[str]
    avoid: frozenset[str] = frozenset()


TARGETS: dict[str, MachineTarget] = {t.name: t for t in (
    MachineTarget("x86-64 qemu64", "x86_64", frozenset()),
    MachineTarget("x86-64 Haswell", "x86_64", frozenset({"bmi1", "bmi2", "lzcnt", "popcnt"})),
    MachineTarget("riscv64 rv64 Zba/Zbb/Zbs", "riscv64", frozenset({"m", "zba", "zbb", "zbs"})),
    MachineTarget("riscv64 rv64 without Zb*", "riscv64", frozenset({"m"})),
)}
