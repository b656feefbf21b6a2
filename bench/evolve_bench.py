"""Evolution figures: how fast candidates are evaluated, and what the search reaches
against gcc on each goal board.

    .venv/bin/python bench/evolve_bench.py [--budget S] [--sort-budget S] [--until-goal]
                                           [--target NAME ...] [--routine NAME ...] [--rate-only]
                                           [--seed N] [--from-gcc] [--accel kvm|tcg]

1. Evaluation rate, per ISA, one core: candidates the STOKE chain evaluates per second
   (each run on at least one chunk of 16 test vectors; a candidate whose wrongness already
   rules it out stops after that chunk), beside the same kernel with early stopping off
   (every vector, 32), beside the floor: the semantic core's interpreter evaluating the
   composed candidate on 16 vectors.  Then the enumeration's rate: instructions executed
   per second on its probe vectors, three instructions deep from a routine's arguments
   (4 million of them; a sequence right there runs on every vector).
2. Results: every routine of the goal table on every goal board, the instruction count
   reached (the return included, proven by Z3 and checked in Unicorn), the seconds it
   took, next to gcc -O3's count measured in the same run (evolution/gcc.py: the C view
   compiled for the board's features, the return and any alignment padding inside the
   function included; '-' where that gcc is not installed) and the goal: the issue's
   (gcc 12.2 -O3 on the clean reference C, from the anchors table, and AlphaDev's sorts
   plus the return on qemu64).  "met" compares with the goal and with gcc's measured count
   where there is one.
   With --from-gcc, gcc's code read back as a program (evolution/gcc.py as_start; not
   where it branches or calls out) is one more start, STOKE's optimisation mode: proven by
   Z3 like every start before the search uses it, so a result is never worse than gcc's
   where that proof finishes.  The "start" column says which start the result came from
   ("gcc -O3" for gcc's), and "found by" the step that found the result: a start's own
   name (that start unchanged), "enumeration" or "synthesis" (from nothing, whatever the
   start), "local search", "peephole" or "search" (from the best, so from that start).
3. With --accel kvm (or tcg): cycles in the guest, ours beside gcc's.  Per x86-64 goal
   board (qemu64 and Haswell CPU models; riscv64 has no KVM on this host), the board boots
   under that accelerator, its forms are timed by the timing family for the search's
   performance model (as `./run evolve` has it: cycles, evolution/timing_model.py), and
   every routine (p01-p25 unless --routine names others) is evolved for the goal's
   features (--budget each, --sort-budget a sort; with
   --until-goal stopping at gcc's count, else searching the whole budget, which keeps
   more proven programs to time: Haswell's p18 stopped at gcc's 7 had kept none as fast
   as gcc's, the whole budget kept a faster one of 5), then ours and gcc -O3's code are
   timed on the same 100 vectors in one campaign on it
   (evolution/fitness.py, probes/timed_calls.py): cycles per call, loop overhead
   subtracted (every vector's inputs passed in turn, 16 rounds, less the same loop around
   an empty function), and the latency (calls chained, each waiting for the previous
   result, less the same loop around the identity function), each the median over pairs
   of passes with the quartiles; under KVM the silicon's time-stamp counter (x86-64:
   constant rate, not the core clock), each code at the four 16-byte places of its cache
   line in turn and the pairs pooled, under TCG QEMU's.  "<=" says whether ours is at
   or below gcc's median: "yes", "noise" where it is above but the quartile ranges
   overlap, "no" where not, "same" where ours is gcc's code byte for byte (one code,
   so one probe: the campaign keys results by the probe's content, and both columns
   show its one timing).  Every answer is checked
   against the interpreter.  A board
   that cannot start under the accelerator is skipped with one line.
   "Ours" is chosen as `./run evolve` chooses (evolution/fitness.py choose): of the
   search's proven programs within gcc's count and the issue's (the shortest, and the
   programs the search kept: evolve.py Kept, earlier bests, starts, alternatives of less
   modelled latency; under KVM each also padded with its return 32 bytes in,
   evolution/layout.py), timed beside gcc's code in the same campaign, the one nearest
   to gcc's on its worse figure (nearest: the least larger excess over gcc's median,
   then the least sum; without gcc's figures the fastest, the shortest unless one is
   faster beyond the quartiles: fastest).  Then gcc's code, where Z3 proves it too
   (evolution/gcc.py proven, path by path where it branches), is chosen unless an
   evolved one is lower than it in cycles per call and not higher in latency, by 5% of
   the median and a one-sided Mann-Whitney U test at 1% (against, lower: of those that
   are, the fewest cycles per call; as STOKE returns the compiler's code it starts from
   when nothing beats it), and an evolved one that did is timed beside gcc's again on
   fresh vectors and must beat it again (replicate: one code's figure can move by 7%
   between timings).
   The figures in the table are a second timing of the chosen code and gcc's on fresh
   vectors (confirm): the first chose the least of several noisy figures, which leans
   low.  Where the shortest is not chosen, a
   line under it gives its and gcc's figures from the first timing and the reason; the
   count of a padded code counts its no-ops.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from evolution.codegen import CHUNK
from evolution.costmodel import fallback
from evolution.enumeration import Enumerator, probe_vectors
from evolution.evaluator import kernels
from evolution.evolve import NoProgram, evolve
from evolution.gcc import Compiled, GccCodeUnusable, as_start, compile_c
from evolution.gcc import available as gcc_available
from evolution.program import MachineProgram, encode
from evolution.registry import ISAS
from evolution.search import Chain, space
from evolution.semantics import compose
from evolution.starts import starts
from evolution.targets import TARGETS
from evolution.testset import TestSet, machine_vectors
from evolution.warm import compiled
from market.worker import compile_kernels
from sem import interp
from sem.interp import Memory
from sem.library import hackers_delight, sorting
from sem.vectors import DATA_ADDRESS

# The goals: gcc 12.2 -O3 on the clean reference C, instructions with the return (anchors
# file, "For evolution"); gcc on our C view is measured in the same run beside them.
_X86 = dict(p01=3, p02=3, p03=4, p04=3, p05=3, p06=3, p07=5, p08=4, p09=4, p10=16, p11=14,
            p12=14, p13=6, p14=5, p15=5, p16=4, p17=5, p18=8, p19=9, p20=11, p21=7, p22=7,
            p23=5, p24=18, p25=6, sort3=20, sort4=35, sort5=55)
_RV = dict(p01=4, p02=4, p03=4, p04=4, p05=4, p06=4, p07=5, p08=5, p09=4, p10=26, p11=23,
           p12=25, p13=4, p14=8, p15=9, p16=5, p17=6, p18=6, p19=9, p20=9, p21=8, p22=9,
           p23=9, p24=13, p25=7, sort3=27, sort4=39, sort5=66)
GOAL_GCC = {
    "x86-64 qemu64": _X86,
    # -march=haswell's sorts (14/21/31) are SSE4.1 pminsd/pmaxsd on vector registers,
    # outside the issue's working set (integer instructions, BMI, LZCNT, POPCNT, ADX) and
    # its Haswell row ("every routine <= gcc with the same features"): the bar for them is
    # gcc with the board's features, measured in the run, as for every routine
    "x86-64 Haswell": {**{k: v for k, v in _X86.items() if not k.startswith("sort")},
                       **dict(p01=2, p03=2, p04=2, p07=3, p08=3, p09=5, p10=6, p11=6,
                              p12=6, p16=5, p18=7, p19=7, p20=9, p22=4, p23=3)},
    "riscv64 rv64 Zba/Zbb/Zbs": {**_RV, **dict(p07=4, p08=4, p10=5, p11=4, p12=6, p14=5,
                                                p15=6, p16=2, p22=4, p23=2, p25=5, sort3=13,
                                                sort4=19, sort5=29)},
    "riscv64 rv64 without Zb*": _RV,
}
# the issue's goals where they are not gcc's count: AlphaDev's sorts plus the return
GOALS = {"x86-64 qemu64": dict(sort3=18, sort4=29, sort5=43)}
# The issue's counts that are a call into libgcc, not code (gcc 12 -O3 on
# __builtin_popcount/__builtin_parity: x86-64 `sub rsp; mov edi, edi; call __popcountdi2;
# add rsp; ret`, whose callee is 18 more instructions; rv64gc a frame around a call to
# __popcountdi2 or __paritydi2).  A call's length says nothing of the work, so there the bar
# is gcc's own code for our C view, measured in the same run.
CALLS = {"x86-64 qemu64": {"p23"}, "riscv64 rv64 without Zb*": {"p22", "p23"}}
ROUTINES = [*(getattr(hackers_delight, n) for n in hackers_delight.__all__),
            sorting.sort3, sorting.sort4, sorting.sort5]


def interpreter_rate(isa, spec, program, testset, seconds: float = 1.0) -> float:
    """Candidates/s when each is composed into IR and run by sem.interp on 16 vectors."""
    vectors = testset.vectors[:CHUNK]
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        comp = compose(isa, program)
        routine = comp.routine(comp.registers[isa.number(isa.abi.result)])
        for v in vectors:
            memory = Memory(DATA_ADDRESS, v.memory) if spec.uses_memory else None
            interp.run(routine, comp.inputs(list(v.registers), list(v.flags), v.undefined),
                       memory)
        done += 1
    return done / (time.perf_counter() - start)


def full_rate(isa, program, testset, evaluations: int = 200_000) -> float:
    """Candidates/s over every vector (no early stop): the kernel's wrongness in a loop."""
    k = kernels(isa.name)
    rows = np.array(program, dtype=np.int64)
    t = testset
    args = (t.R0, t.F0, t.M0, t.U, t.EXP, t.EXPM, t.spec_array)
    R = np.empty((t.R0.shape[1], CHUNK), dtype=np.uint64)
    F = np.empty((t.F0.shape[1], CHUNK), dtype=np.uint8)
    M = np.empty((CHUNK, t.M0.shape[2]), dtype=np.uint8)
    fault = np.empty(CHUNK, dtype=np.uint8)
    k.repeat_wrongness(rows, rows.shape[0], *args, 1, R, F, M, fault)  # compile
    start = time.perf_counter()
    k.repeat_wrongness(rows, rows.shape[0], *args, evaluations, R, F, M, fault)
    return evaluations / (time.perf_counter() - start)


