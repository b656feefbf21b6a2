"""The choice among proven programs timed in the guest (evolution/fitness.py, fastest):
the shortest stays unless another is faster beyond the quartiles measured, by latency
where that figure exists, else cycles per call; then gcc's code, proven too, is chosen
unless an evolved one is lower in cycles per call and not higher in latency, by 5% of the
median and a one-sided Mann-Whitney U test at 1% (against).  Checked on figures whose quartiles are
computed here by hand, and on QEMU with `-icount shift=0`, where a straight-line code of
n instructions measures exactly n - 1 per call (tests/test_timed_calls.py): there two
proven p03 programs of 3 and 4 instructions measure 2 and 3 cycles, 1 and 2 of latency."""

from __future__ import annotations

from dataclasses import replace

import pytest

from evolution.fitness import Choice, FitnessRun, against, choose, fastest, nearest
from probes.timed_calls import CallCycles


def run(cycles: list[float], latency: list[float] | None, agreed: int = 10) -> FitnessRun:
    return FitnessRun(10, agreed, CallCycles(tuple(cycles)), "",
                      CallCycles(tuple(latency)) if latency is not None else None)


# p03 under this host's KVM, as measured (ticks): ours 3 instructions, gcc's shape 4
SLOW_SHORT = run([2.0, 2.1, 2.0, 2.2, 2.1], [2.7, 2.8, 2.79, 2.9, 2.75])
FAST_LONG = run([2.0, 2.05, 2.1, 2.0, 2.1], [1.4, 1.43, 1.45, 1.41, 1.5])
COUNTS = {"short": 3, "long": 4}


def test_a_longer_program_faster_beyond_the_quartiles_is_chosen():
    choice = fastest({"short": SLOW_SHORT, "long": FAST_LONG}, COUNTS, "short")
    assert (choice.name, choice.figure) == ("long", "latency")
    assert "1.43" in choice.reason and "2.79" in choice.reason


def test_the_shortest_stays_when_the_other_is_faster_only_within_the_quartiles():
    # medians 2.79 and 2.7, but the other's upper quartile (2.85) is above 2.75
    close = run([2.0] * 5, [2.6, 2.7, 2.85, 2.9, 2.65])
    choice = fastest({"short": SLOW_SHORT, "long": close}, COUNTS, "short")
    assert choice.name == "short" and "beyond the quartiles" in choice.reason


def test_faster_in_latency_but_slower_in_cycles_by_more_than_that_is_not_chosen():
    # latency gains 2.79 - 1.43 = 1.36; cycles lose 3.5 - 2.1 = 1.4 beyond the quartiles
    slow_calls = replace(FAST_LONG, cycles=CallCycles((3.5, 3.6, 3.7, 3.5, 3.6)))
    assert fastest({"short": SLOW_SHORT, "long": slow_calls}, COUNTS, "short").name == "short"
    # qemu64 p23 under KVM: 9.5% less latency (9.88 -> 8.94) for 18% more cycles per call
    # (2.11 -> 2.49): the shares are compared, not the ticks
    p23_short = run([2.10, 2.11, 2.13, 2.11, 2.10], [9.88, 9.81, 9.88, 9.88, 9.81])
    p23_kept = run([2.49, 2.49, 2.64, 2.49, 2.55], [8.94, 8.90, 8.99, 8.94, 8.90])
    assert fastest({"short": p23_short, "long": p23_kept}, COUNTS, "short").name == "short"
    # a step slower in cycles with no spread (2.08 against 2.10): latency decides
    step = replace(FAST_LONG, cycles=CallCycles((2.13,) * 5))
    assert fastest({"short": SLOW_SHORT, "long": step}, COUNTS, "short").name == "long"


def test_as_fast_in_latency_and_faster_in_cycles_beyond_the_quartiles_is_chosen():
    # qemu64 p14 under KVM: the shortest 1.97 [1.91-2.06] per call, a kept program of the
    # same length 1.84 [1.82-1.85], alike in latency
    short = run([1.91, 1.97, 2.06, 1.95, 2.0], [1.43, 1.41, 1.58, 1.43, 1.45])
    kept = run([1.82, 1.84, 1.85, 1.84, 1.83], [1.43, 1.36, 1.45, 1.43, 1.43])
    choice = fastest({"short": short, "kept": kept}, {"short": 5, "kept": 5}, "short")
    assert (choice.name, choice.figure) == ("kept", "cycles") and "1.84" in choice.reason
    # a step slower in latency's median: not as fast, the shortest stays
    later = replace(kept, latency=CallCycles((1.5, 1.5, 1.5, 1.5, 1.5)))
    assert fastest({"short": short, "kept": later}, {"short": 5, "kept": 5}, "short").name \
        == "short"


