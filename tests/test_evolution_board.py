"""Evolution on a live board (QEMU, TCG): the features come from what the board runs,
not from its claims alone, and `./run evolve`'s work (cli/evolve.py) keeps only proven
code, measured in the guest and stored with its evidence.

Independent truths: QEMU's CPU models (rv64 with Zba/Zbb/Zbs turned off runs none of
them; qemu64 has no ABM, so `lzcnt` decodes as `bsr` there), Z3 (the stored program is
proven again here from its text), the assembler (the stored bytes are that text's), and
the interpreter (the guest's answers)."""

from __future__ import annotations

import json
import statistics

import pytest
from scipy.stats import mannwhitneyu

from cli import arguments
from cli.evolve import EVOLUTION, EvolveOptions, plot, run_evolution
from evolution.board_features import claimed_features, find_features
from evolution.program import assemble, parse
from evolution.proof import prove
from evolution.registry import ISAS
from probes.timed_calls import REPEATS_PER_PROBE, WARMUP_PAIRS
from sem.library import hackers_delight as hd
from sem.store import SemStore
from sem.views.asm import disassemble
from stores.db import connect

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(300)]


def _finding(isa_name: str, profile: str, cpu: str, claims: frozenset[str] | None = None):
    from discovery.inventory import Inventory
    from kernel.guest import build_guest
    from link.qemu_link import QemuLink
    from qemu.boards import board

    isa = ISAS[isa_name]
    with QemuLink(board(profile, cpu=cpu, accel="tcg"), build_guest(isa.arch)) as link:
        own = claimed_features(isa, Inventory.from_boot(link.first_boot))
        return own, find_features(isa, own if claims is None else claims, link)


def test_claimed_extensions_the_board_does_not_run_are_not_found():
    """Zba/Zbb/Zbs claimed for a board that has them turned off: its probes fault, so
    they are not found (and its own riscv,isa does not claim them)."""
    zb = frozenset({"zba", "zbb", "zbs"})
    own, finding = _finding("riscv64", "virt", "rv64,zba=false,zbb=false,zbc=false,zbs=false",
                            claims=frozenset({"m"}) | zb)
    assert own == {"m"}
    assert finding.found == {"m"}
    assert finding.claimed_failing == zb
    assert finding.probes > 300


def test_lzcnt_is_not_found_where_it_runs_as_bsr():
    own, finding = _finding("x86_64", "q35", "qemu64")
    assert "lzcnt" not in own and "lzcnt" not in finding.working
    # every lzcnt form disagreed, none faulted: the bytes ran, as another instruction
    lzcnt = [line for line in finding.failing if line.startswith("lzcnt")]
    assert lzcnt and not any("did not run" in line for line in lzcnt)
    assert finding.found == frozenset()


