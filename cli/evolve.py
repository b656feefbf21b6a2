"""What `./run evolve` does: boot the board, find what it has, evolve a routine for it
with a live display, measure the result beside today's lowering and gcc -O3 in the
board's own guest, keep it in the semantic store, write `metaos.evolution/1` and a plot.

    features   discovery's claims (CPUID flags; misa and `riscv,isa`), each feature's
               instructions then run on the board as probes (evolution/board_features.py):
               the search may use what the board claims and runs as its semantics say
    timing     every register form the board may use, timed on it by the timing family
               (latency and throughput in cycles of an `add` chain timed beside each;
               evolution/timing_model.py): the search's performance model; reused from
               the capability store on the next session of the same fingerprint and
               accelerator
    search     evolution.evolve (starts proven, local search, STOKE chains), Z3 at full
               width for every candidate it keeps; Ctrl-C keeps the best proven so far
    guest      the shortest, the other proven programs the search kept with no more
               instructions than gcc's, the lowering (`sem run`'s implementation) and
               gcc's code timed by a loop of calls on the same vectors in one campaign
               (evolution/fitness.py); the best is, of the proven ones, the nearest to
               gcc's code on its worse figure (fitness.nearest; without gcc's figures the
               fastest, the shortest unless another is faster beyond the quartiles:
               fitness.fastest), and gcc's code (proven by Z3 too, path by path
               where it branches) unless an evolved one is lower in cycles per call and
               not higher in latency, by 5% of the median and a Mann-Whitney U test
               at 1% (fitness.against), and again beside it on fresh vectors
               (fitness.replicate); the best and gcc's code timed again on fresh
               vectors (fitness.confirm): the figures reported, each answer checked
               against the interpreter; the median cycles per call, loop overhead
               subtracted, of that second timing recorded per implementation and
               fingerprint (metric "cycles per call"), tagged with the accelerator (under
               TCG they describe QEMU, under KVM the silicon's time-stamp counter)
    store      the proven program becomes an implementation of the routine, with its
               evidence (the features it needs, Z3's verdict, the vectors)

`--auto N` evolves the N routines with the most recorded runs on this board first
(evolution/usage.py), the budget split evenly between them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from cli import terminal
from cli.errors import Failure, Interrupted, UsageError

if TYPE_CHECKING:
    from evolution.board_features import FeatureFinding
    from evolution.evolve import Evolved, Kept, Progress
    from evolution.fitness import FitnessRun
    from evolution.gcc import ProvenCompiled
    from evolution.isa import Isa
    from evolution.layout import Padded
    from evolution.program import MachineProgram
    from evolution.proof import Proof
    from evolution.timing_model import MeasuredModel
    from link.qemu_link import QemuLink
    from probes.campaign import Campaign
    from qemu.boards import Board
    from sem.store import SemStore
    from stores.fingerprint import Fingerprint

EVOLUTION = "metaos.evolution/1"
GUEST_VECTORS = 100
CYCLES_METRIC = "cycles per call"  # the performance history's name for fitness's figure
CYCLES_COUNTED = ("cycles per call, loop overhead subtracted (evolution/fitness.py): each"
                  " vector's inputs passed in turn, 16 rounds, less the same loop around an"
                  " empty function; latency: calls chained, each waiting for the one"
                  " before's result, less the same around the identity function; the"
                  " median over pairs of passes, *_spread the quartiles; under TCG QEMU's"
                  " counter, under KVM the silicon's time-stamp counter")


@dataclass(frozen=True)
class EvolveOptions:
    board: Board
    seconds: float  # the whole run's search budget (split between routines with --auto)
    ref: str | None = None
    auto: int | None = None  # evolve this many routines, most used on the board first
    seed: int = 0
    batches: int | None = None  # stop each search after this many chain batches
    workers: int = 1  # search processes after the starts are proven (the sorts' long runs)
    vectors: int = GUEST_VECTORS  # per code, in the guest
    from_gcc: bool = False  # gcc's code is a start too (STOKE's optimisation mode)
    db: str | None = None


@dataclass
class EvolutionBoard:
    """A booted board that stays, and what discovery and the feature probes found."""

    link: QemuLink
    isa: Isa
    fingerprint: Fingerprint
    accelerator: str
    finding: FeatureFinding
    campaign: Campaign
    cpu: str
    timing: MeasuredModel

    def close(self) -> None:
        self.link.close()


def open_session(board: Board, seed: int = 0, db: str | None = None) -> EvolutionBoard:
    """Boot `board` (it stays after discovery), fingerprint it, find its features and time
    its forms; the probes' results go to the capability store of `db` under the fingerprint
    (families evolution-semantics and timing: `./run capabilities` counts them, Unicorn's
    disagreements with the board are its divergences).  Timings already stored for this
    fingerprint and accelerator (feature cases and timings) are reused, not probed
    again."""
    from discovery.fingerprint import fingerprint_of
    from discovery.inventory import Inventory
    from evolution.board_features import claimed_features, find_features
    from evolution.registry import isa_named
    from evolution.timing_model import campaign_runner, measure_model
    from kernel.guest import build_guest
    from link.qemu_link import QemuLink
    from probes.campaign import Campaign
    from probes.run import POLICY
    from probes.store import CapabilityStore, StoredResult

    link = QemuLink(board, build_guest(board.arch))
    try:
        inventory = Inventory.from_boot(link.first_boot)
        fingerprint = fingerprint_of(inventory, board.name)
        isa = isa_named(board.arch.name)
        # one campaign for the whole boot: the guest caches answers by run id
        campaign = Campaign(link, POLICY)
        capabilities = CapabilityStore(db)

        def file(results: list) -> None:
            capabilities.record_batch(fingerprint, link.accelerator, [
                StoredResult(r.probe, r.observation, r.prediction) for r in results])

        def stored(probes: list) -> dict:
            return capabilities.observations(fingerprint, link.accelerator,
                                             [p.content_hash for p in probes])

        try:
            finding = find_features(isa, claimed_features(isa, inventory), link, campaign,
                                    seed, file, stored)
            timing = measure_model(isa, finding.found, f"{fingerprint.label} ({board.cpu},"
                                   f" {link.accelerator})", campaign_runner(campaign, file),
                                   stored)
        finally:
            capabilities.close()
    except BaseException:
        link.close()
        raise
    return EvolutionBoard(link, isa, fingerprint, link.accelerator, finding, campaign, board.cpu,
                          timing)


# -- one routine ---------------------------------------------------------------------------

@dataclass
class RoutineEvolved:
    """One routine's evolution, as the document and the table show it."""

    document: dict
    interrupted: bool
    stored: int  # the implementation's id in the semantic store