def test_beside_gccs_code_the_program_nearest_to_it_on_its_worse_figure_is_chosen():
    # qemu64 p12 under KVM: the shortest 0.68 below gcc's latency but 0.11 above its cycles
    # per call; a kept program of 6, 0.01 above gcc's cycles and 0.71 below its latency
    gcc = run([1.84, 1.82, 1.84, 1.86, 1.84], [3.54, 3.51, 3.58, 3.54, 3.54])
    short = run([1.86, 1.95, 2.0, 1.95, 1.88], [2.86, 2.78, 2.92, 2.86, 2.86])
    kept = run([1.82, 1.85, 1.91, 1.91, 1.84], [2.79, 2.86, 2.83, 2.86, 2.83])
    runs, counts = {"best": short, "kept 0": kept, "gcc": gcc}, {"best": 6, "kept 0": 6}
    assert fastest(runs, counts, "best").name == "best"  # latency alike, cycles within
    choice = nearest(runs, counts, "best", "gcc")
    assert (choice.name, choice.figure) == ("kept 0", "cycles") and "+0.01" in choice.reason
    # gcc's code, proven, stays: 0.71 less latency is no gain where cycles per call are
    # gcc's (fitness.against), and it is kept 0 that was put against it
    chosen = choose(runs, counts, "best", "gcc", proven=True)
    assert (chosen.name, chosen.evolved) == ("gcc", "kept 0")
    assert "not faster in cycles per call" in chosen.reason
    # an equal worst excess: the smaller sum, then the fewer instructions
    assert nearest({**runs, "kept 1": kept}, {**counts, "kept 1": 5}, "best", "gcc").name \
        == "kept 1"
    # a code that answered wrong is never the nearest
    wrong = replace(kept, agreed=9)
    assert nearest({**runs, "kept 0": wrong}, counts, "best", "gcc").name == "best"


def test_without_latency_cycles_decide_and_a_wrong_code_is_never_chosen():
    short, long = replace(SLOW_SHORT, latency=None), run([1.0, 1.1, 1.0, 1.05, 1.0], None)
    choice = fastest({"short": short, "long": long}, COUNTS, "short")
    assert (choice.name, choice.figure) == ("long", "cycles")
    wrong = replace(long, agreed=9)
    assert fastest({"short": short, "long": wrong}, COUNTS, "short").name == "short"


def test_of_several_faster_ones_the_lowest_median_then_the_fewest_instructions():
    a = run([2.0] * 5, [1.0, 1.1, 1.0, 1.1, 1.0])
    b = run([2.0] * 5, [1.0, 1.1, 1.0, 1.1, 1.0])
    runs = {"short": SLOW_SHORT, "a": a, "b": b}
    assert fastest(runs, {"short": 3, "a": 5, "b": 4}, "short").name == "b"
    assert fastest(runs, {"short": 3, "a": 4, "b": 4}, "short").name == "a"


# qemu64 p16 under this host's KVM (ticks), three runs of four: ours `cmp; cmovl edi, esi;
# mov eax, edi`, gcc's `cmp; mov eax, esi; cmovge eax, edi`, alike in latency
P16_OURS = run([1.93, 1.95, 1.97, 1.95, 1.89], [1.43, 1.43, 1.5, 1.43, 1.45])
P16_GCC = run([1.82, 1.84, 1.85, 1.83, 1.84], [1.43, 1.36, 1.43, 1.43, 1.43])


