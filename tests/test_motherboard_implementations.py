"""The hand-written feature implementations: x86-64 ones agree with the interpreter in
Unicorn; the Zbb encodings (.insn directives, as capstone 5 cannot re-check Zbb) are the
bytes GNU as gives the mnemonics with -march=rv64gc_zbb.  (On a live rv64 board they
run in test_motherboard_live.py, every answer checked.)"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from arch import RISCV64, X86_64
from motherboard.implementations import FEATURE_CODE, ZBB_R, ZBB_UNARY, zbb
from motherboard.routines import RoutineBook
from probes.routine import batch_form
from probes.vet import vet
from sem.vectors import generate
from testing import packed

BOOK = RoutineBook.library()


@pytest.mark.parametrize("code", [f for f in FEATURE_CODE if f.arch is X86_64],
                         ids=lambda f: f"{f.routine}-{f.feature}")
def test_x86_feature_code_agrees_with_the_interpreter_in_unicorn(code):
    rid = BOOK.resolve(code.routine)
    form = batch_form(BOOK.routine(rid), X86_64, X86_64.assemble(code.text + "\n"))
    vectors = generate(BOOK.routine(rid), 200, seed=4)
    verdict = vet(form.probe(vectors))
    assert verdict.accepted and verdict.observation.outcome == 0
    got = form.results(len(vectors), verdict.observation.output)
    assert got == [packed.evaluate(BOOK, rid, v) for v in vectors]


def _gnu_as(text: str, tmp_path) -> bytes:
    source, obj, raw = tmp_path / "z.s", tmp_path / "z.o", tmp_path / "z.bin"
    source.write_text(text + "\n")
    subprocess.run(["riscv64-linux-gnu-as", "-march=rv64gc_zbb", "-o", str(obj), str(source)],
                   check=True)
    subprocess.run(["riscv64-linux-gnu-objcopy", "-O", "binary", "-j", ".text", str(obj),
                    str(raw)], check=True)
    return raw.read_bytes()


@pytest.mark.skipif(shutil.which("riscv64-linux-gnu-as") is None, reason="no RISC-V binutils")
@pytest.mark.parametrize("mnemonic", [*ZBB_R, *ZBB_UNARY, *(f"{m}w" for m in ZBB_UNARY)])
def test_zbb_insn_directives_are_the_encodings_gnu_as_gives(mnemonic, tmp_path):
    operands = ("a0", "a1", "t6") if mnemonic in ZBB_R else ("a0", "t3")
    ours = RISCV64.assemble(zbb(mnemonic, *operands) + "\n")
    assert ours == _gnu_as(f"{mnemonic} {', '.join(operands)}", tmp_path)


def _store_with_proven_popcnt(path):
    """A temporary semantic store holding a proven POPCNT implementation of p23 for
    x86-64, and an unproven one (tested only), which no board may offer."""
    from sem.store import PROVEN, SemStore
    from stores.db import connect

    store = SemStore(connect(path))
    rid = BOOK.resolve("hd:p23")
    store.add(BOOK.routine(rid))
    text = "popcnt eax, edi\nret\n"
    proven = store.add_implementation(rid, X86_64, X86_64.assemble(text), text,
                                      f"{PROVEN}: z3, for all inputs (a test's)", ("popcnt",))
    tested = "popcnt eax, edi\nnop\nret\n"
    store.add_implementation(rid, X86_64, X86_64.assemble(tested), tested,
                             "unicorn x86_64: agrees on 1000 vectors", ("popcnt",))
    return store, rid, proven


def test_a_proven_implementation_from_the_store_is_offered_where_the_board_has_its_features(
        tmp_path):
    from motherboard.implementations import LOWERED, board_code, feature_code
    from motherboard.live import prepare_code

    store, p23, proven = _store_with_proven_popcnt(tmp_path / "sem.db")
    p22 = BOOK.resolve("hd:p22")
    code = prepare_code(BOOK, [p23, p22], {X86_64}, store)
    (offered,) = code.stored[(p23, X86_64)]
    assert offered.label == f"sem:{proven}" and offered.features == ("popcnt",)
    # what it offers is the routine: it agrees with the interpreter in Unicorn
    r = BOOK.routine(p23)
    form = batch_form(r, X86_64, offered.code)
    vectors = generate(r, 300, seed=9)
    verdict = vet(form.probe(vectors))
    assert verdict.accepted
    assert form.results(len(vectors), verdict.observation.output) == [
        packed.evaluate(BOOK, p23, v) for v in vectors]

    haswell = ("abm", "popcnt", "sse4_2")
    lowered = code.lowered[(p23, X86_64)]
    assert board_code("p23", X86_64, haswell, lowered, code.stored[(p23, X86_64)]) == {
        LOWERED: lowered, f"sem:{proven}": offered.code}  # the hand-written one stands aside
    assert board_code("p23", X86_64, ("sse2",), lowered, code.stored[(p23, X86_64)]) == {
        LOWERED: lowered}  # no POPCNT: neither the store's nor the hand-written code
    # p22: nothing proven in the store, so the hand-written POPCNT code is the fallback
    assert code.stored[(p22, X86_64)] == ()
    assert board_code("p22", X86_64, haswell, code.lowered[(p22, X86_64)], ()) == {
        LOWERED: code.lowered[(p22, X86_64)], **feature_code("p22", X86_64, haswell)}
    assert set(feature_code("p22", X86_64, haswell)) == {"popcnt"}
    # the lowering, kept in the store by prepare_code, is the lowering there, not an offer
    assert prepare_code(BOOK, [p23], {X86_64}, store).lowered[(p23, X86_64)] == lowered


@pytest.mark.qemu
@pytest.mark.timeout(240)
def test_a_live_board_runs_the_stores_proven_implementation(tmp_path):
    from motherboard.live import parse_boards, run_live
    from motherboard.market import MarketConfig
    from motherboard.record import audit
    from motherboard.workload import poisson_stream

    store, p23, proven = _store_with_proven_popcnt(tmp_path / "sem.db")
    work = poisson_stream(6, 10.0, ("hd:p23",), (100, 2000), seed=3)
    run = run_live(parse_boards("q35:Haswell"), work, store=store, timeout=180, seed=2,
                   config=MarketConfig(calibration_samples=2, calibration_sizes=(64, 512)))
    mb = run.motherboard
    assert not run.failed and not run.timed_out and mb.done
    report = mb.boards["q35:Haswell"].report
    assert {o.implementation for o in report.offers if o.routine == p23} == {
        "lowered", f"sem:{proven}"}
    ran = [a for t in mb.tasks.values() for a in t.attempts
           if a.outcome == "accepted" and a.bid.implementation == f"sem:{proven}"]
    assert len(ran) >= 2  # its calibration at least, every answer checked in full
    assert all(a.check.checked == t.size for t in mb.tasks.values() if t.calibrating
               for a in t.attempts if a.outcome == "accepted")
    assert audit(mb) == 0
