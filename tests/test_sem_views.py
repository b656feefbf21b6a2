"""Every view of every starter routine renders, and the interchange views mean
what the routine means: the SMT-LIB text, read back by Z3, is proven equal to
our own Z3 translation; the C text, compiled by gcc, agrees with the interpreter."""

import ctypes
import shutil
import subprocess

import pytest
import z3
from sem_small_routines import SMALL

from arch import RISCV64, X86_64
from sem.canon import canonicalize, parse
from sem.implement import implement
from sem.interp import run
from sem.library import hackers_delight, sorting
from sem.vectors import generate
from sem.views import Naming, render
from sem.views.asm import render as render_asm
from sem.views.c import MEMORY_HELPERS, PRELUDE
from sem.views.c import render as render_c
from sem.z3sem import translate

CTYPES = {8: ctypes.c_uint8, 16: ctypes.c_uint16, 32: ctypes.c_uint32, 64: ctypes.c_uint64}
STARTER = [getattr(hackers_delight, n) for n in hackers_delight.__all__] + [
    sorting.sort3, sorting.sort4, sorting.sort5]


def _naming(r):
    return Naming.default(r, canonicalize(r).id, r.hint_name, r.hint_params)


@pytest.mark.parametrize("r", STARTER, ids=lambda r: r.hint_name)
def test_every_view_renders(r):
    naming = _naming(r)
    for view in ("c", "semantic", "smtlib"):
        text = render(view, r, naming)
        assert naming.function in text
    assert "-> out" in render("semantic", r, naming) or r.result is None
    for arch in (X86_64, RISCV64):
        vetted = implement(r, arch, vectors=10)
        text = render_asm(arch, vetted.code, "header")
        assert text.rstrip().endswith(("ret", "jr ra"))  # decoded through to the return


@pytest.mark.parametrize("r", STARTER, ids=lambda r: r.hint_name)
def test_smtlib_view_read_back_by_z3_is_the_routine(r):
    r = parse(canonicalize(r).text)
    naming = Naming.default(r, canonicalize(r).id)
    ours = translate(r)
    decls = {name: var for name, var in zip(naming.inputs, ours.inputs, strict=True)}
    decls["mem"] = ours.memory
    call = f"({naming.function} {' '.join(naming.inputs)}{' mem' if r.uses_memory else ''})"
    ours_out = ours.final_memory if r.result is None else ours.result
    decls["expected"] = z3.Const("expected", ours_out.sort())
    text = render("smtlib", r, naming) + f"(assert (not (= {call} expected)))"
    solver = z3.Solver()
    solver.add(decls["expected"] == ours_out)
    solver.add(z3.parse_smt2_string(text, decls=decls))
    assert solver.check() == z3.unsat


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler to check the C view")
def test_c_view_compiled_agrees_with_interpreter(tmp_path):
    routines = [(r.hint_name, r) for r in STARTER] + [(f"small_{label}", r) for label, r in SMALL]
    parts = [PRELUDE, MEMORY_HELPERS]
    for name, r in routines:
        r = parse(canonicalize(r).text)
        naming = Naming.default(r, canonicalize(r).id, name)
        parts.append(render_c(r, naming, prelude=False))
    source = tmp_path / "views.c"
    source.write_text("\n".join(parts))
    lib = tmp_path / "views.so"
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", lib, source], check=True)
    so = ctypes.CDLL(str(lib))
    for name, r in routines:
        fn = getattr(so, name)
        fn.restype = None if r.result is None else CTYPES[max(8, r.result.width)]
        fn.argtypes = [ctypes.c_char_p if t.name == "ptr" else CTYPES[t.width] for t in r.params]
        for v in generate(r, 200):
            want = run(r, v.args, v.memory)
            buf = ctypes.create_string_buffer(v.memory.data, 64) if r.uses_memory else None
            got = fn(*(buf if t.name == "ptr" else a
                       for a, t in zip(v.args, r.params, strict=True)))
            assert got == want.result, (name, v.args)
            if r.uses_memory:
                assert buf.raw == want.memory.data, name