def rates(isa_name: str, iterations: int = 2_000_000) -> None:
    isa = ISAS[isa_name]
    print(f"\n{isa_name}: candidate evaluations per second, one core")
    print(f"  {'routine':8} {'chain (≥16 vectors)':>20} {'vectors/cand':>12} "
          f"{'every vector (32)':>18} {'interpreter (16)':>17}")
    for spec in (hackers_delight.p01, hackers_delight.p10, hackers_delight.p18,
                 hackers_delight.p24, sorting.sort3):
        features = frozenset(isa.features)
        start = min(starts(isa, spec, features), key=lambda s: s.program.instructions)
        search_space = space(isa, spec, features)
        vectors = machine_vectors(isa, spec, 32, 1)
        testset = TestSet(isa, spec, vectors, search_space.write_registers)
        chain = Chain.start(isa, testset, search_space, fallback(isa),
                            start.program, len(start.program.insns) + 1, seed=1)
        chain.run(1000)  # compile and warm up
        began = time.perf_counter()
        batch = chain.run(iterations)
        seconds = time.perf_counter() - began
        chain_rate = batch.evaluations / seconds
        per = CHUNK * batch.chunks / max(1, batch.evaluations)
        full = full_rate(isa, encode(isa, start.program), testset)
        floor = interpreter_rate(isa, spec, start.program, testset)
        print(f"  {spec.hint_name:8} {chain_rate:>20,.0f} {per:>12.1f} {full:>18,.0f} "
              f"{floor:>17,.0f}")
    print(f"  enumeration (instructions executed on {len(probe_vectors(32))} probe vectors, "
          "then every vector for what is right there), one core:")
    for spec in (hackers_delight.p01, hackers_delight.p25):
        features = frozenset(isa.features)
        narrow = space(isa, spec, features, scratch=1)
        e = Enumerator.build(isa, narrow)
        testset = TestSet(isa, spec, machine_vectors(isa, spec, 32, 1), narrow.write_registers)
        empty = MachineProgram(isa.name, ())
        defined = e.arguments_defined(len(spec.params))
        e.replace(testset, empty, 0, 0, 1, defined, 1000)  # compile and warm up
        began = time.perf_counter()
        _, executed = e.replace(testset, empty, 0, 0, 3, defined, 4_000_000, copy=False)
        seconds = time.perf_counter() - began
        print(f"  {spec.hint_name:8} {executed / seconds:>20,.0f} instructions/s over "
              f"{len(e.rows):,} instances, three deep")


