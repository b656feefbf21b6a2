"""The fast evaluator, from Python: a program run over a TestSet by the ISA's
generated kernels (codegen.load), and the machine state it leaves."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from types import ModuleType

import numpy as np

from evolution import codegen
from evolution.isa import Isa
from evolution.program import MachineProgram, encode
from evolution.registry import isa_named


@cache
def kernels(isa_name: str) -> ModuleType:
    """The ISA's compiled kernels (compiled on first use, then read from numba's cache)."""
    return codegen.load(isa_named(isa_name))


@dataclass(frozen=True)
class FinalState:
    """Per vector (flattened over chunks): registers[register, vector], flags[flag, vector],
    memory[vector, byte], faulted[vector]."""

    registers: np.ndarray
    flags: np.ndarray
    memory: np.ndarray
    faulted: np.ndarray


def run(isa: Isa, program: MachineProgram, R0: np.ndarray, F0: np.ndarray, M0: np.ndarray,
        U: np.ndarray) -> FinalState:
    """Run `program` on initial states in the kernels' chunked layout."""
    rows = encode(isa, program, max(1, len(program.insns)))
    RO, FO, MO, FAULTS = kernels(isa.name).run_all(rows, rows.shape[0], R0, F0, M0, U)
    def flat(a: np.ndarray) -> np.ndarray:  # [chunk, x, lane] -> [x, vector]
        return np.concatenate(list(a), axis=-1)

    return FinalState(flat(RO), flat(FO), np.concatenate(list(MO), axis=0), FAULTS.reshape(-1))
