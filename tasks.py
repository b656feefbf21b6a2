"""MetaOS tasks.  Run them through ./run, which prepares the environment first:

    ./run demo          boot the default board and print what the machine is
    ./run test          the whole test suite (boot tests run under TCG)
    ./run --list        every task; ./run --help TASK for its options
"""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import Collection, Exit, task

BOARD_HELP = {
    "arch": "x86_64 (default) or riscv64",
    "board": "board profile: q35 (default for x86_64), pc, virt (riscv64)",
    "cpu": "QEMU CPU model (e.g. qemu64, Haswell, EPYC; rv64)",
    "smp": "number of CPUs",
    "memory": "RAM in MiB",
    "accel": "auto (kvm when /dev/kvm is usable and the CPU virtualizes in hardware, else tcg), "
             "tcg or kvm",
    "qemu_args": "extra QEMU arguments, appended verbatim (one shell-quoted string)",
}


def _arch(name):
    from arch import UnknownArch, by_name

    try:
        return by_name(name)
    except UnknownArch as error:
        raise Exit(f"error: {error}", code=2) from None


def _board(arch, board, cpu, smp, memory, accel, qemu_args):
    from qemu.boards import board as make_board
    from qemu.errors import BoardError

    arch = _arch(arch)
    name = board or arch.default_board
    try:
        chosen = make_board(name, cpu=cpu, smp=int(smp) if smp else None,
                            memory=int(memory) if memory else None, accel=accel,
                            qemu_args=qemu_args or None)
    except BoardError as error:
        raise Exit(f"error: {error}", code=2) from None
    if chosen.arch != arch and board:
        raise Exit(f"error: board {name!r} is {chosen.arch}, not {arch}: pass --arch {chosen.arch}",
                   code=2)
    return chosen


def _discover(chosen, on_frame=None, on_machine=None):
    """Build and boot; a failure ends the task with its full report, not a traceback."""
    from kernel.guest import build_guest
    from link.session import DiscoveryError, discover
    from qemu.errors import QemuError
    from toolchain.program import AssemblyError

    try:
        guest = build_guest(chosen.arch)
        return guest, discover(chosen, guest, on_frame=on_frame, on_machine=on_machine)
    except AssemblyError as error:
        raise Exit(f"build failed: {error}", code=1) from None
    except (DiscoveryError, QemuError) as error:
        raise Exit(f"discovery failed: {error}", code=1) from None


@task
def build(c, arch="x86_64"):
    """Assemble the guest for ARCH into build/ARCH (disk image and/or ELF with symbols)."""
    from kernel.guest import build_guest

    guest = build_guest(_arch(arch))
    for path in filter(None, (guest.image, guest.kernel, guest.elf)):
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
    import json as jsonlib

    from discovery.dumps import write_dump_dir
    from discovery.inventory import Inventory
    from discovery.report import render

    chosen = _board(arch, board, cpu, smp, memory, accel, qemu_args)
    truth: list = []
    on_machine = None
    if verify:
        from dataclasses import replace

        from qemu.groundtruth import query_pci

        chosen = replace(chosen, stay=True)

        def on_machine(machine, _run):
            truth.extend(query_pci(machine))

    _, run = _discover(chosen, on_machine=on_machine)
    inventory = Inventory.from_boot(run)
    if json == "-":
        print(jsonlib.dumps(inventory.to_json(), indent=2))
    else:
        render(inventory)
        if json:
            with open(json, "w") as out:
                jsonlib.dump(inventory.to_json(), out, indent=2)
            print(f"inventory written to {json}")
    if dump_dir:
        write_dump_dir(inventory, dump_dir)
        print(f"dumps written to {dump_dir} (lspci -F {dump_dir}/lspci.txt; "
              f"HWLOC_CPUID_PATH={dump_dir}/cpuid HWLOC_COMPONENTS=x86,-linux lstopo)")
    if verify:
        from discovery.verify import pci_differences

        differences = pci_differences(inventory.to_json()["pci"], truth)
        if differences:
            print("verify: the guest's PCI list differs from QMP query-pci:", file=sys.stderr)
            for line in differences:
                print("  " + line, file=sys.stderr)
            raise Exit(code=1)
        print(f"verify: the guest's {len(truth)} PCI functions equal QMP query-pci")


@task
def demo(c):
    """The main job: boot the default board (q35) and print its inventory."""
    discover(c)