def measured_gcc(isa, spec, features: frozenset[str]) -> Compiled | None:
    """gcc -O3 on the C view for these features, or None."""
    if not gcc_available(isa):
        return None
    try:
        return compile_c(isa, spec, features)
    except GccCodeUnusable:
        return None


def results(targets: list[str], routines, budget: float, sort_budget: float,
            until_goal: bool, seed: int, from_gcc: bool = False) -> None:
    for name in targets:
        target = TARGETS[name]
        gcc, goals = GOAL_GCC[name], GOALS.get(name, {})
        isa = ISAS[target.isa]
        features = ", ".join(sorted(target.features)) or "none"
        print(f"\n{name} ({target.isa}; features: {features})")
        print(f"  {'routine':8} {'ours':>5} {'gcc':>5} {'issue':>5} {'met':>4} {'seconds':>8}"
              "  start, found by  (gcc: -O3 on the C view, measured now; issue: the issue's"
              " goal, -: none but gcc's, c: a call into libgcc; met: ours <= both, <= gcc where"
              " issue is a call)")
        met = 0
        for spec in routines:
            r = spec.hint_name
            goal = goals.get(r, gcc.get(r))  # None: gcc's measured count is the bar
            compiled = measured_gcc(isa, spec, target.features)
            measured = None if compiled is None else compiled.instructions
            shown = "-" if measured is None else str(measured)
            call = r in CALLS.get(name, set()) and measured is not None
            bar = goal if measured is None else measured if call or goal is None else min(
                goal, measured)
            issue = "-" if goal is None else f"{goal}c" if call else str(goal)
            gcc_start = as_start(isa, compiled) if from_gcc and compiled is not None else None
            sort = spec.uses_memory  # the sorts: longer, on both cores
            began = time.perf_counter()
            try:
                result = evolve(spec, target, budget_s=sort_budget if sort else budget,
                                seed=seed, stop_at=bar if until_goal else None,
                                workers=2 if sort else 1,
                                extra_starts=[gcc_start] if gcc_start is not None else [])
            except NoProgram:
                print(f"  {r:8} {'-':>5} {shown:>5} {issue:>5} {'no':>4} "
                      f"{time.perf_counter() - began:>8.1f}  (none proven)")
                continue
            reached = min(c for _, _, c in result.history)
            when = next(t for t, _, c in result.history if c == reached)
            ok = result.instructions <= bar
            met += ok
            print(f"  {r:8} {result.instructions:>5} {shown:>5} {issue:>5} "
                  f"{'yes' if ok else 'no':>4} {when:>8.1f}  {result.start}, {result.found_by}")
        print(f"  goal met on {met} of {len(routines)}")


