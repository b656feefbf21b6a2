"""MetaOS tasks.  Run them through ./run, which prepares the environment first:

    ./run demo          boot the default board and print what the machine is
    ./run test          the whole test suite (boot tests run under TCG)
    ./run --list        every task; ./run TASK --help for its options

This file declares the tasks and their help; each body is one call into the cli
package (cli/program.py runs them: grouped tasks as `./run sem show`, errors as one
line, --debug for tracebacks).  A new layer adds its commands as cli/<layer>.py and
declares them here, as a group if it has several.  Options arrive as text: the cli
parses them and names the option when a value is wrong.  Every import is inside
its task, so a task loads only what it uses.
"""

from __future__ import annotations

from invoke import Collection, task

from cli.arguments import BOARD_HELP

# -- booting and discovery ---------------------------------------------------------------------


@task(help={"arch": BOARD_HELP["arch"]})
def build(c, arch="x86_64"):
    """Assemble the guest for ARCH into build/ARCH (disk image and/or ELF with symbols)."""
    from cli import discover as cli

    for path in cli.build(arch):
        print(path)


@task(help={**BOARD_HELP,
            "json": "write the inventory as JSON (schema metaos.inventory/1) to PATH; - for stdout",
            "dump_dir": "write config spaces (lspci -F) and CPUID (hwloc/lstopo) dumps into DIR",
            "verify": "compare the guest's PCI list with QEMU's own (QMP query-pci)"})
def discover(c, arch="x86_64", board=None, cpu=None, smp=None, memory=None, accel="auto",
             qemu_args="", json=None, dump_dir=None, verify=False):
    """Boot the board, discover the machine, print the report.

    --json PATH writes the inventory (schema metaos.inventory/1; '-' for stdout);
    --dump-dir DIR writes raw config spaces for `lspci -F` and CPUID for `lstopo`;
    --verify compares the guest's PCI list with QEMU's own (QMP query-pci)."""
    from cli import arguments
    from cli import discover as cli

    chosen = arguments.board(arch, board, cpu, smp, memory, accel, qemu_args)
    cli.discover(chosen, json=json, dump_dir=dump_dir, verify=verify)


@task
def demo(c):
    """The main job: boot the default board (q35) and print its inventory."""
    from cli import arguments
    from cli import discover as cli

    cli.discover(arguments.board())


@task(help={**BOARD_HELP, "hex": "also show every frame's body in hex"})
def boot(c, arch="x86_64", board=None, cpu=None, smp=None, memory=None, accel="auto",
         qemu_args="", hex=False):
    """Boot the board and show every decoded frame (sequence, type, summary)."""
    from cli import arguments
    from cli import discover as cli

    cli.boot(arguments.board(arch, board, cpu, smp, memory, accel, qemu_args), hex)


@task(help={**BOARD_HELP, "hex": "show every frame's body in hex",
            "replay": "decode a raw serial capture (e.g. from -serial file:X) instead of booting"})
def console(c, arch="x86_64", board=None, cpu=None, smp=None, memory=None, accel="auto",
            qemu_args="", hex=False, replay=None):
    """Serial-console inspection: frames live as they arrive, CRC errors, symbolised addresses."""
    from cli import arguments
    from cli import discover as cli

    if replay:
        cli.replay(arch, replay, hex)
    else:
        cli.console(arguments.board(arch, board, cpu, smp, memory, accel, qemu_args), hex)


# -- tests and benchmarks ----------------------------------------------------------------------


@task(help={"k": "only tests matching this pytest -k expression", "x": "stop at the first failure",
            "unit": "only the tests that start no QEMU",
            "qemu": "only the tests that boot guests (marked qemu)"})
def test(c, k="", x=False, unit=False, qemu=False):
    """Check the layers (import-linter) and style (ruff), then run the test suite.

    The tests marked `qemu` boot guests under TCG; --unit and --qemu run one half."""
    from cli.errors import UsageError
    from cli.suite import run_suite

    if unit and qemu:
        raise UsageError("--unit and --qemu each name one half of the suite; give neither to "
                         "run both")
    run_suite(c, k, x, "unit" if unit else "qemu" if qemu else None)