@task(help={**BOARD_HELP, "hex": "also show every frame's body in hex"})
def boot(c, arch="x86_64", board=None, cpu=None, smp=None, memory=None, accel="auto",
         qemu_args="", hex=False):
    """Boot the board and show every decoded frame (sequence, type, summary)."""
    from kernel.guest import build_guest
    from link.describe import describe

    chosen = _board(arch, board, cpu, smp, memory, accel, qemu_args)
    symbolize = build_guest(chosen.arch).symbolize
    _, run = _discover(chosen, on_frame=lambda f: print(describe(f, symbolize, hex)))
    print(f"-- {len(run.frames)} frames, {run.crc_errors} CRC errors, {run.lost_frames} lost, "
          f"FINAL after {run.seconds:.3f} s, QEMU exit status {run.exit_status}")


@task(help={**BOARD_HELP, "hex": "show every frame's body in hex",
            "replay": "decode a raw serial capture (e.g. from -serial file:X) instead of booting"})
def console(c, arch="x86_64", board=None, cpu=None, smp=None, memory=None, accel="auto",
            qemu_args="", hex=False, replay=None):
    """Serial-console inspection: frames live as they arrive, CRC errors, symbolised addresses."""
    from contract.frames import FrameDecoder
    from kernel.guest import build_guest
    from link.describe import describe

    symbolize = build_guest(_arch(arch)).symbolize
    if replay:
        decoder = FrameDecoder()
        with open(replay, "rb") as capture:
            for frame in decoder.feed(capture.read()):
                print(describe(frame, symbolize, hex))
        if decoder.noise_text.strip():
            print("-- text outside frames:\n" + decoder.noise_text.strip())
        print(f"-- {decoder.frames} frames, {decoder.crc_errors} rejected, {decoder.lost} lost")
        return
    chosen = _board(arch, board, cpu, smp, memory, accel, qemu_args)
    _, run = _discover(chosen, on_frame=lambda f: print(describe(f, symbolize, hex), flush=True))
    if run.noise.strip():
        print("-- text outside frames:\n" + run.noise.strip())
    print(f"-- {len(run.frames)} frames, {run.crc_errors} rejected, {run.lost_frames} lost")


@task(help={"k": "only tests matching this pytest -k expression", "x": "stop at the first failure"})
def test(c, k="", x=False):
    """Check the layers (import-linter) and the lint (ruff), then run the whole test suite
    (pytest; boot tests run QEMU under TCG)."""
    from shlex import join

    bin_dir = Path(sys.executable).parent
    c.run(join([str(bin_dir / "lint-imports"), "--no-cache"]), pty=False)
    args = [sys.executable, "-m", "pytest", "-q"]
    if k:
        args += ["-k", k]
    if x:
        args.append("-x")
    c.run(join(args), pty=False)


@task(help={"arch": "x86_64 (default) or riscv64", "runs": "boots per measurement"})
def bench_boot(c, arch="x86_64", runs=10):
    """Boot benchmark: median QEMU-start-to-FINAL next to the floor measured in the same run."""
    from bench.boot_bench import main

    main(_arch(arch), int(runs))


@task(name="probes")
def bench_probes(c):
    """Probe benchmark: vetting rate, discovery candidates/s, end-to-end probes/s."""
    c.run(f"{sys.executable} bench/probes_bench.py", pty=False)


@task(name="evolve", help={
    "budget": "seconds per routine p01-p25 (default 60)",
    "sort_budget": "seconds per sort (default 600, on both cores)",
    "until_goal": "stop a routine once it meets its goal (gcc's count, or the issue's)",
    "target": "one goal board (default: all four), e.g. 'x86-64 qemu64'",
    "routine": "one routine (default: p01-p25, sort3-5)",
    "rate_only": "only the evaluation-rate figures"})
def bench_evolve(c, budget=60, sort_budget=600, until_goal=False, target=None, routine=None,
                 rate_only=False):
    """Evolution benchmark: candidate evaluations/s beside the interpreter's, and every
    routine's instruction count on every goal board beside gcc's."""
    from shlex import join

    args = [sys.executable, "bench/evolve_bench.py", "--budget", str(budget),
            "--sort-budget", str(sort_budget)]
    args += ["--until-goal"] * bool(until_goal) + ["--rate-only"] * bool(rate_only)
    args += ["--target", target] if target else []
    args += ["--routine", routine] if routine else []
    c.run(join(args), pty=False)


@task(name="sem")
def bench_sem(c):
    """Semantic-core benchmark: hashing/storing 100,000 routines, show latency, lowering."""
    c.run(f"{sys.executable} bench/sem_bench.py", pty=False)


@task(name="ledger", help={"entries": "ledger size for the proof and verify figures "
                                       "(default 1,000,000)"})
def bench_ledger(c, entries=1_000_000):
    """Ledger benchmark: appends/s (signed heads every 1,000), proof time and verify time."""
    c.run(f"{sys.executable} bench/ledger_bench.py --entries {int(entries)}", pty=False)


# -- probing -----------------------------------------------------------------

