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
    assert got == [BOOK.evaluate(rid, v) for v in vectors]


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