@task(help={"arch": BOARD_HELP["arch"], "runs": "boots per measurement (default 10)"})
def bench_boot(c, arch="x86_64", runs=None):
    """Boot benchmark: median QEMU start to FINAL beside the floor, per accelerator.

    Also `./run demo` end to end, and the whole `./run discover` command beside its boot
    and Python's start."""
    from bench.boot_bench import main
    from cli import arguments

    main(arguments.arch(arch), arguments.whole(runs, "--runs", minimum=1, default=10))


@task(name="probes", help={"only": "only some figures: qemu (end to end on the boards),"
                                   " batch (batch probes' time a vector) or faults"})
def bench_probes(c, only=None):
    """Probe benchmark: vetting, discovery candidates, end to end (generated/s, executed/s),
    batch probes' time a vector, a faulty line."""
    import sys

    from cli import arguments

    command = f"{sys.executable} bench/probes_bench.py"
    if only:
        command += f" --only {arguments.choice(only, '--only', ('qemu', 'batch', 'faults'))}"
    c.run(command, pty=False)


@task(name="evolve", help={
    "budget": "seconds per routine p01-p25 (default 60)",
    "sort_budget": "seconds per sort (default 600, on both cores)",
    "until_goal": "stop a routine once it meets its goal (gcc's count, or the issue's)",
    "target": "one goal board (default: all four), e.g. 'x86-64 qemu64'",
    "routine": "one routine (default: p01-p25, sort3-5)",
    "rate_only": "only the evaluation-rate figures",
    "seed": "the searches' seed (default 1)",
    "from_gcc": "gcc -O3's code is one more start, proven like every start (STOKE's "
                "optimisation mode); the start column says when a result came from it",
    "accel": "kvm or tcg: only cycles in the guest, ours beside gcc -O3's on the x86-64 goal"
             " boards (qemu64, Haswell) under that accelerator: cycles per call, loop overhead"
             " subtracted, median and quartiles (under KVM the silicon's time-stamp counter,"
             " under TCG QEMU's); a board that cannot start there is skipped"})
def bench_evolve(c, budget=60, sort_budget=600, until_goal=False, target=None, routine=None,
                 rate_only=False, seed=1, from_gcc=False, accel=None):
    """Evolution benchmark: evaluations/s, and instruction counts beside gcc's.

    Candidate evaluations/s beside the interpreter's; every routine's instruction count on
    every goal board beside gcc -O3's, measured in the same run.  With --accel: ours and
    gcc's cycles per call timed in the guest."""
    import sys
    from shlex import join

    from cli import arguments

    budget = arguments.number(budget, "--budget", minimum=0.1, default=60.0)
    sort_budget = arguments.number(sort_budget, "--sort-budget", minimum=0.1, default=600.0)
    args = [sys.executable, "bench/evolve_bench.py", "--budget", str(budget),
            "--sort-budget", str(sort_budget)]
    args += ["--until-goal"] * bool(until_goal) + ["--rate-only"] * bool(rate_only)
    args += ["--target", target] if target else []
    args += ["--routine", routine] if routine else []
    args += ["--seed", str(arguments.whole(seed, "--seed"))] + ["--from-gcc"] * bool(from_gcc)
    args += ["--accel", arguments.choice(accel, "--accel", ("kvm", "tcg"))] if accel else []
    c.run(join(args), pty=False)


@task(name="sem")
def bench_sem(c):
    """Semantic-core benchmark: hashing/storing, show latency, lowering, batch vectors.

    Hashing and storing 100,000 routines, `sem show` latency, lowering with assembling and
    vetting per routine, and a 50,000-vector batch drawn and interpreted by the batch
    forms beside one vector at a time."""
    import sys

    c.run(f"{sys.executable} bench/sem_bench.py", pty=False)


@task(name="ledger", help={"entries": "ledger size for the proof and verify figures "
                                       "(default 1,000,000)"})
def bench_ledger(c, entries=None):
    """Ledger benchmark: appends/s (signed heads every 1,000), proof time and verify time."""
    import sys

    from cli import arguments

    count = arguments.whole(entries, "--entries", minimum=1, default=1_000_000)
    c.run(f"{sys.executable} bench/ledger_bench.py --entries {count}", pty=False)


# -- probing -----------------------------------------------------------------------------------