def test_evolve_on_rv64_keeps_a_proven_program_measured_in_the_guest(tmp_path):
    db = str(tmp_path / "metaos.db")
    options = EvolveOptions(board=arguments.board("riscv64", "virt", "rv64", accel="tcg"),
                            seconds=1.0, ref="p01", seed=3, batches=1, vectors=20, db=db)
    progress, sessions = [], []
    (outcome,) = run_evolution(options, on_batch=progress.append,
                               on_ready=lambda session, plan: sessions.append(session))
    d = json.loads(json.dumps(outcome.document))
    assert d["schema"] == EVOLUTION and d["name"] == "p01"
    assert {"routine", "name", "target", "baseline", "gcc", "best", "history",
            "candidates_per_second"} <= set(d)
    assert {"arch", "cpu", "fingerprint", "features"} <= set(d["target"])
    assert {"code", "instructions", "asm", "proof", "cycles"} <= set(d["best"])
    assert d["target"]["found"] == ["m", "zba", "zbb", "zbs"]  # QEMU 7.2's rv64 has them
    isa = ISAS["riscv64"]
    program = parse(isa, d["best"]["asm"])
    assert prove(isa, hd.p01, program).proven
    code = bytes.fromhex(d["best"]["code"])
    # gcc's bytes where the guest kept its code (rv64gc's are compressed), else the text's
    assert code == bytes.fromhex(d["gcc"]["code"]) if d["choice"]["chosen"] == "gcc" else \
        assemble(isa, program, frozenset(isa.features)) == code
    # the return included; the bytes are the text's (capstone does not decode Zbb's
    # andn, which the search's programs for p01 use: x & ~-x)
    assert d["best"]["instructions"] == program.instructions
    shortest = parse(isa, d["shortest"]["asm"])
    assert assemble(isa, shortest, frozenset(isa.features)).hex() == d["shortest"]["code"]
    assert d["shortest"]["instructions"] == shortest.instructions
    if d["choice"]["chosen"] != "gcc":  # gcc's code may be shorter than a 1-s search's best
        assert shortest.instructions <= d["best"]["instructions"]
    for name in ("best", "baseline", "gcc"):  # cycles per call (TCG: not exact, no sign)
        for figure in ("cycles", "latency"):
            low, high = d[name][f"{figure}_spread"]
            assert low <= d[name][figure] <= high, (name, figure)
    assert d["gcc"]["instructions"] >= 1
    # beside gcc's code, the kept proven program within gcc's count nearest to it on its
    # worse figure is put against it (fitness.nearest); every one proven, here again
    shortest, choice = d["shortest"], d["choice"]
    assert prove(isa, hd.p01, parse(isa, shortest["asm"])).proven
    assert all(c["instructions"] <= d["gcc"]["instructions"] for c in choice["candidates"])
    assert choice["padded"] == []  # TCG runs its own translation: padding only costs there
    # gcc's p01 is proven: an evolved code stands against it only where, in the timing
    # that chose, it was lower in cycles per call and not higher in latency, each by 5% of
    # the median and a one-sided Mann-Whitney U test at 1% over the pairs of passes
    # (fitness.against), and did so again timed beside it on fresh vectors
    # (fitness.replicate); best's and gcc's figures above are one more timing
    first = choice["first_timing"]
    ours, theirs, evolved = first["best"], first["gcc"], first["evolved"]

    def lower(a: dict, b: dict, figure: str) -> bool:
        return a[figure] <= 0.95 * b[figure] and mannwhitneyu(
            a[f"{figure}_pairs"], b[f"{figure}_pairs"], alternative="less").pvalue < 0.01

    for run in (ours, theirs, evolved):  # the medians are the pairs' (each probe's warm-up
        assert run["cycles"] == statistics.median(run["cycles_pairs"])  # pair dropped)
    def beats(a: dict, b: dict) -> bool:
        return lower(a, b, "cycles") and not lower(b, a, "latency")

    again = choice["replication"]  # timed again only where the first timing chose ours
    assert (again is not None) == beats(evolved, theirs)
    if choice["chosen"] == "gcc":
        assert d["best"]["instructions"] == d["gcc"]["instructions"]
        assert d["best"]["code"] == d["gcc"]["code"]
        assert again is None or not beats(again["evolved"], again["gcc"])
    else:
        assert evolved == ours and beats(again["evolved"], again["gcc"])
    if choice["chosen"] == "shortest":
        assert d["best"]["code"] == shortest["code"]
    elif choice["chosen"] == "kept":
        assert d["best"]["asm"] in [c["asm"] for c in choice["candidates"]]
    assert progress and progress[-1].proofs >= 1
    store = SemStore(connect(db))
    (impl,) = [i for i in store.implementations(d["routine"], isa.arch) if i.code == code]
    evidence = store.evidence(impl.id)
    assert evidence.verdict.startswith("z3: equivalent at full width")
    assert len(json.loads(evidence.vectors)["training"]) >= 16
    measured = [m for m in store.performance(d["routine"]) if m.implementation_id == impl.id]
    pairs = REPEATS_PER_PROBE - WARMUP_PAIRS  # one timed probe carries the 20 vectors
    assert [(m.accelerator, m.fingerprint.hex(), m.metric, m.samples) for m in measured] == [
        ("tcg", d["target"]["fingerprint"], "cycles per call", pairs)]
    # the feature probes are filed under the board's fingerprint in the capability store
    from probes.store import CapabilityStore

    (summary,) = CapabilityStore(db).capabilities()
    assert sum(summary.by_family["evolution-semantics"].values()) == sessions[0].finding.probes
    # and so are the timing probes of the performance model, all run on this board
    timing = sessions[0].timing
    assert timing.reused == 0 and timing.measured > 0
    assert summary.by_family["timing"] == {"returned": timing.probes}
    assert d["performance_model"]["forms_measured"] == timing.measured
    assert f"`{isa.cycle_form}`" in d["performance_model"]["unit"]
    assert timing.model.source.startswith(f"measured on {sessions[0].fingerprint.label}")
    plot([d], str(tmp_path / "p01.png"))
    assert (tmp_path / "p01.png").stat().st_size > 1000

    # --auto on the same board: the routine with the most recorded runs there comes first
    # (p02: 500 runs recorded here on this board; p01: the best's and the lowering's
    # figures above, each over `pairs` pairs of passes;
    # p03: 10,000 runs on another board, which do not count)
    from sem.implement import implement
    from stores.fingerprint import Fingerprint

    here = sessions[0].fingerprint
    elsewhere = Fingerprint(isa.arch, "virt", (("misa", 1),))
    for name, spec, hardware, runs in (("p02", hd.p02, here, 500),
                                       ("p03", hd.p03, elsewhere, 10_000)):
        vetted = implement(spec, isa.arch, vectors=50)
        impl_id = store.add_implementation(store.resolve(name), isa.arch, vetted.code,
                                           vetted.assembly, vetted.established)
        store.record_performance(impl_id, hardware, "cycles", 1.0, runs, "tcg")
    plans = []
    auto = EvolveOptions(board=options.board, seconds=1.0, auto=2, seed=3, batches=1,
                         vectors=5, db=db)
    outcomes = run_evolution(auto, on_ready=lambda session, plan: (plans.append(plan),
                                                                   sessions.append(session)))
    assert [(name, runs) for _, name, runs in plans[0]] == [("p02", 500), ("p01", 2 * pairs)]
    # the second session on this fingerprint (same seed) took every feature case and
    # timing from the store: none ran again, and it found the same features
    again = outcomes[0].document["performance_model"]
    assert again["reused_from_store"] == again["probes"] == timing.probes
    assert sessions[1].finding.reused == sessions[1].finding.probes == sessions[0].finding.probes
    assert sessions[1].finding.found == sessions[0].finding.found
    (summary,) = CapabilityStore(db).capabilities()
    assert summary.by_family["timing"] == {"returned": timing.probes}
    assert sum(summary.by_family["evolution-semantics"].values()) == sessions[0].finding.probes
    assert [o.document["name"] for o in outcomes] == ["p02", "p01"]