def test_gccs_code_is_chosen_unless_ours_is_faster_in_cycles_and_not_slower_in_latency():
    """fitness.against: lower in cycles per call by 5% of gcc's median and by a one-sided
    Mann-Whitney U test at 1% (exact here: five figures a side, all of ours below all of
    gcc's, p = 1/252 + ties), and not higher in latency by the same test."""
    ours = Choice("best", "latency", "the shortest")
    # slower in cycles per call (1.95 against 1.84)
    moved = against({"best": P16_OURS, "gcc": P16_GCC}, ours, "gcc")
    assert moved.name == "gcc" and "1.95" in moved.reason
    assert moved.evolved == "best"  # the one gcc's code was chosen over
    # alike on both figures: a tie is no gain, the compiler's code stays
    assert against({"best": P16_GCC, "gcc": P16_GCC}, ours, "gcc").name == "gcc"
    # less latency beyond the quartiles (1.43 against 2.15), cycles per call within them
    # (1.89 [1.85-1.95] against 1.84 [1.84-1.95], qemu64 p14): a gain in latency alone,
    # gcc's code stays
    p14 = run([1.85, 1.89, 1.95, 1.89, 1.85], [1.43, 1.41, 1.43, 1.5, 1.43])
    p14_gcc = run([1.84, 1.84, 1.95, 1.84, 1.90], [2.15, 2.08, 2.15, 2.15, 2.16])
    assert against({"best": p14, "gcc": p14_gcc}, ours, "gcc").name == "gcc"
    # fewer cycles per call (1.83 against 1.95: 6% less, every figure below gcc's), the
    # latency alike: ours stands
    fast = run([1.82, 1.84, 1.80, 1.84, 1.83], [1.43, 1.43, 1.5, 1.43, 1.45])
    stands = against({"best": fast, "gcc": P16_OURS}, ours, "gcc")
    assert (stands.name, stands.evolved) == ("best", "best")
    # the same gain in cycles with a loss in latency: gcc's stays
    slow = replace(fast, latency=CallCycles((2.2, 2.3, 2.2, 2.25, 2.2)))
    lost = against({"best": slow, "gcc": P16_OURS}, ours, "gcc")
    assert lost.name == "gcc" and "slower in latency" in lost.reason
    # a gain of 3% is none, however clear (Haswell p04: gcc's own code 2.16 then 2.10)
    near = run([1.89, 1.89, 1.90, 1.89, 1.88], [1.43, 1.43, 1.5, 1.43, 1.45])
    assert against({"best": near, "gcc": P16_OURS}, ours, "gcc").name == "gcc"
    # gcc's figures spread wide over the placements, ours all at its lowest (qemu64 p22:
    # 2.10-2.81 against 2.09-2.15): the quartiles overlap, the gain is real (30 pairs a
    # side, as a KVM timing pools 32)
    wide = run([2.10, 2.09, 2.81, 2.49, 2.80, 2.10, 2.78, 2.60, 2.11, 2.75] * 3,
               [7.7, 7.74, 7.8, 7.74, 7.7, 7.74, 7.8, 7.74, 7.7, 7.74] * 3)
    tight = run([2.10, 2.09, 2.15, 2.10, 2.12, 2.09, 2.10, 2.14, 2.10, 2.11] * 3,
                [3.58, 3.51, 3.58, 3.58, 3.51, 3.58, 3.58, 3.51, 3.58, 3.58] * 3)
    assert tight.cycles.spread[1] >= wide.cycles.spread[0]
    assert against({"best": tight, "gcc": wide}, ours, "gcc").name == "best"
    # where the one put against gcc's does not beat it, another named one that does stands
    runs = {"best": p14, "kept 0": fast, "gcc": P16_OURS}
    other = against(runs, ours, "gcc", {"best": 5, "kept 0": 6})
    assert (other.name, other.figure, other.evolved) == ("kept 0", "cycles", "kept 0")
    # gcc's code answering wrong in the guest is never chosen
    wrong = replace(P16_GCC, agreed=9)
    assert against({"best": P16_OURS, "gcc": wrong}, ours, "gcc") == ours
    # choose: fastest among ours, then against gcc's where it is proven (named)
    runs = {"best": P16_OURS, "kept 0": P16_OURS, "gcc": P16_GCC}
    assert choose(runs, {"best": 4, "kept 0": 4}, "best").name == "best"
    assert choose(runs, {"best": 4, "kept 0": 4}, "best", "gcc", proven=True).name == "gcc"