@task(help={**BOARD_HELP,
            "family": "probe family: cpuid, msr (x86_64); csr (riscv64); isa, memlat, timing, "
                      "random (both)",
            "sequence": "timing family: the instructions to measure, e.g. 'imul rax, rax' "
                        "(x86_64, Intel syntax) or 'mul t0, t0, t0' (riscv64)",
            "budget": "instruction budget of every probe (default: the family's own)",
            "json": "also write the summary and every result to this JSON file",
            "db": "capability store (default $METAOS_DB or ./metaos.db)",
            "limit": "run at most this many probes of the family",
            "unsafe_unvetted": "skip the vetter and send unvetted user code "
                               "(testing containment only)",
            "line": "console (default: a virtio console beside the serial port) or serial "
                    "(the serial port discovery used)",
            "line_faults": "test option: drop and flip bytes on the probe line, each at this rate"})
def probe(c, family, arch="x86_64", board=None, cpu=None, smp=None, memory=None, accel="auto",
          qemu_args="", budget=None, json=None, db=None, limit=None, unsafe_unvetted=False,
          line_faults=None, line="console", sequence=None):
    """Run a probe family: vetted in Unicorn, run in the guest, stored per hardware fingerprint."""
    from cli.probe import probe_command
    from link.line_faults import LineFaults

    chosen = _board(arch, board, cpu, smp, memory, accel, qemu_args)
    faults = LineFaults(float(line_faults), float(line_faults)) if line_faults else None
    status = probe_command(chosen, family, budget=int(budget) if budget else None, json_path=json,
                           db=db, limit=int(limit) if limit else None,
                           unsafe_unvetted=unsafe_unvetted, faults=faults, sequence=sequence,
                           line=line)
    if status:
        raise Exit(code=status)


@task(help={"db": "capability store (default $METAOS_DB or ./metaos.db)"})
def capabilities(c, db=None):
    """List what the capability store knows, per hardware fingerprint."""
    from cli.probe import capabilities_command

    status = capabilities_command(db)
    if status:
        raise Exit(code=status)


# -- the semantic core -------------------------------------------------------

@task(help={"file": "a Python file defining routines with @routine (sem.ir)",
            "db": "database path (default $METAOS_DB or ./metaos.db)"})
def sem_add(c, file, db=None):
    """Store every routine defined in FILE; print each one's ID and name."""
    from cli import sem as cli

    print(cli.add(file, db))


@task(help={"ref": "ID (unique prefix), NAMESPACE:NAME or NAME",
            "view": "c | semantic | smtlib | asm", "arch": "x86_64 | riscv64 (for --view asm)",
            "db": "database path"})
def sem_show(c, ref, view="semantic", arch="x86_64", db=None):
    """Show one view of a routine."""
    from cli import sem as cli

    print(cli.show(ref, view, _arch(arch), db))


@task(help={"ref": "ID (unique prefix), NAMESPACE:NAME or NAME", "db": "database path"})
def sem_names(c, ref, db=None):
    """List a routine's names, full ID and equivalence class."""
    from cli import sem as cli

    print(cli.names(ref, db))


@task(help={"old": "NAMESPACE:NAME (or NAME)", "new": "NAMESPACE:NAME (or NAME: same namespace)",
            "db": "database path"})
def sem_rename(c, old, new, db=None):
    """Move a name to another; the routine and its ID are untouched."""
    from cli import sem as cli

    print(cli.rename(old, new, db))


@task(help={"a": "routine A", "b": "routine B", "db": "database path"})
def sem_equiv(c, a, b, db=None):
    """Prove A and B equivalent with Z3 (B joins A's class) or print a counterexample."""
    from cli import sem as cli

    print(cli.equiv(a, b, db))


@task(help={"ref": "ID (unique prefix), NAMESPACE:NAME or NAME", "db": "database path"})
def sem_history(c, ref, db=None):
    """Implementations per architecture and performance history per hardware."""
    from cli import sem as cli

    print(cli.history(ref, db))


@task(help={**BOARD_HELP, "ref": "ID (unique prefix), NAMESPACE:NAME or NAME",
            "vectors": "input vectors to run (edge cases first, then random); default 100",
            "db": "database path"})
def sem_run(c, ref, arch="x86_64", board=None, cpu=None, smp=None, memory=None, accel="auto",
            qemu_args="", vectors=100, db=None):
    """Run a routine as probes on a board: each answer checked against the interpreter,
    cycles recorded."""
    from cli import sem as cli

    chosen = _board(arch, board, cpu, smp, memory, accel, qemu_args)
    try:
        print(cli.run(ref, chosen, int(vectors), db))
    except cli.BoardDisagrees as error:
        raise Exit(f"error: {error}", code=1) from None