@task(help={**BOARD_HELP,
            "family": "probe family: cpuid, msr (x86_64); csr (riscv64); isa, memlat, timing, "
                      "random (both)",
            "sequence": "timing family: the instructions to measure, e.g. 'imul rax, rax' "
                        "(x86_64, Intel syntax) or 'mul t0, t0, t0' (riscv64)",
            "budget": "instruction budget of every probe (default: the family's own)",
            "json": "also write the summary and every result to this JSON file "
                    "(schema metaos.probe-campaign/1)",
            "db": "capability store (default $METAOS_DB or ./metaos.db)",
            "limit": "run at most this many probes of the family",
            "unsafe_unvetted": "skip the vetter and send unvetted user code (testing containment "
                               "only)",
            "line": "console (default: a virtio console beside the serial port) or serial "
                    "(the serial port discovery used)",
            "line_faults": "test option: drop and flip bytes on the probe line, each at this rate"})
def probe(c, family, arch="x86_64", board=None, cpu=None, smp=None, memory=None, accel="auto",
          qemu_args="", budget=None, json=None, db=None, limit=None, unsafe_unvetted=False,
          line_faults=None, line="console", sequence=None):
    """Run a probe family: vetted in Unicorn, run in the guest, stored per hardware fingerprint."""
    from cli.probe import probe_task

    probe_task(family, arch, board, cpu, smp, memory, accel, qemu_args, budget, json, db, limit,
               unsafe_unvetted, line_faults, line, sequence)


@task(help={"db": "capability store (default $METAOS_DB or ./metaos.db)"})
def capabilities(c, db=None):
    """List what the capability store knows, per hardware fingerprint."""
    from cli.probe import capabilities_command

    capabilities_command(db)


# -- the semantic core -------------------------------------------------------------------------

REF_HELP = "ID (unique prefix), NAMESPACE:NAME or NAME"
DB_HELP = "database path (default $METAOS_DB or ./metaos.db)"


@task(help={"file": "a Python file defining routines with @routine (sem.ir)", "db": DB_HELP})
def sem_add(c, file, db=None):
    """Store every routine defined in FILE; print each one's ID and name."""
    from cli import sem as cli

    print(cli.add(file, db))


@task(help={"ref": REF_HELP, "view": "c | semantic | smtlib | asm",
            "arch": "x86_64 | riscv64 (for --view asm)", "db": DB_HELP})
def sem_show(c, ref, view="semantic", arch="x86_64", db=None):
    """Show one view of a routine."""
    from cli import sem as cli

    print(cli.show(ref, view, arch, db))


@task(help={"ref": REF_HELP, "db": DB_HELP})
def sem_names(c, ref, db=None):
    """List a routine's names, full ID and equivalence class."""
    from cli import sem as cli

    print(cli.names(ref, db))


@task(help={"old": "NAMESPACE:NAME (or NAME)", "new": "NAMESPACE:NAME (or NAME: same namespace)",
            "db": DB_HELP})
def sem_rename(c, old, new, db=None):
    """Move a name to another; the routine and its ID are untouched."""
    from cli import sem as cli

    print(cli.rename(old, new, db))


@task(help={"a": "routine A", "b": "routine B", "db": DB_HELP})
def sem_equiv(c, a, b, db=None):
    """Prove A and B equivalent with Z3 (B joins A's class) or print a counterexample."""
    from cli import sem as cli

    print(cli.equiv(a, b, db))


@task(help={"ref": REF_HELP, "db": DB_HELP,
            "series": "every measurement, not only the latest of each hardware and accelerator"})
def sem_history(c, ref, db=None, series=False):
    """Implementations, performance per hardware fingerprint, name and class changes."""
    from cli import sem as cli

    print(cli.history(ref, db, series))


@task(help={**BOARD_HELP, "ref": REF_HELP,
            "vectors": "input vectors to run (edge cases first, then random); default 100",
            "db": DB_HELP})
def sem_run(c, ref, arch="x86_64", board=None, cpu=None, smp=None, memory=None, accel="auto",
            qemu_args="", vectors=None, db=None):
    """Run a routine as probes on a board, each answer checked, cycles recorded.

    Every answer is compared with the interpreter's; the median cycles go to the
    performance history."""
    from cli import arguments
    from cli import sem as cli

    chosen = arguments.board(arch, board, cpu, smp, memory, accel, qemu_args)
    print(cli.run(ref, chosen, arguments.whole(vectors, "--vectors", minimum=1, default=100), db))


