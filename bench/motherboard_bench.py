"""./run bench motherboard: every goal of the meta-motherboard, side by side, one run.

Live QEMU boards (TCG; a KVM board where /dev/kvm can run it), fixed seeds:

  A  a Poisson stream of 200 tasks (p01-p25 and the sorts, 1-10,000 vectors) on ten
     boards, three of them liars (30%: one overstating its speed tenfold, one with
     10% wrong answers, one whitewashing: both, and a new identity when it stops
     winning); the honest board holding the most tasks from the third second on is
     SIGKILLed.
        wrong answers accepted (audited afterwards: every accepted answer recomputed),
        tasks lost, tasks accepted twice, tasks to liars in the last 100 of 200,
        reroute latency after the kill
  B  two task graphs (layered DAGs, edges carrying outputs to inputs; the built-ins
     `graph-long`, 31 tasks of 20,000-50,000 vectors over p01-p25, on which the boards
     are nearly alike here, and `graph-features`, the same shape over the routines some
     board has hardware for, on which they differ), each on four boards, run
     GRAPH_ROUNDS times; after the first, every task measured PROFILE_ROUNDS times on
     every board, as the graph runs (the graph run as four round-robin rotations,
     PROFILE_ROUNDS times: the table holds the medians); after each of the
     motherboard's runs, HEFT's, round-robin's and random's schedules on that table run
     live on the same boards, taking turns with it, and so does every task on one board
     (a reference: what running boards side by side buys on this host at all; four TCG
     boards share two cores here).  The goal's figure: the
     motherboard's makespan in its runs (their median) over HEFT's schedule's run live
     (the median of its runs); beside it HEFT's, round-robin's and random's makespans
     on the table, and how far HEFT on one profiling run's times is from the same
     schedule on the other runs' (the table's noise), the table's floor (HEFT's own
     schedule on bootstrap redraws of it), and for each of the motherboard's runs its
     assignment on the table beside HEFT's schedule worked out on what its bids knew;
     and round by round, each of the motherboard's runs over each schedule's run after
     it, their geometric mean with its 90% interval (compare.paired_ratio).
     `--json FILE` writes, per graph (by its name), the graph, the table with every run,
     the makespans and each of the motherboard's runs (bids and times), from which HEFT
     can be recomputed
  C  a stream of the routines some board has hardware for (POPCNT on Haswell, Zbb on
     rv64) on four boards: where their tasks went once the boards were calibrated;
     beside them, in the same stream, a control: routines no board has code of its
     own for (CONTROL_MIX), and how many of theirs went to the same boards, which is
     what those boards win for being quicker at everything, not for their hardware;
     and for each routine, the measured run a vector (the median over tasks of LARGE
     vectors or more) on the boards with the hardware against the others: whether it
     made their tasks quicker at all; then, on each board with feature code for p23,
     with no market in between, its batch probes with the feature code and with the
     lowering in turn on the same vectors: what the hardware saves a vector end to end
  D  simulated boards with the per-board times the live boards measured in A (its
     history), the liar scenario A again over more seeds: tasks to liars, wrong
     accepted, lost

Every live run starts once its boards have calibrated (the boards then bid).
`--parts A` (or any of ABCD) runs only those parts; D runs A first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from collections.abc import Callable

from bench.progress import ProgressLine
from kernel.guest import build_guest
from link.qemu_link import QemuLink
from motherboard.adversary import liar_kinds
from motherboard.compare import compare, held_out, knowledge, paired_ratio, table_floor
from motherboard.implementations import feature_code
from motherboard.live import BUSIEST_HONEST, LiveRun, Plan, parse_boards, run_live
from motherboard.live_schedules import ONE_BOARD, PROFILE_ROUNDS
from motherboard.market import MarketConfig, Motherboard
from motherboard.record import totals
from motherboard.sim import BoardPlan, RunTimeLine, SimProfile, simulate
from motherboard.workload import (
    FEATURE_MIX,
    FULL_MIX,
    HD,
    Workload,
    calibration_sizes,
    feature_graph,
    layered_graph,
    long_graph,
    poisson_stream,
)
from probes.campaign import Campaign
from probes.routine import batch_form
from probes.run import POLICY
from probes.vet import vet
from qemu.boards import Board
from sem.vectors import generate

SEED = 7
GRAPH_ROUNDS = 5  # runs of B's graph: its makespan is their median
HONEST = "q35:qemu64,q35:Haswell,virt:rv64,virt:rv64-nozb,q35:qemu64,virt:rv64,q35:Haswell"
LIARS = "q35:Haswell,virt:rv64,q35:qemu64"  # the last boards of a spec lie
HETERO = "q35:qemu64,q35:Haswell,virt:rv64,virt:rv64-nozb"


def say(text: str = "") -> None:
    print(text, flush=True)


def progress(part: str) -> Callable[[LiveRun, float], None]:
    """run_live's on_update for a live part: a progress line on stderr every so often
    (bench/progress.py)."""
    line = ProgressLine(part)

    def update(run: LiveRun, _now: float) -> None:
        if not line.due():
            return
        mb = run.motherboard
        work = mb.workload_tasks()
        calibrating = sum(mb.calibrating(b) for b in mb.boards)
        turns = sum(len(r) for r in run.executed_runs.values())
        line.say(f"{len(mb.boards)} boards ({calibrating} calibrating), tasks accepted"
                 f" {sum(t.accepted_at is not None for t in work)} of {len(work)} submitted"
                 + (f", list schedules run {turns}" if turns else ""))

    return update


def board_spec(honest: str, liars: str) -> tuple[str, int]:
    """The spec with the liars last, and how many boards would lie (30%)."""
    choices = parse_boards(honest)
    usable = [c for c in choices if c.board is not None]
    for c in choices:
        if c.board is None:
            say(f"  skipped {c.spec}: {c.skipped}")
    liar_count = len(parse_boards(liars))
    total = len(usable) + liar_count
    say(f"  {len(usable)} honest boards and {liar_count} liars ({liar_count / total:.0%})")
    return ",".join([c.spec for c in usable] + liars.split(",")), liar_count


def run_a(quick: bool) -> tuple[Motherboard, set[str]]:
    say("A. a stream with 30% liars and a kill")
    spec, liars = board_spec(HONEST, LIARS)
    count = 200
    work = poisson_stream(count, 20.0, FULL_MIX, (1, 2_000 if quick else 10_000), seed=SEED)
    started = time.monotonic()
    # calibrated at the stream's own sizes, as the CLI does: a promise is held to the
    # oracle's record of the board as well as to its run (before that, the tenfold
    # overstater, its record as long as the loaded host made it, kept promises of a tenth
    # of it and got 79-92 of the last 100 tasks)
    config = MarketConfig(seed=SEED, calibration_sizes=calibration_sizes(work))
    run = run_live(parse_boards(spec), work, config=config, liars=liars,
                   plans=[Plan(3.0, "kill-busy", BUSIEST_HONEST)], seed=SEED, timeout=900,
                   on_update=progress("A"))
    mb = run.motherboard
    figures = totals(mb, set(run.liars), last=100, start=run.onboarded, kills=run.kills)
    for name, why in run.failed.items():
        say(f"  {name} did not onboard: {why.splitlines()[0][:150]}")
    kinds = ", ".join(f"{b}: {k}" for b, k in run.liars.items())
    say(f"  boards onboarded and calibrated in {run.onboarded:.1f} s; the stream took"
        f" {figures['makespan']:.1f} s ({time.monotonic() - started:.0f} s in all); liars {kinds}")
    latency = figures["reroute_latency_s"]
    say(f"  wrong answers accepted    {figures['wrong_accepted']:>6}    goal 0  (wrong answers"
        f" caught and redone: {figures['wrong_caught']})")
    say(f"  tasks lost                {figures['lost']:>6}    goal 0  (accepted twice:"
        f" {figures['accepted_twice']})")
    say(f"  tasks to liars, last 100  {figures['tasks_to_liars_last']:>6}    goal < 5  (all 200:"
        f" {figures['tasks_to_liars']}; EigenTrust's anchor ~10% inauthentic at 70% malicious)")
    say(f"  reroute after the kill    {', '.join(f'{x:.3f} s' for x in latency) or 'none':>6}"
        f"    goal < 1 s  ({figures['reroutes']} task(s) in flight on the killed board)")
    return mb, set(run.liars)


def run_b(quick: bool, record: str | None = None) -> None:
    """Bench B on each of its graphs; `record`: one JSON document, by the graph's built-in
    name (`graph-long`, `graph-features`; with --quick, smaller graphs of their mixes)."""
    graphs = ((layered_graph(4, 4, 2, HD, (20_000, 50_000), seed=SEED),
               layered_graph(4, 4, 2, FEATURE_MIX, (20_000, 50_000), seed=SEED)) if quick
              else (long_graph(SEED), feature_graph(SEED)))
    documents = {}
    for k, (work, name, title) in enumerate(zip(graphs, ("graph-long", "graph-features"), (
            "over p01-p25, the boards nearly alike",
            "over the routines some board has hardware for"), strict=True)):
        if k:
            say()
        documents[name] = run_graph(work, name, title, record is not None)
    if record:
        with open(record, "w") as f:
            json.dump(documents, f, indent=1)
        say(f"  written to {record}: per graph, the graph, the table (every run) and the"
            " makespans")


def run_graph(work: Workload, graph: str, title: str, record: bool) -> dict | None:
    say(f"B. a task graph ({title}): the motherboard beside HEFT, round-robin and random")
    config = MarketConfig(seed=SEED, calibration_sizes=calibration_sizes(work))
    run = run_live(parse_boards(HETERO), work, config=config, seed=SEED,
                   profile=True, timeout=900, rounds=GRAPH_ROUNDS,
                   on_update=progress(f"B {graph}"))
    for name, why in run.failed.items():
        say(f"  {name} did not onboard: {why.splitlines()[0][:150]}")
    left = [f"{b} ({e.exit_reason})" for b, e in run.motherboard.boards.items()
            if e.status.value != "active"]
    if left:
        say(f"  left during the run: {', '.join(left)}")
    trouble = [e for e in run.motherboard.events if e[1] in ("wrong", "failed", "stuck")]
    if trouble:  # honest boards: a task redone elsewhere, or a board never calibrated
        say("  answers rejected or runs failed: " + "; ".join(
            f"{kind} {board} {detail[:160]}" for _, kind, board, detail in trouble[:6]))
    c = compare(run.motherboard, run.profile, run.onboarded, SEED, run.rounds, run.executed)
    say(f"  {c.tasks} tasks on {len(c.boards)} boards, run {len(run.rounds)} times; after the"
        f" first, every task run {PROFILE_ROUNDS} times on every board as the graph runs"
        f" ({len(c.boards)} round-robin rotations of it, {PROFILE_ROUNDS} times): the table is"
        " their medians; after each of the"
        " motherboard's runs, the graph run once as each list scheduler schedules it on the"
        " table (taking turns with the motherboard)")
    names = {"heft": "HEFT", "round_robin": "round-robin", "random": "random"}
    goals = {"heft": "goal <= 1.15 x", "round_robin": "goal < 1 x", "random": "goal < 1 x"}
    say(f"  motherboard's run     {c.motherboard_live:.3f} s   (first award to the last task's"
        f" result, median of {', '.join(f'{x:.3f}' for x in c.live_rounds)} s)")
    for name, label in names.items():
        x = c.executed.get(name)
        if x is None:
            say(f"  {label:<11} its schedule not run live (a board left)")
            continue
        runs = ", ".join(f"{r:.3f}" for r in run.executed_runs[name] if r is not None)
        mine = c.live_ratio_to(name)
        say(f"  {label + ' schedule':<22}{x:.3f} s   the motherboard's run {mine:.2f} x that"
            f"   {goals[name]}   (run live: median of {runs} s)")
    alone = run.executed_runs.get(ONE_BOARD, [])
    if c.executed.get(ONE_BOARD):
        board = next(iter(_one_board(run)), "?")
        say(f"  reference: every task on one board ({board}, no parallelism between boards)"
            f" {c.executed[ONE_BOARD]:.3f} s, HEFT's schedule on four"
            f" {(c.executed.get('heft') or float('nan')) / c.executed[ONE_BOARD]:.2f} x that"
            f" (run live: median of {', '.join(f'{r:.3f}' for r in alone if r is not None)} s;"
            " the boards share the host's cores)")
    say(f"  on the table (perfect knowledge of the measured times): HEFT {c.heft:.3f} s; the"
        f" motherboard's run {c.live_ratio_to_heft:.2f} x that, HEFT's own schedule run live"
        f" {(c.executed.get('heft') or float('nan')) / c.heft:.2f} x; round-robin"
        f" {c.round_robin / c.heft:.2f} x, random {c.random / c.heft:.2f} x and the"
        f" motherboard's assignment {c.ratio_to_heft:.2f} x on the table (the median of its"
        f" runs, below; from the boards' onboarding to its last task's acceptance, checks"
        f" and the {len(run.rounds)} rounds with the schedules run between them included:"
        f" {c.motherboard_measured:.3f} s)")
    rounds = []  # each of the motherboard's runs over each schedule's run right after it
    for name, label in names.items():
        paired = paired_ratio(c.live_rounds, run.executed_runs.get(name, []))
        if paired:
            rounds.append(f"{label} {', '.join(f'{x:.2f}' for x in paired.ratios)} x,"
                          f" geometric mean {paired.mean:.2f} x ({paired.level:.0%} interval"
                          f" {paired.low:.2f}-{paired.high:.2f} x)")
    if rounds:
        say("  round by round (each of the motherboard's runs over each schedule's run right"
            " after it, the same host's load; an interval across 1 x: not told apart on this"
            f" host): {'; '.join(rounds)}")
    for k, ids in enumerate(run.rounds):
        known = knowledge(run.motherboard, ids, run.profile, run.profile_runs)
        if known is None:
            say(f"  run {k + 1}: not every board bid for every task (no knowledge figure)")
            continue
        say(f"  run {k + 1}: on the table, the motherboard's assignment {known.assignment:.2f} x"
            f" HEFT, HEFT's schedule on the bids' own predicted runs {known.heft_on_bids:.2f} x;"
            " the bids against the table: log-sd"
            f" {known.bids_spread:.2f} (one profiling run against its others' median"
            f" {known.runs_spread:.2f}); {known.not_earliest} of {len(ids)} tasks went to a"
            f" bid not promising the earliest finish ({known.refuted_earliest} of them as the"
            " board's record refuted that promise)")
    first = [run.motherboard.tasks[t] for t in run.rounds[0]]
    succ = {t.id: [u.id for u in first if t.id in u.after] for t in first}
    held_runs = {t: {b: r for b, r in row.items() if b in c.boards}
                 for t, row in run.profile_runs.items()}
    held = held_out(held_runs, succ)
    say("  the table's noise: HEFT on one profiling run of each task and board alone, then its"
        " schedule on the others' medians: " + ", ".join(
            f"{h.on_its_table:.3f} -> {h.on_the_others:.3f} s" for h in held))
    say("  the table's floor: HEFT's own schedule on the table, on the table drawn again (each"
        " task's runs on each board resampled), over HEFT on that draw: median"
        f" {table_floor(held_runs, succ, seed=SEED):.2f} x (a scheduler knowing the table exactly"
        " gets this on a table of the same noise)")
    if not record:
        return None
    return {"graph": {t.id: list(t.after) for t in first},
            "table": run.profile, "table_runs": run.profile_runs,
            "comparison": c.to_json(), "executed_runs": run.executed_runs,
            "motherboard_rounds": [_round_record(run.motherboard, ids) for ids in run.rounds],
            "trust_weights": {b: run.motherboard.trust.of(b).weight for b in c.boards}}


def _one_board(run) -> list[str]:
    """The board the one-board reference schedule ran on (the table's fastest in all)."""
    table = run.profile
    boards = set.intersection(*(set(row) for row in table.values())) if table else set()
    return sorted(sorted(boards), key=lambda b: sum(row[b] for row in table.values()))[:1]


def _round_record(mb: Motherboard, ids: list[str]) -> dict[str, dict]:
    """One of the motherboard's runs of the graph, per task (by its id in the first run):
    the board it was accepted from, when (seconds from the run's first award) it was
    awarded, its inputs sent and its result back, the measured time, every award of it in
    turn (board, when, how it ended: "moved" when it went to an idle board before it
    began), and every bid of its last auction (promise, the run alone within it, price)."""
    tasks = [mb.tasks[t] for t in ids]
    start = min(a.awarded for t in tasks for a in t.attempts)
    out = {}
    for t in tasks:
        a = next(x for x in t.attempts if x.outcome == "accepted")
        out[t.id.rpartition("/")[2]] = {
            "board": a.board, "announced": t.announced - start, "awarded": a.awarded - start,
            "attempts": len(t.attempts),
            "awards": [{"board": x.board, "awarded": x.awarded - start, "outcome": x.outcome}
                       for x in t.attempts],
            "sent": (a.sent if a.sent is not None else a.awarded) - start,
            "ended": a.ended - start, "measured": a.measured, "run": a.run,
            "bids": {b: {"seconds": x.seconds, "run": x.run, "price": x.price}
                     for b, x in t.bids.items()}}
    return out


# Routines no board has feature code for (motherboard/implementations.py): bench C's control
CONTROL_MIX = ("hd:p01", "hd:p05", "hd:p24")
LARGE = 1_000  # vectors: C's time a vector is over tasks this large (smaller: the fixed cost)


def run_c(quick: bool) -> None:
    say("C. heterogeneity: routines some board has hardware for, beside a control")
    # 140 tasks of the routines with feature code (20 of each), and 20 of each control
    work = poisson_stream(80 if quick else 200, 5.0, FEATURE_MIX + CONTROL_MIX, (100, 10_000),
                          seed=SEED)
    choices = parse_boards(HETERO + ",q35-kvm:host")
    for c in choices:
        if c.board is None:
            say(f"  skipped {c.spec}: {c.skipped}")
    config = MarketConfig(seed=SEED, calibration_sizes=calibration_sizes(work))  # as A's
    run = run_live(choices, work, config=config, seed=SEED, timeout=900,
                   on_update=progress("C"))
    for name, why in run.failed.items():
        say(f"  {name} did not onboard: {why.splitlines()[0][:150]}")
    mb = run.motherboard
    boards = len(mb.boards)

    def owners_of(rid: str) -> tuple[str, ...]:
        """The boards with hardware for it: discovery saw a feature that code of theirs
        needs (POPCNT on Haswell, Zbb on rv64, the host's CPU on a KVM board)."""
        return tuple(b for b, entry in mb.boards.items()
                     if any(o.routine == rid and o.implementation != "lowered"
                            for o in entry.report.offers))

    def share(rid: str, to: tuple[str, ...]) -> tuple[float, int]:
        tasks = [t for t in mb.workload_tasks() if t.routine == rid]
        won = Counter(next(a.board for a in t.attempts if a.outcome == "accepted") for t in tasks)
        return (sum(won[b] for b in to) / len(tasks) if tasks else 0.0), len(tasks)

    def per_vector(rid: str, owners: tuple[str, ...]) -> str:
        """The measured run a vector (median, tasks of LARGE or more vectors) on the
        owners and on the other boards: whether the hardware made its tasks quicker."""
        rates: dict[bool, list[float]] = {True: [], False: []}
        for t in mb.workload_tasks():
            a = next(x for x in t.attempts if x.outcome == "accepted")
            if t.routine == rid and t.size >= LARGE and a.run:
                rates[a.board in owners].append(a.run / t.size * 1e6)
        theirs, others = (f"{statistics.median(r):.2f} us ({len(r)})" if r else "-"
                          for r in (rates[True], rates[False]))
        return f"{theirs} on theirs, {others} on the others"

    groups = set()
    for routine in FEATURE_MIX:
        rid = mb.book.resolve(routine)
        owners = owners_of(rid)
        groups.add(owners)
        part, count = share(rid, owners)
        impl = Counter(a.bid.implementation for t in mb.workload_tasks() if t.routine == rid
                       for a in t.attempts if a.outcome == "accepted" and a.board in owners)
        say(f"  {routine:<11} {part:5.0%} of {count:>3} to {' / '.join(owners):<22}"
            f" (their share of boards {len(owners) / boards:.0%}; ran with"
            f" {dict(impl) or '-'}; a vector of tasks of {LARGE:,}+ took"
            f" {per_vector(rid, owners)})")
    for owners in sorted(groups, key=len, reverse=True):
        if not owners:
            continue
        figures = []
        for routine in CONTROL_MIX:
            rid = mb.book.resolve(routine)
            if owners_of(rid):
                continue  # some board has code of its own for it here (a --db's): no control
            part, count = share(rid, owners)
            figures.append(f"{mb.book.short(rid)} {part:.0%} of {count}")
        say(f"  control: to {' / '.join(owners)} went {', '.join(figures) or '-'} (routines"
            " no board has code of its own for)")
    worth_of_hardware(mb, {c.spec: c.board for c in choices if c.board is not None})


AB_ROUTINE = "p23"  # the A/B's routine: every feature architecture has code for it
AB_BLOCKS, AB_PROBES = 12, 10  # blocks of each implementation in turn (the first warms up)


def worth_of_hardware(mb: Motherboard, boards: dict[str, Board]) -> None:
    """What a board's feature code is worth on its own board with no market in between:
    p23's batch probes on one board, the lowering and the feature code in turn, in
    blocks of AB_PROBES probes of the same vectors (a block's order alternating).  The
    pairs are what count: the same probe's time varies 2x from one batch to the next
    on this host (2026-12-07), so two separate runs would compare loads."""
    rid = mb.book.resolve(f"hd:{AB_ROUTINE}")
    r = mb.book.routine(rid)
    for name, entry in mb.boards.items():
        board = boards.get(entry.report.spec)
        code = feature_code(AB_ROUTINE, board.arch, entry.report.features) if board else {}
        if not code:
            continue
        (feature, feature_bytes), = code.items()
        forms = {"lowered": batch_form(r, board.arch), feature: batch_form(r, board.arch,
                                                                           feature_bytes)}
        size = min(f.capacity for f in forms.values())
        wall: dict[str, list[float]] = {k: [] for k in forms}
        cycles: dict[str, list[int]] = {k: [] for k in forms}
        with QemuLink(board, build_guest(board.arch)) as link:
            campaign = Campaign(link, POLICY)
            for block in range(AB_BLOCKS):
                vectors = [generate(r, size, seed=1000 * block + i) for i in range(AB_PROBES)]
                for kind in (list(forms) if block % 2 else list(forms)[::-1]):
                    items = [(p, vet(p).prediction) for p in map(forms[kind].probe, vectors)]
                    start = time.perf_counter()
                    report = campaign.run(items)
                    if block:  # the first block translates and warms what the others find
                        wall[kind].append((time.perf_counter() - start) / (AB_PROBES * size))
                        cycles[kind] += [report.results[p.content_hash].observation.cycles or 0
                                         for p, _ in items]
        by_cycles = [f / low for low, f in zip(cycles["lowered"], cycles[feature], strict=True)
                     if low]
        by_wall = [f / low for low, f in zip(wall["lowered"], wall[feature], strict=True)]
        saved = statistics.median(a - b for a, b in zip(wall["lowered"], wall[feature],
                                                        strict=True))
        say(f"  {name}: {AB_ROUTINE} with {feature} on its own board, {size}-vector probes of"
            f" the same vectors in turn ({AB_BLOCKS - 1} blocks of {AB_PROBES}): the guest's"
            f" cycles {statistics.median(by_cycles):.2f}x the lowering's, the probes' time"
            f" {statistics.median(by_wall):.2f}x: {saved * 1e9:+.0f} ns saved of"
            f" {statistics.median(wall['lowered']) * 1e9:.0f} ns a vector end to end")


def profiles_from(mb: Motherboard) -> dict[str, SimProfile]:
    """Simulated boards that take what the live ones measured (their fitted lines)."""
    out = {}
    for board, entry in mb.boards.items():
        lines: dict[str, dict[str, RunTimeLine]] = {}
        rates = []
        for (rid, impl), model in mb.records.measured[board].models.items():
            overhead, slope = model.line()
            lines.setdefault(rid, {})[impl] = RunTimeLine(overhead, slope)
            rates.append((overhead, slope))
        default = RunTimeLine(statistics.median(o for o, _ in rates),
                       statistics.median(s for _, s in rates)) if rates else RunTimeLine(0.01, 1e-5)
        out[board] = SimProfile(entry.report.spec, entry.report.arch, entry.report.features,
                                default, lines, noise=0.2)
    return out


def run_d(mb: Motherboard, liars: set[str], quick: bool) -> None:
    say("D. the liar scenario again, simulated with the times the live boards measured in A")
    profiles = profiles_from(mb)
    honest = [p for b, p in profiles.items() if b not in liars]
    liar_profiles = [p for b, p in profiles.items() if b in liars and "~" not in b]
    kinds = liar_kinds(len(liar_profiles))
    config = MarketConfig(calibration_sizes=(1, 4, 16, 64), seed=SEED)
    for seed in range(2 if quick else 3):
        plans = [BoardPlan(f"h{i}", p) for i, p in enumerate(honest)]
        plans += [BoardPlan(f"l{i}", p, liar=k)
                  for i, (p, k) in enumerate(zip(liar_profiles, kinds, strict=True))]
        work = poisson_stream(200, 20.0, FULL_MIX, (1, 1_000), seed=SEED + seed)
        run = simulate(work, plans, config=config, seed=SEED + seed, warm_up=True)
        f = totals(run.motherboard, set(run.liars), last=100, start=run.start)
        say(f"  seed {SEED + seed}: {len(honest)} honest + {len(liar_profiles)} liars: tasks to"
            f" liars in the last 100: {f['tasks_to_liars_last']} (all 200:"
            f" {f['tasks_to_liars']}), wrong accepted {f['wrong_accepted']}, lost {f['lost']},"
            f" wrong answers caught {f['wrong_caught']}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a shorter run (fewer tasks), for a first look")
    parser.add_argument("--json", metavar="FILE",
                        help="write B's graphs, tables (every run) and makespans to FILE")
    parser.add_argument("--parts", default="ABCD",
                        help="which parts to run, letters of ABCD (default ABCD; D needs A)")
    args = parser.parse_args()
    quick, record, parts = args.quick, args.json, args.parts.upper()
    if not parts or set(parts) - set("ABCD"):
        parser.error(f"--parts {args.parts}: give letters of ABCD, e.g. --parts AB")
    say("motherboard bench: live boards under TCG on this host, seed "
        f"{SEED}{' (quick)' if quick else ''}, parts {parts}")
    if "A" in parts or "D" in parts:  # D simulates with the times A measured
        mb, liars = run_a(quick)
        say()
    if "B" in parts:
        run_b(quick, record)
        say()
    if "C" in parts:
        run_c(quick)
        say()
    if "D" in parts:
        run_d(mb, liars, quick)


if __name__ == "__main__":
    main()