def _vector_json(v) -> dict:
    return {"args": list(v.args), "registers": list(v.registers), "flags": list(v.flags),
            "undefined": v.undefined, "memory": v.memory.hex()}


def _library(store: SemStore) -> list[str]:
    """Store the starter library (p01-p25, sort3-5) so its names resolve; their IDs."""
    from sem.library import FILES
    from sem.loader import load_file

    ids = []
    for path in FILES:
        found = load_file(path)
        ids += store.add_many([(r, (name,)) for r, name in found])
    return ids


def evolve_routine(store: SemStore, session: EvolutionBoard, rid: str, budget_s: float,
                   options: EvolveOptions,
                   on_batch: Callable[[Progress], None] | None = None) -> RoutineEvolved:
    """Evolve routine `rid` for the session's board; measure, store, describe it."""
    from evolution.evolve import NoProgram, evolve
    from evolution.fitness import choose, confirm, replicate, run_in_guest
    from evolution.gcc import GccCodeUnusable, GccUnavailable, as_start, compile_c, proven
    from evolution.layout import PADDED, with_padding
    from evolution.program import assemble, text
    from evolution.targets import MachineTarget
    from evolution.timing_model import model_json
    from market.proofs import features_used
    from sem.implement import implement
    from sem.store import PROVEN, ImplementationEvidence
    from sem.views.asm import disassemble

    isa, arch = session.isa, session.isa.arch
    spec = store.routine(rid)
    name = _name(store, rid)
    features = session.finding.found
    # today's lowering (what `sem run` ran before any evolution), kept as an implementation
    # as `sem run` keeps it (the same code: the same implementation)
    lowered = implement(spec, arch)
    baseline = store.add_implementation(rid, arch, lowered.code, lowered.assembly,
                                        lowered.established)
    gcc, gcc_note = None, ""
    try:
        gcc = compile_c(isa, spec, features)
    except (GccUnavailable, GccCodeUnusable) as error:
        gcc_note = str(error)
    target = MachineTarget(f"{session.fingerprint.board}:{session.cpu}", isa.name, features,
                           session.finding.avoid)
    try:
        gcc_start = as_start(isa, gcc) if options.from_gcc and gcc is not None else None
        result: Evolved = evolve(spec, target, budget_s=budget_s, batches=options.batches,
                                 seed=options.seed, on_batch=on_batch,
                                 model=session.timing.model, workers=options.workers,
                                 extra_starts=[gcc_start] if gcc_start is not None else [])
    except NoProgram as error:
        raise Failure(str(error)) from None
    codes = {"best": result.code, "baseline": lowered.code}
    if gcc is not None:
        codes["gcc"] = gcc.code
    others = kept_candidates(result, gcc.instructions if gcc is not None else None)
    for i, k in enumerate(others):
        codes[f"kept {i}"] = assemble(isa, k.program, features)
    counts = {"best": result.instructions,
              **{f"kept {i}": k.instructions for i, k in enumerate(others)}}
    # on silicon, each also with its return 32 bytes in (evolution/layout.py), within gcc's
    twins = with_padding(isa, codes, counts, gcc.instructions) \
        if session.accelerator == "kvm" and gcc is not None else {}
    runs = run_in_guest(session.link, isa, spec, codes, options.vectors, options.seed + 2,
                        session.campaign)
    where = f"{session.fingerprint.label} ({session.accelerator})"
    if not runs["best"].ok:
        raise Failure(f"the proven program for {name} disagrees with the interpreter on "
                      f"{runs['best'].vectors - runs['best'].agreed} of {options.vectors} "
                      f"vectors on {where} ({runs['best'].detail}); nothing stored: report "
                      "this line")
    # gcc's code, proven too, is a candidate: kept where no evolved one is measured faster
    reference = proven(isa, spec, gcc) if gcc is not None and runs["gcc"].ok else None
    choice = choose(runs, counts, "best", "gcc" if gcc is not None else None,
                    proven=reference is not None)
    again = None  # an evolved code chosen over gcc's proven one must beat it again
    if reference is not None and choice.name != "gcc":
        choice, again = replicate(session.link, isa, spec, choice, codes, "gcc",
                                  options.vectors, options.seed + 4, session.campaign)
    chosen = Chosen.of(isa, spec, result, others, choice.name, codes, options.seed + 1, twins,
                       reference)
    # the figures reported: the chosen code and gcc's timed again on fresh vectors
    ours_run, gcc_again = confirm(session.link, isa, spec, chosen.code,
                                  gcc.code if gcc is not None else None, options.vectors,
                                  options.seed + 3, session.campaign)
    if not ours_run.ok:
        raise Failure(f"the chosen program for {name} disagrees with the interpreter on "
                      f"{ours_run.vectors - ours_run.agreed} of {options.vectors} vectors on "
                      f"{where} when timed again ({ours_run.detail}); nothing stored: report "
                      "this line")
    needs = features_used(isa, chosen.program)
    verdict = (f"z3: equivalent at full width under the {isa.name} ABI ({chosen.proof.detail});"
               f" {chosen.unicorn}; guest {where}: {runs[choice.name].agreed}/{options.vectors}"
               " vectors agree")
    impl = store.add_implementation(rid, arch, chosen.code, chosen.text,
                                    f"{PROVEN}: evolved ({chosen.start} start), {verdict}",
                                    features=needs)
    vectors = {"training": [_vector_json(v) for v in result.vectors],
               "counterexamples": [_vector_json(v) for v in result.counterexamples],
               "unicorn": {"count": 1000, "seed": options.seed + 1},
               "guest": {"count": options.vectors, "seed": options.seed + 2},
               "guest_again": {"count": options.vectors, "seed": options.seed + 3},
               "replication": {"count": options.vectors, "seed": options.seed + 4}
               if again is not None else None}
    store.add_evidence(impl, ImplementationEvidence(verdict, json.dumps(vectors)))
    for run, impl_id in ((ours_run, impl), (runs["baseline"], baseline)):
        if run.ok and run.cycles:
            store.record_performance(impl_id, session.fingerprint, CYCLES_METRIC,
                                     run.median_cycles, len(run.cycles.per_pair),
                                     session.accelerator)
    gcc_run = gcc_again if gcc_again is not None and runs["gcc"].ok else runs.get("gcc")
    if gcc_run is not None and not gcc_run.ok:
        gcc_note = f"gcc's code disagrees with the interpreter in the guest: {gcc_run.detail}"
    document = {
        "schema": EVOLUTION, "routine": rid, "name": name,
        "target": {"arch": arch.name, "cpu": session.cpu,
                   "fingerprint": session.fingerprint.digest.hex(), "features": sorted(needs),
                   "found": sorted(features), "claimed": sorted(session.finding.claimed),
                   "avoided": sorted(session.finding.avoid),
                   "accelerator": session.accelerator},
        "baseline": {"instructions": len(disassemble(arch, lowered.code)),
                     **_cycles(runs["baseline"])},
        "gcc": {"instructions": gcc.instructions if gcc else None,
                "code": gcc.code.hex() if gcc else None,
                **_cycles(gcc_run),
                "flags": list(gcc.flags) if gcc else None, "version": gcc.version if gcc else None,
                "asm": gcc.asm if gcc else None, "note": gcc_note or None},
        "best": {"code": chosen.code.hex(), "instructions": chosen.instructions,
                 "asm": chosen.text, "proof": "z3", **_cycles(ours_run),
                 "implementation": impl, "start": chosen.start, "unicorn": chosen.unicorn},
        # the search's shortest proven program, which `best` is unless the guest found one
        # of the kept programs, or gcc's, faster (choice)
        "shortest": {"code": result.code.hex(), "instructions": result.instructions,
                     "asm": result.text, "proof": "z3", **_cycles(runs["best"]),
                     "start": result.start},
        "choice": {"chosen": _chosen_kind(choice.name, twins),
                   "figure": choice.figure, "reason": choice.reason,
                   # what the choice saw; `best` and `gcc` above are the second timing
                   "first_timing": {"best": _cycles(runs[choice.name], pairs=True),
                                    "gcc": _cycles(runs.get("gcc"), pairs=True),
                                    "evolved": _cycles(runs[choice.evolved], pairs=True)
                                    if choice.evolved is not None else None},
                   # an evolved code that beat gcc's there, timed beside it again
                   "replication": {"evolved": _cycles(again["evolved"], pairs=True),
                                   "gcc": _cycles(again["reference"], pairs=True)}
                   if again is not None else None,
                   "candidates": [{"instructions": k.instructions, "asm": text(isa, k.program),
                                   "found_by": k.origin, **_cycles(runs[f"kept {i}"])}
                                  for i, k in enumerate(others)],
                   # each code above with its return 32 bytes in (KVM: evolution/layout.py)
                   "padded": [{"of": name.removesuffix(PADDED), "code": twin.code.hex(),
                               "instructions": twin.instructions, **_cycles(runs[name])}
                              for name, twin in twins.items()]},
        "performance_model": model_json(session.timing, session.accelerator),
        "history": [{"seconds": round(t, 3), "cost": c, "instructions": n}
                    for t, c, n in result.history],
        "candidates_per_second": round(result.evaluations / max(result.seconds, 1e-9)),
        "evaluations": result.evaluations, "seconds": round(result.seconds, 3),
        "seed": options.seed, "interrupted": result.interrupted,
        "cycles_counted": CYCLES_COUNTED,
    }
    return RoutineEvolved(document, result.interrupted, impl)


