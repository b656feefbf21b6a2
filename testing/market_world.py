"""A synthetic world for the market's tests: routines whose shortest programs are known,
strategies whose chance of progress per CPU-second is known, and a search that is a
coin per second, seeded by the experiment's identity (so a rerun gives the same claim).
A program below a routine's base optimum needs the routine's feature, as a BMI or Zbb
instruction would.  The verifier checks what the synthetic artifact says and whether the
board has the features the code uses; the market under test never sees the truth.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from market import records as R
from market.experiment import Experiment
from market.market import AdoptionCheck, Claim, RoutineInfo
from market.state import AgentState, Best


@dataclass(frozen=True)
class Truth:
    start: int  # the program every search starts from
    base: int  # the shortest program without the feature
    best: int  # the shortest program with it
    feature: str = "f"
    overrun_ms: int = 0  # CPU every search of it uses beyond its budget (proofs, say)


def routine_id(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


@dataclass
class World:
    truths: dict[str, Truth]  # by routine ID
    quality: dict[tuple[str, str], float]  # (strategy, class) -> chance of a step per second
    seed: int = 0  # salts every search's coin: another world with the same truths
    runs: list[str] = field(default_factory=list)  # identities, in the order they ran

    begun: list[int | None] = field(default_factory=list)  # each run's begin, in order
    handed: list[int] = field(default_factory=list)  # each run's known counterexamples

    def run(self, agent: AgentState, routine: RoutineInfo, experiment: Experiment,
            begin: Best | None = None, vectors: tuple[dict, ...] = ()) -> Claim:
        """A search from the routine's start, or from `begin` when it is shorter (a
        synthetic search has no test vectors: `vectors` is only counted, in `handed`)."""
        self.handed.append(len(vectors))
        self.runs.append(experiment.identity)
        self.begun.append(begin.instructions if begin else None)
        truth = self.truths[routine.id]
        rng = random.Random(f"{self.seed}:{experiment.identity}")
        floor = truth.best if truth.feature in experiment.features else truth.base
        p = self.quality.get((experiment.strategy, routine.klass), 0.0)
        start = min(truth.start, begin.instructions) if begin else truth.start
        current, reached = start, 0
        for second in range(1, int(experiment.cpu_seconds) + 1):
            if current > floor and rng.random() < p:
                current, reached = current - 1, second * 1000
        return claim_for(routine, truth, current, experiment.cpu_ms + truth.overrun_ms, reached,
                         start=start)


def claim_for(routine: RoutineInfo, truth: Truth, instructions: int, cpu_ms: int,
              reached_ms: int, sound: bool = True, start: int | None = None) -> Claim:
    """`start`: the program the search began from, when not the routine's own start (a
    board's best so far)."""
    text = f"{routine.name} in {instructions}"
    used = frozenset({truth.feature}) if instructions < truth.base else frozenset()
    artifact = {"routine": routine.id, "text": text, "instructions": instructions,
                "sound": sound, "features": sorted(used)}
    begun = start is not None and start < truth.start
    start = truth.start if start is None else start
    return Claim(instructions, float(instructions), text, _code(text), used, artifact, cpu_ms,
                 reached_ms, start, float(start),
                 f"{routine.name} in {start}" if begun else f"{routine.name} start",
                 ({"args": [instructions]},) if instructions < start else (), start_begun=begun)


def _code(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()[:8]


@dataclass
class SyntheticVerifier:
    """Accepts a sound artifact whose code is the code of its text, on a board that has
    the features the code uses; counts what it was asked (agent keys)."""
    cpu_ms: int = 50
    asked: list[str] = field(default_factory=list)

    def check(self, agent: AgentState, routine: RoutineInfo, artifact: Mapping,
              code: bytes) -> AdoptionCheck:
        self.asked.append(agent.key)
        if not artifact.get("sound"):
            return AdoptionCheck(False, "synthetic: the proof does not check", self.cpu_ms)
        if _code(artifact["text"]) != code:
            return AdoptionCheck(False, "synthetic: the code is not the proven program",
                                 self.cpu_ms)
        if not set(artifact["features"]) <= agent.features:
            return AdoptionCheck(False, "synthetic: the board lacks a feature the code uses",
                         self.cpu_ms)
        return AdoptionCheck(True, "synthetic: checked", self.cpu_ms)


def scripted_search(task) -> Claim:
    """A search for the worker's tests (market/worker.py runs it by name in its process):
    it burns `task.cpu_seconds` of CPU, then does what its strategy names: "die" (SIGKILL
    itself, as a crash in native code would end it), "exit" (os._exit(3)), "spin" (burn on
    until stopped), or anything else: return a claim of 3 instructions."""
    import os
    import signal
    import time

    started = time.process_time()
    while time.process_time() - started < task.cpu_seconds or task.strategy == "spin":
        pass
    if task.strategy == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    if task.strategy == "exit":
        os._exit(3)
    text = "nop\nnop\nret"
    return Claim(3, 3.0, text, _code(text), frozenset(), {"sound": True, "text": text,
                                                          "features": []},
                 round(task.cpu_seconds * 1000), 0, None, 0.0)


def ledger_outcomes(entries: Iterable[bytes | str]) -> tuple[list[str], Counter]:
    """From a market's raw ledger entries: the identities accepted, in order, and how many
    results (a result or a refutation) each got."""
    accepted, settled = [], Counter()
    for raw in entries:
        record = json.loads(raw)
        if record.get("type") == R.ACCEPTED:
            accepted.append(record["id"])
        elif record.get("type") in (R.RESULT, R.REFUTED):
            settled[record["id"]] += 1
    return accepted, settled