# The goal boards measured in the guest: x86-64 only (KVM runs x86-64 guests on this host).
GUEST_CPUS = {"x86-64 qemu64": "qemu64", "x86-64 Haswell": "Haswell"}
GUEST_VECTORS = 100


def _measured(run, figure: str):
    """A FitnessRun's CallCycles for `figure` ("cycles", "latency"), or None."""
    return getattr(run, figure) if run is not None and run.ok else None


def _figure(run, figure: str = "cycles") -> str:
    measured = _measured(run, figure)
    if measured is None:
        return "-"
    low, high = measured.spread
    return f"{measured.median:.2f} [{low:.2f}-{high:.2f}]"


def _at_or_below(ours, gcc, figure: str = "cycles") -> str:
    a, b = _measured(ours, figure), _measured(gcc, figure)
    if a is None or b is None:
        return "-"
    if a.median <= b.median:
        return "yes"
    return "noise" if a.spread[0] <= b.spread[1] else "no"


def guest_cycles(accel: str, targets: list[str], routines, budget: float, sort_budget: float,
                 seed: int, until_goal: bool) -> None:
    """Ours and gcc's cycles per call, timed side by side in each x86-64 goal board's
    guest under `accel`."""
    from evolution.fitness import choose, confirm, replicate, run_in_guest
    from evolution.gcc import proven
    from evolution.layout import PADDED, with_padding
    from evolution.program import assemble
    from evolution.timing_model import campaign_runner, measure_model
    from kernel.guest import build_guest
    from link.boot import BootError
    from link.qemu_link import QemuLink
    from probes.campaign import Campaign
    from probes.run import POLICY
    from qemu.boards import board
    from qemu.errors import QemuError

    guest = None
    for name in targets:
        cpu = GUEST_CPUS.get(name)
        if cpu is None:
            print(f"\n{name}: skipped, no {accel} guest measured for it (x86-64 boards only)")
            continue
        target = TARGETS[name]
        isa = ISAS[target.isa]
        guest = guest or build_guest(isa.arch)
        began = time.perf_counter()
        try:
            link = QemuLink(board("q35", cpu=cpu, accel=accel), guest)
        except (QemuError, BootError) as error:
            print(f"\n{name}: skipped, -cpu {cpu} does not start under {accel}: "
                  f"{str(error).splitlines()[0]}")
            continue
        print(f"\n{name}: ours and gcc -O3 timed in the guest, -cpu {cpu} under {accel}"
              f" (booted in {time.perf_counter() - began:.1f} s; {GUEST_VECTORS} vectors)")
        print(f"  {'routine':8} {'ins ours':>8} {'gcc':>4}  {'cycles/call ours [quartiles]':>29}"
              f"  {'gcc [quartiles]':>22}  {'<=':>5}  {'latency ours [quartiles]':>25}"
              f"  {'gcc [quartiles]':>22}  {'<=':>5}")
        verdicts: dict[str, int] = {}
        latency_verdicts: dict[str, int] = {}
        chosen_by: dict[str, int] = {}  # "shortest", or the figure that chose a kept one
        with link:
            campaign = Campaign(link, POLICY)
            # the search's model from this board's timing family, as `./run evolve` has it
            began = time.perf_counter()
            timing = measure_model(isa, target.features, f"-cpu {cpu} ({accel})",
                                   campaign_runner(campaign))
            print(f"  performance model: {timing.measured} forms timed on the board "
                  f"({timing.probes} probes, {time.perf_counter() - began:.0f} s), "
                  f"{len(timing.unmeasured)} from the table", flush=True)
            for spec in routines:
                r = spec.hint_name
                compiled = measured_gcc(isa, spec, target.features)
                bar = None if compiled is None else compiled.instructions
                try:
                    result = evolve(spec, target, seed=seed, model=timing.model,
                                    stop_at=bar if until_goal else None,
                                    budget_s=sort_budget if spec.uses_memory else budget)
                except NoProgram:
                    print(f"  {r:8} (none proven)")
                    continue
                codes = {"ours": result.code}
                if compiled is not None:
                    codes["gcc"] = compiled.code
                # the kept proven programs within gcc's count and the issue's (not where
                # that is a call into libgcc; the shortest's where it is above the issue's):
                # the fastest of them and the shortest is ours
                issue = GOALS.get(name, {}).get(r, GOAL_GCC[name].get(r, bar))
                limit = None if bar is None else bar if r in CALLS.get(name, set()) else min(
                    bar, max(issue, result.instructions))
                others = [] if limit is None else [
                    k for k in result.kept
                    if k.program != result.program and k.instructions <= limit]
                for i, k in enumerate(others):
                    codes[f"kept {i}"] = assemble(isa, k.program, target.features)
                counts = {"ours": result.instructions,
                          **{f"kept {i}": k.instructions for i, k in enumerate(others)}}
                if link.accelerator == "kvm":  # each with its return 32 bytes in (layout.py)
                    with_padding(isa, codes, counts, bar)
                runs = run_in_guest(link, isa, spec, codes, GUEST_VECTORS, seed + 2, campaign)
                # gcc's code, proven too, is a candidate (fitness.against), as in `./run evolve`
                reference = compiled is not None and runs["gcc"].ok and \
                    proven(isa, spec, compiled) is not None
                choice = choose(runs, counts, "ours", "gcc" if compiled is not None else None,
                                proven=reference)
                if reference and choice.name != "gcc":  # it must beat gcc's code again
                    choice, _ = replicate(link, isa, spec, choice, codes, "gcc",
                                          GUEST_VECTORS, seed + 4, campaign)
                shortest = runs["ours"]
                # the figures shown: the chosen code and gcc's timed again on fresh vectors
                ours, gcc = confirm(link, isa, spec, codes[choice.name], codes.get("gcc"),
                                    GUEST_VECTORS, seed + 3, campaign)
                how = "shortest" if choice.name == "ours" else "gcc's code" \
                    if choice.name == "gcc" else choice.figure + (
                        PADDED if choice.name.endswith(PADDED) else "")
                chosen_by[how] = chosen_by.get(how, 0) + 1
                same = gcc is not None and codes[choice.name] == codes["gcc"]
                verdict = "same" if same else _at_or_below(ours, gcc)
                verdicts[verdict] = verdicts.get(verdict, 0) + 1
                latency = "same" if same else _at_or_below(ours, gcc, "latency")
                latency_verdicts[latency] = latency_verdicts.get(latency, 0) + 1
                wrong = "" if ours.ok and (gcc is None or gcc.ok) else \
                    f"  disagrees: {ours.detail or gcc.detail}"
                print(f"  {r:8} {counts.get(choice.name, bar):>8} {bar if bar else '-':>4}  "
                      f"{_figure(ours):>29}  {_figure(gcc):>22}  {verdict:>5}  "
                      f"{_figure(ours, 'latency'):>25}  {_figure(gcc, 'latency'):>22}  "
                      f"{latency:>5}{wrong}", flush=True)
                if choice.name != "ours":
                    first = runs.get("gcc")
                    print(f"  {'':8} {result.instructions:>8} shortest "
                          f"{_figure(shortest):>27}  {_figure(first):>22}  "
                          f"{_at_or_below(shortest, first):>5}"
                          f"  {_figure(shortest, 'latency'):>25}  "
                          f"{_figure(first, 'latency'):>22}  "
                          f"{_at_or_below(shortest, first, 'latency'):>5}  (first timing; not"
                          f" chosen: {choice.reason})", flush=True)
                elif others:
                    print(f"  {'':8} {len(others)} kept program(s) timed beside it (instructions:"
                          " cycles, latency: " + "; ".join(
                              f"{k.instructions}: {_figure(runs[f'kept {i}'])}, "
                              f"{_figure(runs[f'kept {i}'], 'latency')}"
                              for i, k in enumerate(others)) + f"): {choice.reason}", flush=True)
        for label, tally in (("cycles", verdicts), ("latency", latency_verdicts)):
            print(f"  ours <= gcc, {label}: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))
        print("  ours is: " + ", ".join(f"{k} {v}" for k, v in sorted(chosen_by.items()))
              + " (shortest: the search's shortest proven program; latency or cycles: a"
              " kept proven program chosen on that figure, nearest to gcc's or faster"
              " beyond the quartiles; gcc's code:"
              " proven, and no evolved one lower in cycles per call (5% and p < 0.01)"
              " without being higher in latency)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per p01-p25")
    parser.add_argument("--sort-budget", type=float, default=600.0, help="seconds per sort")
    parser.add_argument("--until-goal", action="store_true",
                        help="stop a routine once it meets its goal")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS))
    parser.add_argument("--routine", action="append")
    parser.add_argument("--rate-only", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--from-gcc", action="store_true",
                        help="gcc's code is one more start (STOKE's optimisation mode)")
    parser.add_argument("--accel", choices=("kvm", "tcg"),
                        help="only cycles in the guest under this accelerator: ours beside"
                             " gcc's per x86-64 goal board")
    args = parser.parse_args()
    cold = [isa_name for isa_name in ISAS if not compiled(isa_name)]
    if cold:  # before any budget's clock starts (evolution/warm.py), side by side
        print(f"compiling the {' and '.join(cold)} search kernels (their first use on this"
              " machine: minutes)", flush=True)
        compile_kernels(cold)
    routines = [r for r in ROUTINES if not args.routine or r.hint_name in args.routine]
    if args.accel:  # p01-p25 unless routines are named (the sorts search for minutes)
        chosen = routines if args.routine else [r for r in routines if not r.uses_memory]
        guest_cycles(args.accel, args.target or list(TARGETS), chosen, args.budget,
                     args.sort_budget, args.seed, args.until_goal)
        return
    for isa_name in ISAS:
        rates(isa_name)
    if args.rate_only:
        return
    results(args.target or list(TARGETS), routines, args.budget, args.sort_budget,
            args.until_goal, args.seed, args.from_gcc)


if __name__ == "__main__":
    main()