def kept_candidates(result: Evolved, gcc_instructions: int | None) -> list[Kept]:
    """The kept proven programs the guest times beside the shortest: none where there is
    no gcc code, else those with no more instructions than gcc's (the instruction goal
    holds whichever is chosen)."""
    if gcc_instructions is None:
        return []
    return [k for k in result.kept
            if k.program != result.program and k.instructions <= gcc_instructions]


def _chosen_kind(name: str, twins: dict) -> str:
    kind = "gcc" if name == "gcc" else "shortest" if name.startswith("best") else "kept"
    return kind + (" padded" if name in twins else "")


@dataclass(frozen=True)
class Chosen:
    """The proven program `best` describes: the shortest, or a kept one the guest found
    faster, or either padded (evolution/layout.py), or gcc's code (`reference`, proven)
    where none of ours was faster (fitness.against)."""

    program: MachineProgram
    code: bytes
    text: str
    proof: Proof
    start: str  # the start the shortest came from, the step that found the kept one, or gcc
    unicorn: str
    instructions: int  # the code's, its padding's included

    @classmethod
    def of(cls, isa: Isa, spec, result: Evolved, others: list[Kept], name: str,
           codes: dict[str, bytes], seed: int, twins: dict[str, Padded],
           reference: ProvenCompiled | None = None) -> Chosen:
        from evolution.check import unicorn_verdict
        from evolution.evolve import CHECK_VECTORS
        from evolution.layout import PADDED
        from evolution.program import text
        from evolution.testset import machine_vectors

        base = name.removesuffix(PADDED) if name in twins else name
        if base == "gcc" and reference is not None:
            # where it branches, gcc's own listing: the program is its instructions but the jumps
            program, proof = reference.program, reference.proof
            text_ = reference.compiled.asm if reference.branching else text(isa, program)
            start = "gcc -O3's code: no evolved program was faster in the guest"
            code, unicorn, count = reference.compiled.code, None, reference.compiled.instructions
        elif base == "best":
            program, text_, proof, start = result.program, result.text, result.proof, \
                result.start
            code, unicorn, count = result.code, result.unicorn, result.instructions
        else:
            k = others[int(base.split()[1])]
            program, text_, proof, start = k.program, text(isa, k.program), k.proof, k.origin
            code, unicorn, count = codes[base], None, k.instructions
        if name in twins:
            twin = twins[name]
            code, text_, start = twin.code, twin.text(isa, text_), f"{start}, padded"
            unicorn, count = None, twin.instructions
        if unicorn is None:  # bytes the search's own check did not run: checked here, once
            unicorn = unicorn_verdict(isa, spec, program, code,
                                      machine_vectors(isa, spec, CHECK_VECTORS, seed))
        return cls(program, code, text_, proof, start, unicorn, count)


