"""The market's translator: a program proven on one ISA, written for a board of the
other (evolution/lift.py: lifted to the semantic core, lowered for the board's ISA and
features, its copies taken out), with the proof artifact the adopting board checks.

What crosses ISAs this way is the formulation, not the code: rv64's `cpopw` for p23 is a
popcount, which Haswell lowers to `popcnt`; x86's `mul esi` for p25 is a 32-bit high
product, which riscv64 lowers to a multiply and a shift, where its own lowering of the
library's p25 adds partial products.  A translation is never trusted: the board checks
its artifact with Z3 and runs its code, as it would another board's program.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from evolution.costmodel import fallback
from evolution.lift import translate
from evolution.program import ParseError, assemble, parse, text
from evolution.registry import ISAS
from market.market import RoutineInfo, Translation
from market.proofs import features_used, make_artifact
from market.state import AgentState
from sem.ir import Routine


@dataclass
class LiftTranslator:
    specs: Mapping[str, Routine]  # by routine ID

    def translate(self, agent: AgentState, routine: RoutineInfo, isa: str,
                  source: str) -> Translation | None:
        started = time.process_time()
        spec, source_isa, target = self.specs[routine.id], ISAS[isa], ISAS[agent.isa]
        try:
            program = parse(source_isa, source)
        except ParseError:  # a ledger's text we wrote ourselves: not expected
            return None
        found = translate(source_isa, spec, program, target, agent.features)
        if found is None:
            return None
        p = found.program  # its cost as the engine's searches count theirs
        return Translation(p.instructions, fallback(target).cost(p), text(target, p),
                           assemble(target, p, agent.features), features_used(target, p),
                           make_artifact(target, spec, p),
                           round((time.process_time() - started) * 1000))