# -- evolution ---------------------------------------------------------------------------------

@task(help={"ref": REF_HELP + " (e.g. p10, sort3)", "arch": BOARD_HELP["arch"],
            "board": BOARD_HELP["board"], "cpu": BOARD_HELP["cpu"], "accel": BOARD_HELP["accel"],
            "qemu_args": BOARD_HELP["qemu_args"],
            "seconds": "search budget in seconds, default 60 (with --auto: split between the "
                       "routines)",
            "seed": "the search's seed: the same seed and --batches give the same program",
            "batches": "stop each search after this many STOKE batches (reproducible runs)",
            "auto": "evolve the routines with the most recorded runs on this board first",
            "routines": "with --auto: how many routines (default 5)",
            "vectors": "vectors each code runs on in the guest (default 100)",
            "from_gcc": "also start from gcc -O3's code (proven first, as every start)",
            "workers": "search in this many processes once the starts are proven (default 1;"
                       " the best of them wins)",
            "json": "write the result (schema metaos.evolution/1; a list with --auto) to FILE",
            "plot": "draw cost and instructions over time to FILE.png", "db": DB_HELP})
def evolve(c, ref=None, arch="x86_64", board=None, cpu=None, accel="auto", qemu_args="",
           seconds=None, seed=None, batches=None, auto=False, routines=None, vectors=None,
           from_gcc=False, workers=None, json=None, plot=None, db=None):
    """Evolve a routine for a board's found features, proven by Z3, measured beside gcc -O3.

    The features are those the board runs as their semantics say; the best program is
    measured in its guest beside today's lowering and gcc -O3 (cycles per call, loop
    overhead subtracted: a timed loop of calls less the same loop around an empty
    function, the median over pairs of passes; the latency likewise with each call
    waiting for the previous result; under TCG QEMU's counter, under KVM the
    silicon's, each code at four places in its cache line, and each candidate also
    padded with its return 32 bytes in).  gcc's code, proven by Z3 too, is kept unless
    an evolved program is lower in cycles per call and not higher in latency (by 5% and a
    Mann-Whitney U test at 1%), in two timings on different vectors; the one kept and
    gcc's are timed again for the figures shown, and
    the one kept is stored as an implementation."""
    from cli import arguments
    from cli.evolve import EvolveOptions, evolve_command

    options = EvolveOptions(
        board=arguments.board(arch, board, cpu, None, None, accel, qemu_args),
        seconds=arguments.number(seconds, "--seconds", minimum=0.1, default=60.0), ref=ref,
        auto=arguments.whole(routines, "--routines", minimum=1, default=5) if auto else None,
        seed=arguments.whole(seed, "--seed", default=0),
        batches=arguments.whole(batches, "--batches", minimum=1),
        vectors=arguments.whole(vectors, "--vectors", minimum=1, default=100),
        from_gcc=bool(from_gcc), db=db,
        workers=arguments.whole(workers, "--workers", minimum=1, default=1))
    evolve_command(options, arguments.output(json, "--json"), arguments.output(plot, "--plot"))


# -- the mutation market -----------------------------------------------------------------------

@task(help={"boards": "comma-separated board profiles: qemu64, haswell, rv64, rv64-nozb "
                      "(default: all four)",
            "seconds": "CPU-seconds this run may spend, all boards together (default 300)",
            "no_sharing": "boards see only their own experiments and adopt nothing",
            "json": "write the report (schema metaos.market/1) to FILE",
            "plot": "draw credits per board and CPU share per strategy to FILE.png",
            "routines": "comma-separated starter routines (default: p01..p25, sort3..sort5)",
            "seed": "the market's seed (Thompson draws; default 0)",
            "db": "database path (default $METAOS_DB or ./metaos.db); run again to resume"})
def market(c, boards="qemu64,haswell,rv64,rv64-nozb", seconds=None, no_sharing=False, json=None,
           plot=None, routines=None, seed=None, db=None):
    """The mutation market: boards stake credits on evolution experiments.

    Redundant experiments are refused, every outcome goes to the ledger, improvements are
    adopted after each board's own check."""
    from cli import arguments
    from cli.market import MarketOptions, market_command

    # numbers default to None, not to a number: invoke would parse them itself and a bad
    # one would end in its ValueError instead of a line naming the option
    options = MarketOptions(
        boards=arguments.names(boards, "--boards"),
        seconds=arguments.number(seconds, "--seconds", minimum=0.1, default=300.0),
        sharing=not no_sharing, seed=arguments.whole(seed, "--seed", default=0), db=db,
        routines=arguments.names(routines, "--routines") if routines is not None else None)
    market_command(options, arguments.output(json, "--json"), arguments.output(plot, "--plot"))