def _cycles(run: FitnessRun | None, pairs: bool = False) -> dict:
    """A code's figure for the document: cycles per call and their spread, None where
    the code did not run right or did not return its counts; with `pairs`, every pair
    of passes' figure too (what fitness.against's test reads)."""
    good = run is not None and run.ok
    cycles = run.cycles if good else None
    latency = run.latency if good else None
    out = {"cycles": cycles.median if cycles else None,
           "cycles_spread": list(cycles.spread) if cycles else None,
           "latency": latency.median if latency else None,
           "latency_spread": list(latency.spread) if latency else None}
    if pairs:
        out |= {"cycles_pairs": list(cycles.per_pair) if cycles else None,
                "latency_pairs": list(latency.per_pair) if latency else None}
    return out


Plan = list[tuple[str, str, int]]  # (routine ID, name, runs recorded on the board)


def run_evolution(options: EvolveOptions,
                  on_ready: Callable[[EvolutionBoard, Plan], None] | None = None,
                  on_start: Callable[[str, float], None] | None = None,
                  on_batch: Callable[[Progress], None] | None = None,
                  on_done: Callable[[RoutineEvolved], None] | None = None,
                  on_compile: Callable[[str], None] | None = None) -> list[RoutineEvolved]:
    """Boot, find the features, evolve the chosen routines; the documents, in order.
    `on_compile`: told the ISA whose search kernels are compiled before the first search
    (their first use on this machine: minutes)."""
    from evolution.usage import by_recorded_runs
    from evolution.warm import compiled, warm
    from sem.store import SemStore
    from stores.db import connect

    store = SemStore(connect(options.db))
    library = _library(store)
    rid = store.resolve(options.ref) if options.ref else None  # before booting: a typo is quick
    session = open_session(options.board, options.seed, options.db)
    outcomes: list[RoutineEvolved] = []
    try:
        if options.auto:
            chosen = by_recorded_runs(store, session.fingerprint, library, options.auto)
        else:
            chosen = [(rid, store.recorded_runs(session.fingerprint).get(rid, 0))]
        plan = [(r, _name(store, r), runs) for r, runs in chosen]
        if on_ready is not None:
            on_ready(session, plan)
        if not compiled(session.isa.name):  # minutes, not to come out of a search's budget
            if on_compile is not None:      # (nor compiled by each of its --workers)
                on_compile(session.isa.name)
            warm(session.isa.name)
        share = options.seconds / len(plan)
        for r, name, _ in plan:
            if on_start is not None:
                on_start(name, share)
            outcome = evolve_routine(store, session, r, share, options, on_batch)
            outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)
            if outcome.interrupted:
                break
    finally:
        session.close()
    return outcomes