@pytest.mark.qemu
@pytest.mark.timeout(300)
def test_under_icount_the_rule_keeps_the_shortest_and_moves_only_to_a_faster_one():
    """Two proven p03 programs timed in one campaign under icount: exact figures, no
    spread.  The 3-instruction one is faster, so it stays; offered the 4-instruction one
    as the default (a straight-line program that is shorter is never slower under icount,
    so the case of a slower default is made by naming it so), the rule moves to the
    3-instruction one."""
    from arch import X86_64
    from evolution.fitness import confirm, run_in_guest
    from evolution.program import assemble, parse
    from evolution.proof import prove
    from evolution.registry import ISAS
    from kernel.guest import build_guest
    from link.qemu_link import QemuLink
    from probes.campaign import Campaign
    from probes.run import POLICY
    from qemu.boards import board
    from sem.library import hackers_delight as hd

    isa = ISAS["x86_64"]
    programs = {"short": parse(isa, "imul eax, edi, -1\nand eax, edi\nret\n"),
                "long": parse(isa, "mov eax, edi\nneg eax\nand eax, edi\nret\n")}
    assert all(prove(isa, hd.p03, p).proven for p in programs.values())
    codes = {name: assemble(isa, p) for name, p in programs.items()}
    chosen = board("q35", accel="tcg", qemu_args=["-icount", "shift=0"])
    with QemuLink(chosen, build_guest(X86_64)) as link:
        # patient: an icount QEMU on a loaded host can be slow to answer
        campaign = Campaign(link, replace(POLICY, dead_after=10.0, retransmit_after=2.0))
        runs = run_in_guest(link, isa, hd.p03, codes, 30, 3, campaign)
    assert all(r.ok for r in runs.values())
    # n - 1 per call; latency less the identity's `mov rax, rdi`
    assert set(runs["short"].cycles.per_pair) == {2} and set(runs["long"].cycles.per_pair) == {3}
    assert set(runs["short"].latency.per_pair) == {1}
    assert set(runs["long"].latency.per_pair) == {2}
    counts = {"short": 3, "long": 4}
    assert fastest(runs, counts, "short").name == "short"
    moved = fastest(runs, counts, "long")
    assert (moved.name, moved.figure) == ("short", "latency")
    # as gcc's code: the 4-instruction one is chosen over an evolved one no faster (itself),
    # and the 3-instruction one stands against it
    kept = against(runs, Choice("long", "latency", ""), "long")
    assert kept.name == "long" and "not faster" in kept.reason
    assert against(runs, Choice("short", "latency", ""), "long").name == "short"
    # timed again on fresh vectors (confirm): the same exact figures
    with QemuLink(chosen, build_guest(X86_64)) as link:
        campaign = Campaign(link, replace(POLICY, dead_after=10.0, retransmit_after=2.0))
        again, reference = confirm(link, isa, hd.p03, codes["short"], codes["long"], 30, 4,
                                   campaign)
    assert again.ok and reference.ok
    assert set(again.cycles.per_pair) == {2} and set(reference.cycles.per_pair) == {3}


def test_the_cli_times_the_kept_programs_within_gccs_count_and_none_without_gcc():
    """cli/evolve.py: the candidates beside the shortest are the kept proven programs of
    no more instructions than gcc's (p03 on qemu64: gcc's 4; our lowering's 6 is not
    one), none where there is no gcc code; with none, the shortest is chosen."""
    from cli.evolve import kept_candidates
    from evolution.evolve import evolve
    from evolution.targets import TARGETS
    from sem.library import hackers_delight as hd

    result = evolve(hd.p03, TARGETS["x86-64 qemu64"], budget_s=None, batches=1, seed=1)
    assert result.instructions == 3
    others = kept_candidates(result, 4)
    assert others and all(k.instructions <= 4 and k.program != result.program for k in others)
    assert {k.instructions for k in result.kept} - {k.instructions for k in others} >= {3, 6}
    assert kept_candidates(result, None) == []
    assert choose({"best": SLOW_SHORT}, {"best": 3}, "best").name == "best"
    runs = {"best": SLOW_SHORT, **{f"kept {i}": FAST_LONG for i in range(len(others))}}
    counts = {"best": 3, **{f"kept {i}": k.instructions for i, k in enumerate(others)}}
    assert choose(runs, counts, "best").name == "kept 0"  # equal figures: the first
    # under KVM each also padded (evolution/layout.py): a padded twin the guest finds
    # faster is what `best` describes, its bytes, its no-ops counted, Unicorn's check run
    from cli.evolve import Chosen
    from evolution.layout import PADDED, with_padding
    from evolution.program import assemble
    from evolution.registry import ISAS

    isa = ISAS["x86_64"]
    codes = {"best": result.code,
             **{f"kept {i}": assemble(isa, k.program, frozenset()) for i, k in enumerate(others)}}
    twins = with_padding(isa, codes, counts, 6)
    assert "best" + PADDED in twins
    runs = {**{name: SLOW_SHORT for name in counts}, "best" + PADDED: FAST_LONG}
    choice = choose(runs, counts, "best")
    assert choice.name == "best" + PADDED
    chosen = Chosen.of(isa, hd.p03, result, others, choice.name, codes, 2, twins)
    assert chosen.code == twins[choice.name].code != result.code
    assert chosen.program == result.program and chosen.proof == result.proof
    assert chosen.instructions == twins[choice.name].instructions > result.instructions
    assert len(chosen.text.splitlines()) == chosen.instructions
    assert chosen.unicorn.startswith("unicorn: agrees")
    # gcc's code, proven (evolution/gcc.py proven): where the guest chooses it, `best` is
    # its bytes, read back as a program Z3 proved, checked in Unicorn, its count gcc's
    from evolution.gcc import compile_c, proven

    gcc = compile_c(isa, hd.p03, frozenset())
    reference = proven(isa, hd.p03, gcc)
    assert reference is not None and reference.proof.proven
    chosen = Chosen.of(isa, hd.p03, result, others, "gcc", {**codes, "gcc": gcc.code}, 2,
                       twins, reference)
    assert chosen.code == gcc.code and chosen.instructions == gcc.instructions == 4
    assert chosen.proof.proven and chosen.unicorn.startswith("unicorn: agrees")
    assert "gcc" in chosen.start