# what the search finds on rv64 without Zb* (tests/test_evolution_search.py): branch moves
# for p16 and p21, and p09's product
BRANCHING = [
    (hd.p16, "blt a1, a0, 1f; mv a0, a1; 1:\nret\n", 3),
    (hd.p21, "bne a0, a3, 1f; mv a3, a1; 1:\nxor t3, a0, a1\n"
             "bne t3, zero, 1f; mv a3, a2; 1:\naddiw a0, a3, 0\nret\n", 7),
    (hd.p09, "mulhu a1, a0, a0\nsubw a0, a0, a1\nret\n", 3)]


def test_branch_moves_run_in_the_guest_as_proven():
    """The branching programs, proven by Z3, run in the guest (rv64 without Zb*, TCG) on
    200 vectors each, every answer the interpreter's; their instruction counts are
    capstone's."""
    from evolution.fitness import run_in_guest
    from kernel.guest import build_guest
    from link.qemu_link import QemuLink
    from probes.campaign import Campaign
    from probes.run import POLICY
    from qemu.boards import board

    isa = ISAS["riscv64"]
    codes = []
    for spec, source, count in BRANCHING:
        program = parse(isa, source)
        assert prove(isa, spec, program).proven
        codes.append((spec, assemble(isa, program)))
        assert program.instructions == len(disassemble(isa.arch, codes[-1][1])) == count
    profile = board("virt", cpu="rv64,zba=false,zbb=false,zbc=false,zbs=false", accel="tcg")
    with QemuLink(profile, build_guest(isa.arch)) as link:
        campaign = Campaign(link, POLICY)  # one for the link: its runs are numbered once
        for spec, code in codes:
            (run,) = run_in_guest(link, isa, spec, {"best": code}, 200, seed=5,
                                  campaign=campaign).values()
            assert run.ok and run.vectors == 200, run.detail