def _name(store: SemStore, rid: str) -> str:
    names = store.names(rid)
    return names[0].name if names else rid[:12]


# -- the live display ------------------------------------------------------------------------

@dataclass
class _Display:
    board: str = "booting the board, finding its features"
    plan: Plan = field(default_factory=list)
    current: str = ""
    budget: float = 0.0
    progress: Progress | None = None
    rate: float = 0.0
    _last: tuple[float, int] = (0.0, 0)
    done: list[dict] = field(default_factory=list)
    workers: int = 1
    note: str = ""  # shown until the first search starts

    def batch(self, p: Progress) -> None:
        t, n = self._last
        if p.seconds > t + 0.5:  # candidates/s over the last half second or more
            self.rate = (p.evaluations - n) / (p.seconds - t)
            self._last = (p.seconds, p.evaluations)
        self.progress = p

    def start(self, name: str, budget: float) -> None:
        self.current, self.budget, self.progress, self.note = name, budget, None, ""
        self._last, self.rate = (0.0, 0), 0.0

    def render(self) -> Group:
        parts = [Text(self.board)]
        if self.note:
            parts.append(Text(self.note))
        if self.plan and len(self.plan) > 1:
            parts.append(Text("order (most runs on this board first): " + ", ".join(
                f"{n} ({runs})" for _, n, runs in self.plan)))
        if self.done:
            parts.append(results_table(self.done))
        p = self.progress
        if self.current and p is not None:
            best = "-" if p.instructions is None else f"{p.instructions} instructions"
            cost = "-" if p.cost is None else f"{p.cost:.1f}"
            parts.append(Text(
                f"{self.current}: {p.phase}, {p.seconds:.1f} of {self.budget:.0f} s; best {best}"
                f" (cost {cost}); proofs tried {p.proofs} ({p.proven} proven, "
                f"{p.counterexamples} counterexamples); {p.evaluations:,} candidates, "
                f"{self.rate:,.0f}/s"))
            if self.workers > 1 and p.phase == "proving the starts":
                parts.append(Text(f"then {self.workers} search processes: their progress"
                                  " shows when they end"))
        elif self.current:
            parts.append(Text(f"{self.current}: compiling gcc's code, preparing the search"))
        return Group(*parts)