def test_a_compiled_code_that_z3_refutes_is_no_candidate():
    """What gcc gave, altered to be wrong (p03 is x & -x; `neg` dropped gives x & x),
    is not proven, so the guest never chooses it."""
    from dataclasses import replace as altered

    from evolution.gcc import compile_c, proven, traces
    from evolution.proof import prove_traces
    from evolution.registry import ISAS
    from sem.library import hackers_delight as hd

    isa = ISAS["x86_64"]
    gcc = compile_c(isa, hd.p03, frozenset())
    assert proven(isa, hd.p03, gcc) is not None
    kept = [k for k, line in enumerate(gcc.asm.splitlines()) if not line.startswith("neg")]
    wrong = altered(gcc, asm="\n".join(gcc.asm.splitlines()[k] for k in kept),
                    addresses=tuple(gcc.addresses[k] for k in kept))
    assert wrong.asm != gcc.asm and proven(isa, hd.p03, wrong) is None
    read = traces(isa, wrong)  # read, and refuted
    assert read is not None and prove_traces(isa, hd.p03, read[1]).counterexample is not None


@pytest.mark.parametrize("arch_name, features", [
    ("x86_64", frozenset()), ("x86_64", frozenset({"bmi1", "bmi2", "lzcnt", "popcnt"})),
    ("riscv64", frozenset({"m", "zba", "zbb", "zbs"}))])
def test_gccs_forward_jump_is_read_as_two_paths_and_a_flipped_one_is_refuted(arch_name,
                                                                              features):
    """gcc's p20 (Hacker's Delight's next number with as many ones) jumps over its last
    shift where x = 0 (`test edi, edi; je`, riscv64 `beqz a0`): read as its two paths
    (evolution/gcc.py traces), it is proven, so the guest may choose it.  The jump's
    condition flipped in the listing is refuted, and Z3's counterexample is checked on
    the flipped machine code in Unicorn (x86-64: Unicorn lacks riscv64's Zbb): the code
    really answers wrong there.  Without
    BMI1 gcc writes `rep bsf` (objdump: tzcnt), which such a board runs as bsf."""
    from dataclasses import replace as altered

    from evolution.check import unicorn_cannot, unicorn_check
    from evolution.gcc import compile_c, proven, traces
    from evolution.proof import prove_traces
    from evolution.registry import ISAS
    from sem.library import hackers_delight as hd

    isa = ISAS[arch_name]
    gcc = compile_c(isa, hd.p20, features)
    reference = proven(isa, hd.p20, gcc)
    assert reference is not None and reference.proof.proven
    assert len(reference.traces) == 2 and reference.branching
    forms = {i.form.split()[0] for i in reference.program.insns}
    assert reference.program.instructions + 1 == gcc.instructions  # all but the jump
    if arch_name == "x86_64":
        assert ("tzcnt" in forms) == ("bmi1" in features) and ("bsf" in forms) != (
            "bmi1" in features)
    # the jump's condition flipped: in the listing, and in the bytes
    flip = {"je": "jne", "beqz": "bnez"}
    lines = gcc.asm.splitlines()
    (k,) = [k for k, line in enumerate(lines) if line.split()[0] in flip]
    mnemonic = lines[k].split()[0]
    lines[k] = lines[k].replace(mnemonic, flip[mnemonic], 1)
    flipped = altered(gcc, asm="\n".join(lines))
    assert proven(isa, hd.p20, flipped) is None
    program, ways = traces(isa, flipped)
    refuted = prove_traces(isa, hd.p20, ways)
    assert not refuted.proven and refuted.counterexample is not None
    if unicorn_cannot(isa, program):  # riscv64's ctz is Zbb, which Unicorn lacks
        return
    at = gcc.addresses[k] - gcc.addresses[0]
    code = bytearray(gcc.code)
    assert code[at] == 0x74  # je rel8 -> jne rel8
    code[at] = 0x75
    assert unicorn_check(isa, hd.p20, bytes(gcc.code), [refuted.counterexample]) == []
    assert len(unicorn_check(isa, hd.p20, bytes(code), [refuted.counterexample])) == 1