# -- the mutation market -----------------------------------------------------

@task(help={"boards": "comma-separated board profiles: qemu64, haswell, rv64, rv64-nozb "
                      "(default: all four)",
            "seconds": "CPU-seconds this run may spend, all boards together (default 300)",
            "no_sharing": "boards see only their own experiments and adopt nothing",
            "json": "write the report (schema metaos.market/1) to FILE",
            "plot": "draw credits per board and CPU share per strategy to FILE.png",
            "routines": "comma-separated starter routines (default: p01..p25, sort3..sort5)",
            "seed": "the market's seed (Thompson draws)",
            "db": "database path (default $METAOS_DB or ./metaos.db); run again to resume"})
def market(c, boards="qemu64,haswell,rv64,rv64-nozb", seconds=300, no_sharing=False, json=None,
           plot=None, routines=None, seed=0, db=None):
    """The mutation market: boards stake credits on experiments, redundant ones are refused,
    every outcome goes to the ledger, improvements are adopted after each board's own check."""
    from cli.market import MarketOptions, market_command

    options = MarketOptions(
        boards=tuple(b.strip() for b in boards.split(",") if b.strip()), seconds=float(seconds),
        sharing=not no_sharing, seed=int(seed), db=db,
        routines=tuple(r.strip() for r in routines.split(",")) if routines else None)
    status = market_command(options, json, plot)
    if status:
        raise Exit(code=status)


@task(name="market", help={"seconds": "CPU-seconds per market run (default 600)",
                           "runs": "runs of the synthetic allocation figure (default 100)"})
def bench_market(c, seconds=600, runs=100):
    """Market benchmark: the four boards with and without sharing (CPU-seconds to the same
    best counts, redundant experiments), and strategy allocation after 30 experiments."""
    c.run(f"{sys.executable} bench/market_bench.py --seconds {float(seconds)} --runs {int(runs)}",
          pty=False)


# -- the ledger --------------------------------------------------------------

LEDGER_HELP = {"db": "database path (default $METAOS_DB or ./metaos.db)",
               "key": "the trusted public key, 64 hex digits (default: that of <db>.ledger-key)"}


def _ledger(command):
    """Print what a cli.ledger function returns; its errors end the task in one line."""
    from cli import ledger as cli
    from stores.ledger import LedgerError

    try:
        print(command(cli))
    except cli.CheckFailed as error:
        raise Exit(f"ledger: {error}", code=1) from None
    except LedgerError as error:
        raise Exit(f"error: {error}", code=2) from None


@task(help={**LEDGER_HELP, "last": "how many of the last entries to show (default 10)"})
def ledger_show(c, db=None, key=None, last=10):
    """Size, latest signed head (and whether the trusted key signed it), the last entries."""
    _ledger(lambda cli: cli.show(db, key, last))


@task(help=LEDGER_HELP)
def ledger_verify(c, db=None, key=None):
    """Recompute every hash from the entries; check every signed head with the trusted key."""
    _ledger(lambda cli: cli.verify(db, key))


@task(help={**LEDGER_HELP, "entry": "the entry's index (from 0)",
            "size": "prove against the tree of this many entries (default: the latest signed "
                    "head that covers the entry, else all entries)"})
def ledger_prove(c, entry, db=None, key=None, size=None):
    """Inclusion proof of ENTRY: its audit path to the signed root, checked (RFC 9162)."""
    _ledger(lambda cli: cli.prove(entry, db, key, size))


@task(help={**LEDGER_HELP, "old": "the smaller tree size", "new": "the larger tree size"})
def ledger_consistency(c, old, new, db=None, key=None):
    """Consistency proof that the first OLD entries are a prefix of the first NEW (RFC 9162)."""
    _ledger(lambda cli: cli.consistency(old, new, db, key))


def _collection(name, *tasks_with_names):
    group = Collection(name)
    for t, task_name in tasks_with_names:
        group.add_task(t, name=task_name)
    return group


bench = Collection("bench")
bench.add_task(bench_boot, name="boot", default=True)
bench.add_task(bench_probes)
bench.add_task(bench_sem)
bench.add_task(bench_evolve)
bench.add_task(bench_ledger)
bench.add_task(bench_market)

sem = _collection("sem", (sem_add, "add"), (sem_show, "show"), (sem_names, "names"),
                  (sem_rename, "rename"), (sem_equiv, "equiv"), (sem_history, "history"),
                  (sem_run, "run"))

ledger = _collection("ledger", (ledger_show, "show"), (ledger_verify, "verify"),
                     (ledger_prove, "prove"), (ledger_consistency, "consistency"))

ns = Collection(build, discover, demo, boot, console, test, probe, capabilities, bench, sem,
                ledger, market)