@task(name="market", help={"seconds": "CPU-seconds per market run (default 600; --quick 150)",
                           "runs": "runs of the synthetic allocation figure (default 100; "
                                   "--quick 30)",
                           "quick": "five routines (p01, p03, p16, p22, sort3), 150 CPU-s per "
                                    "run, 30 allocation runs: minutes instead of most of an hour",
                           "routines": "comma-separated starter routines (default all)",
                           "seed": "the market's seed, the same for both runs (default 0)",
                           "compare": "only show the last run's two reports side by side "
                                      "again (build/market-no-sharing.json, "
                                      "build/market-sharing.json)"})
def bench_market(c, seconds=None, runs=None, quick=False, routines=None, seed=None,
                 compare=False):
    """Market benchmark: four boards with and without sharing, and strategy allocation.

    CPU-seconds to the same best counts and redundant experiments, with and without
    sharing; the best strategy's CPU share after 30 experiments."""
    import sys
    from pathlib import Path

    from cli import arguments
    from cli.errors import UsageError

    if compare:
        from bench.market_bench import REPORTS

        missing = [name for name in REPORTS.values() if not (Path("build") / name).is_file()]
        if missing:
            raise UsageError(f"no report build/{missing[0]} to compare; run `./run bench "
                             "market` (or `--quick`) first, which writes both")
        c.run(f"{sys.executable} bench/market_bench.py --compare", pty=False)
        return
    argv = ["--quick"] if quick else []
    if seconds is not None:
        argv += ["--seconds", str(arguments.number(seconds, "--seconds", minimum=1.0))]
    if runs is not None:
        argv += ["--runs", str(arguments.whole(runs, "--runs", minimum=1))]
    if routines is not None:
        from cli.market import check_routines

        names = arguments.names(routines, "--routines")
        check_routines(names)
        argv += ["--routines", ",".join(names)]
    argv += ["--seed", str(arguments.whole(seed, "--seed", default=0))]
    c.run(" ".join([sys.executable, "bench/market_bench.py", *argv]), pty=False)


# -- the meta-motherboard ----------------------------------------------------

@task(iterable=["kill", "leave", "join", "decline"],
      help={"boards": "board specs, comma-separated: PROFILE[-kvm]:CPU, e.g. "
                      "q35:qemu64,q35:Haswell,q35-kvm:host,virt:rv64,virt:rv64-nozb "
                      "(a -kvm board only where /dev/kvm works)",
            "workload": "a workload file (JSON, schema metaos.workload/1) or a built-in: "
                        "stream, stream-small, graph, graph-long, graph-features, heft-paper "
                        "(default stream)",
            "liars": "make the last N boards liars (overstate speed 10x, 10% wrong answers, "
                     "leave and rejoin under new identities: in turn)",
            "kill": "BOARD@SECONDS: SIGKILL that board's QEMU then (repeatable)",
            "leave": "BOARD@SECONDS: that board leaves gracefully then (repeatable)",
            "join": "SPEC@SECONDS: start a new board then (repeatable)",
            "decline": "BOARD=ROUTINE[+ROUTINE]: the board declines those routines' tasks",
            "json": "write the run's record (schema metaos.motherboard/1) to FILE",
            "plot": "write trust over time and tasks per board to FILE.png",
            "calibration": "calibration runs per routine and implementation (default 10)",
            "seed": "seed of the motherboard's choices and the liars",
            "timeout": "seconds before giving up on outstanding tasks (default 600)",
            "db": "database whose ledger receives the payments (default $METAOS_DB or "
                  "./metaos.db)"})