def results_table(documents: list[dict]) -> Table:
    """Per routine: instructions and median guest cycles, ours / gcc -O3 / the lowering."""
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("routine", "instructions ours/gcc/low", "cycles ours/gcc/low",
                   "latency ours/gcc/low", "features", "cand/s", "s"):
        table.add_column(column, justify="left" if column in ("routine", "features") else "right")

    def n(value) -> str:
        return "-" if value is None else f"{round(value, 2):g}"

    for d in documents:
        ours, gcc, low = d["best"], d["gcc"], d["baseline"]
        table.add_row(d["name"], f"{n(ours['instructions'])}/{n(gcc['instructions'])}/"
                                 f"{n(low['instructions'])}",
                      f"{n(ours['cycles'])}/{n(gcc['cycles'])}/{n(low['cycles'])}",
                      f"{n(ours['latency'])}/{n(gcc['latency'])}/{n(low['latency'])}",
                      ",".join(d["target"]["features"]) or "-",
                      f"{d['candidates_per_second']:,}", f"{d['seconds']:.0f}")
    return table


def _board_line(session: EvolutionBoard) -> str:
    f = session.finding
    line = (f"{session.isa.name} {session.cpu} on {session.fingerprint.label} "
            f"({session.accelerator}): features found {', '.join(sorted(f.found)) or 'none'} "
            f"(claimed {', '.join(sorted(f.claimed)) or 'none'}; {f.probes} instruction probes "
            f"run on the board, {f.reused} of them earlier and taken from the store)")
    if f.claimed_failing:
        line += f"; claimed but failing there: {', '.join(sorted(f.claimed_failing))}"
    if f.avoid:
        line += (f"; instructions it runs otherwise than their semantics (avoided): "
                 f"{', '.join(sorted(f.avoid))}")
    if f.unclaimed_working:
        line += f"; working but not claimed (not used): {', '.join(sorted(f.unclaimed_working))}"
    t = session.timing
    line += (f"; performance model: {t.measured} forms timed on the board"
             f" ({t.reused} of {t.probes} timing probes reused from the store),"
             f" {len(t.unmeasured)} from the table")
    return line


