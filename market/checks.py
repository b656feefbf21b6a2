"""The market's verifier: a claim, or an adoption, is checked by the board that will use
the code, from the artifact alone (market/proofs.py: the query re-derived and decided by
Z3 here, not the claimant's verdict), then by running the code on that board's own
vectors (its guest when it is live, Unicorn otherwise; market/boards.py)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from market.boards import Seat
from market.market import AdoptionCheck, RoutineInfo
from market.proofs import check_artifact
from market.state import AgentState

VECTORS = 200  # vectors each board runs a claimed program on


@dataclass
class BoardVerifier:
    seats: Mapping[str, Seat]  # by agent key
    vectors: int = VECTORS

    def check(self, agent: AgentState, routine: RoutineInfo, artifact: Mapping,
              code: bytes) -> AdoptionCheck:
        started = time.process_time()
        if artifact.get("routine") != routine.id:
            proven = str(artifact.get("routine"))[:12]
            return AdoptionCheck(False, f"the artifact proves routine {proven}, not "
                                        f"{routine.name} ({routine.id[:12]})", 0)
        proof = check_artifact(artifact, code, agent.features)
        proof_ms = round((time.process_time() - started) * 1000)
        if not proof.ok:
            return AdoptionCheck(False, proof.detail, proof_ms)
        seat = self.seats[agent.key]
        wall = time.monotonic()
        # the board's own vectors: drawn with a seed of its own, not the claimant's
        run = seat.run_code(proof.routine, code, self.vectors, int(agent.key[:8], 16))
        run_ms = round((time.monotonic() - wall) * 1000)
        return AdoptionCheck(run.ok, f"{proof.detail}; {run.detail}", proof_ms + run_ms)