def motherboard(c, boards="q35:qemu64,q35:Haswell,q35-kvm:host,virt:rv64,virt:rv64-nozb",
                workload="stream", liars=0, kill=None, leave=None, join=None, decline=None,
                json=None, plot=None, calibration=10, seed=0, timeout=600, db=None):
    """The meta-motherboard: live boards bid for a workload's tasks and earn trust.

    Boards onboard through discovery, are paid second-price, are checked by an oracle,
    and may leave at any time; a live table, --json and --plot."""
    from cli import arguments
    from cli.motherboard import motherboard_command

    motherboard_command(boards, workload, liars=arguments.whole(liars, "--liars", default=0),
                        kill=kill or (), leave=leave or (), join=join or (),
                        decline=decline or (), json_path=arguments.output(json, "--json"),
                        plot_path=arguments.output(plot, "--plot"),
                        calibration=arguments.whole(calibration, "--calibration", minimum=1,
                                                    default=10),
                        seed=arguments.whole(seed, "--seed", default=0),
                        timeout=arguments.number(timeout, "--timeout", minimum=1.0,
                                                 default=600.0), db=db)


@task(name="motherboard", help={"quick": "a shorter run (fewer tasks), for a first look",
                                 "json": "write B's graph, table (every run) and makespans here",
                                 "parts": "which parts to run, e.g. A or AD (default ABCD; D"
                                          " needs A)"})
def bench_motherboard(c, quick=False, json=None, parts=None):
    """Motherboard benchmark: every goal side by side, same seeds, one run."""
    import shlex
    import sys

    from cli import arguments

    chosen = arguments.letters(parts, "--parts", "ABCD") if parts is not None else ""
    arguments.output(json, "--json")
    c.run(f"{sys.executable} bench/motherboard_bench.py" + (" --quick" if quick else "")
          + (f" --json {shlex.quote(json)}" if json else "")
          + (f" --parts {chosen}" if chosen else ""), pty=False)


# -- the ledger --------------------------------------------------------------------------------

LEDGER_HELP = {"db": DB_HELP,
               "key": "the trusted public key, 64 hex digits (default: that of <db>.ledger-key)"}


@task(help={**LEDGER_HELP, "last": "how many of the last entries to show (default 10)"})
def ledger_show(c, db=None, key=None, last=None):
    """Size, latest signed head (and whether the trusted key signed it), the last entries."""
    from cli import arguments
    from cli import ledger as cli

    print(cli.show(db, key, arguments.whole(last, "--last", minimum=0, default=10)))


@task(help=LEDGER_HELP)
def ledger_verify(c, db=None, key=None):
    """Recompute every hash from the entries; check every signed head with the trusted key."""
    from cli import ledger as cli

    print(cli.verify(db, key))


@task(help={**LEDGER_HELP, "entry": "the entry's index (from 0)",
            "size": "prove against the tree of this many entries (default: the latest signed "
                    "head that covers the entry, else all entries)"})
def ledger_prove(c, entry, db=None, key=None, size=None):
    """Inclusion proof of ENTRY: its audit path to the signed root, checked (RFC 9162)."""
    from cli import ledger as cli

    print(cli.prove(entry, db, key, size))


@task(help={**LEDGER_HELP, "old": "the smaller tree size", "new": "the larger tree size"})
def ledger_consistency(c, old, new, db=None, key=None):
    """Consistency proof that the first OLD entries are a prefix of the first NEW (RFC 9162)."""
    from cli import ledger as cli

    print(cli.consistency(old, new, db, key))


# -- the namespace -----------------------------------------------------------------------------

def _group(name, *tasks_with_names, default=None):
    group = Collection(name)
    for t, task_name in tasks_with_names:
        group.add_task(t, name=task_name, default=task_name == default)
    return group


bench = _group("bench", (bench_boot, "boot"), (bench_probes, "probes"), (bench_sem, "sem"),
               (bench_evolve, "evolve"), (bench_ledger, "ledger"), (bench_market, "market"),
               (bench_motherboard, "motherboard"), default="boot")

sem = _group("sem", (sem_add, "add"), (sem_show, "show"), (sem_names, "names"),
             (sem_rename, "rename"), (sem_equiv, "equiv"), (sem_history, "history"),
             (sem_run, "run"))

ledger = _group("ledger", (ledger_show, "show"), (ledger_verify, "verify"),
                (ledger_prove, "prove"), (ledger_consistency, "consistency"))

ns = Collection(build, discover, demo, boot, console, test, probe, capabilities, bench, sem,
                ledger, evolve, market, motherboard)