def evolve_command(options: EvolveOptions, json_path: str | None = None,
                   plot_path: str | None = None, console: Console | None = None) -> None:
    """Run with a live display; the JSON and plot at the end (what Ctrl-C kept included)."""
    if options.ref is None and not options.auto:
        raise UsageError("give a routine (--ref p10) or --auto")
    if options.ref is not None:  # a routine that is not there ends the task before the boot
        from sem.store import SemStore
        from stores.db import connect

        store = SemStore(connect(options.db))
        _library(store)
        store.resolve(options.ref)
    console = console or terminal.console()
    display = _Display(workers=options.workers)
    live = terminal.TaskLive(console=console, refresh_per_second=4, transient=False,
                             get_renderable=display.render)

    def ready(session: EvolutionBoard, plan) -> None:
        display.board, display.plan = _board_line(session), plan

    def compiling(isa: str) -> None:
        display.note = (f"compiling the {isa} search kernels first: their first use on this"
                        " machine (x86_64's takes about 6 minutes, riscv64's 1); numba keeps"
                        " them for the next runs")

    started = time.monotonic()
    try:
        with live:
            outcomes = run_evolution(options, ready, display.start, display.batch,
                                     lambda o: display.done.append(o.document), compiling)
    except KeyboardInterrupt:
        raise Interrupted("routines finished before are stored; a search stopped while its "
                          "board booted or its starts were proven keeps nothing") from None
    documents = [o.document for o in outcomes]
    console.print()
    for o in outcomes:
        d = o.document
        console.print(f"{d['name']}: {d['best']['instructions']} instructions (gcc "
                      f"{d['gcc']['instructions'] if d['gcc']['instructions'] is not None else '-'}"
                      f", lowering {d['baseline']['instructions']}), proven by Z3, stored as "
                      f"implementation #{o.stored}" + (" (interrupted: the best proven so far)"
                                                       if o.interrupted else ""),
                      highlight=False, markup=False)
        console.print(d["best"]["asm"], highlight=False, markup=False)
        choice = d["choice"]
        if choice["chosen"] != "shortest":
            console.print(f"chosen in the guest over the shortest ({d['shortest']['instructions']}"
                          f" instructions): {choice['reason']}", highlight=False, markup=False)
        elif choice["candidates"]:
            console.print(f"{len(choice['candidates'])} other proven program(s) timed beside it:"
                          f" {choice['reason']}", highlight=False, markup=False)
        if d["gcc"]["note"]:
            console.print(f"gcc: {d['gcc']['note']}", highlight=False, markup=False)
    from probes.summary import accelerator_meaning

    accelerator = documents[0]["target"]["accelerator"] if documents else "tcg"
    console.print(f"cycles: {CYCLES_COUNTED} ({accelerator_meaning(accelerator)})",
                  highlight=False, markup=False)
    console.print(f"{time.monotonic() - started:.1f} s in all", highlight=False, markup=False)
    if json_path:
        Path(json_path).write_text(json.dumps(documents[0] if options.ref else documents,
                                              indent=2))
        console.print(f"written to {json_path} (schema {EVOLUTION})", highlight=False, markup=False)
    if plot_path:
        plot(documents, plot_path)
        console.print(f"plot written to {plot_path}", highlight=False, markup=False)


def plot(documents: list[dict], path: str) -> None:
    """Each routine's search over its seconds, in two panels side by side: the best
    program's instruction count with gcc -O3's as a line, and its cost under the
    performance model (which follows the count closely, so one axis would hide it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(len(documents), 2, figsize=(11, 3.2 * len(documents)),
                             squeeze=False)
    for (counts, costs), d in zip(axes, documents, strict=True):
        history = d["history"]
        end = max(d["seconds"], history[-1]["seconds"] if history else 0.0)
        times = [h["seconds"] for h in history] + [end]
        counts.step(times, [h["instructions"] for h in history] + [history[-1]["instructions"]],
                    where="post", color="tab:green", marker=".", label="best proven")
        if d["gcc"]["instructions"] is not None:
            counts.axhline(d["gcc"]["instructions"], color="tab:red", linestyle="--",
                           label=f"gcc -O3 ({d['gcc']['instructions']})")
        counts.yaxis.set_major_locator(MaxNLocator(integer=True))
        counts.set(xlabel="seconds of search", ylabel="instructions (with the return)",
                   title=f"{d['name']} on {d['target']['arch']} {d['target']['cpu']} "
                         f"({d['target']['accelerator']})")
        counts.legend(loc="upper right", fontsize=8)
        costs.step(times, [h["cost"] for h in history] + [history[-1]["cost"]], where="post",
                   marker=".")
        costs.set(xlabel="seconds of search", ylabel="cost (performance model)",
                  title="the best program's modelled cost")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