def test_gccs_branching_sort3_is_proven_path_by_path_and_a_flipped_branch_refuted():
    """gcc's sort3 on x86-64 branches six ways: it jumps backward and forward, has two
    returns and stores on its paths.  Read as its paths (evolution/gcc.py traces), each
    proven where it is the one run, it is a candidate the guest may choose.  Its first
    branch flipped (`jge` -> `jl`) in the listing is refuted; the counterexample is
    checked in Unicorn on the bytes flipped alike (0x7d -> 0x7c): they really sort it
    wrong there, and gcc's own bytes right.  A store dropped from one path is refuted too."""
    from dataclasses import replace as altered

    from evolution.check import unicorn_check
    from evolution.gcc import compile_c, proven, traces
    from evolution.proof import prove_traces
    from evolution.registry import ISAS
    from sem.library import sorting

    isa = ISAS["x86_64"]
    gcc = compile_c(isa, sorting.sort3, frozenset())
    reference = proven(isa, sorting.sort3, gcc)
    assert reference is not None and len(reference.traces) == 6
    lines = gcc.asm.splitlines()
    (k,) = [k for k, line in enumerate(lines) if line.startswith("jge ")]
    flipped = altered(gcc, asm="\n".join(
        [*lines[:k], lines[k].replace("jge", "jl", 1), *lines[k + 1:]]))
    assert proven(isa, sorting.sort3, flipped) is None
    refuted = prove_traces(isa, sorting.sort3, traces(isa, flipped)[1])
    assert not refuted.proven and refuted.counterexample is not None
    at = gcc.addresses[k] - gcc.addresses[0]
    code = bytearray(gcc.code)
    assert code[at] == 0x7D  # jge rel8 -> jl rel8
    code[at] = 0x7C
    assert unicorn_check(isa, sorting.sort3, gcc.code, [refuted.counterexample]) == []
    assert len(unicorn_check(isa, sorting.sort3, bytes(code), [refuted.counterexample])) == 1
    # the middle element's store on the path that ends at the second return (no jump's
    # target, so the others keep theirs)
    store = max(k for k, line in enumerate(lines) if line.startswith("mov DWORD PTR [rdi+0x4]"))
    dropped = altered(gcc, asm="\n".join(lines[:store] + lines[store + 1:]),
                      addresses=gcc.addresses[:store] + gcc.addresses[store + 1:])
    assert traces(isa, dropped) is not None and proven(isa, sorting.sort3, dropped) is None


def test_an_evolved_code_that_beat_gccs_must_beat_it_again_on_fresh_vectors():
    """fitness.replicated (Haswell p14 under this host's nested KVM): the first timing put
    gcc's code at 2.26 [2.14-2.27] cycles per call and a kept program at 2.05, a gain
    beyond doubt; timed again, gcc's took 2.11 and the kept one 2.14.  One code's figure
    moved by 7%, so the choice goes back to gcc's code; a gain that holds stands."""
    from evolution.fitness import replicated

    gcc_first = run([2.26, 2.14, 2.27, 2.26, 2.27, 2.26, 2.14, 2.27] * 4, None)
    kept_first = run([2.05, 2.03, 2.08, 2.05, 2.05, 2.03, 2.08, 2.05] * 4, None)
    first = against({"kept 0": kept_first, "gcc": gcc_first},
                    Choice("kept 0", "latency", "nearest"), "gcc")
    assert first.name == "kept 0"
    gcc_again = run([2.11, 2.05, 2.13, 2.11, 2.10, 2.05, 2.13, 2.11] * 4, None)
    kept_again = run([2.14, 2.11, 2.17, 2.14, 2.14, 2.11, 2.17, 2.14] * 4, None)
    back = replicated(first, {"evolved": kept_again, "reference": gcc_again}, "gcc")
    assert (back.name, back.evolved) == ("gcc", "kept 0") and "timed again" in back.reason
    assert replicated(first, {"evolved": kept_first, "reference": gcc_first}, "gcc") == first
