"""The instruction sets evolution knows, by ISA name.  The one place that maps a name
to its tables; the arch layer will key this by its arch objects."""

from __future__ import annotations

from collections.abc import Callable

from evolution.isa import Isa
from evolution.isa_riscv64 import RISCV64
from evolution.isa_x86_64 import X86_64
from evolution.sortnet import NetworkTemplates, riscv64_templates, x86_64_templates

ISAS: dict[str, Isa] = {isa.name: isa for isa in (X86_64, RISCV64)}

# how each ISA writes a sorting network's compare-exchange, given a target's features
SORT_NETWORKS: dict[str, Callable[[frozenset[str]], NetworkTemplates]] = {
    "x86_64": x86_64_templates, "riscv64": riscv64_templates}


def isa_named(name: str) -> Isa:
    if name not in ISAS:
        raise ValueError(f"no instruction set {name!r}; choose one of {', '.join(ISAS)}")
    return ISAS[name]
