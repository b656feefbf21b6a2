"""The search kernels compiled ahead of a search (evolution/warm.py): what `compiled`
reads is numba's own cache, and the warming search calls every kernel a search calls."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from evolution import codegen, warm
from evolution.evaluator import kernels
from evolution.registry import ISAS


def test_cached_reads_numbas_own_index_of_a_compiled_function(tmp_path):
    """A module of numba functions with cache=True, one of them called in a process of
    its own: numba's index is there for that one, not for the one never called."""
    (tmp_path / "tiny_kernels.py").write_text(textwrap.dedent("""
        from numba import njit

        @njit(cache=True)
        def called(x):
            return x + 1

        @njit(cache=True)
        def never(x):
            return x - 1
        """))
    assert not codegen.cached(tmp_path, "tiny_kernels", ("called",))
    subprocess.run([sys.executable, "-c", "import tiny_kernels; tiny_kernels.called(1)"],
                   cwd=tmp_path, check=True, timeout=120)
    assert codegen.cached(tmp_path, "tiny_kernels", ("called",))
    assert not codegen.cached(tmp_path, "tiny_kernels", ("called", "never"))


@pytest.mark.parametrize("isa", sorted(ISAS))
def test_the_warming_search_calls_every_entry_point_and_leaves_them_compiled(monkeypatch, isa):
    module = kernels(isa)
    called = set()
    for name in warm.ENTRY_POINTS:
        kernel = getattr(module, name)

        def recording(*args, _name=name, _kernel=kernel):
            called.add(_name)
            return _kernel(*args)

        monkeypatch.setattr(module, name, recording)
    warm.warm(isa)
    # wrongness, which the copies' check calls from Python, is compiled by the kernels
    # that call it (its index is there after a warming search on a cold cache: riscv64,
    # checked by hand), whether or not this search calls it from Python too
    assert called >= set(warm.ENTRY_POINTS) - {"wrongness"}, called
    assert warm.compiled(isa)


def test_a_search_calls_no_kernel_from_python_but_the_entry_points(monkeypatch):
    """Every numba function of the module a search of a memory routine (sort3: loads,
    stores, its sorting-network start) calls from Python is an entry point, so that
    `compiled` asks about all the kernels a search can start compiling."""
    from numba.core.registry import CPUDispatcher

    from evolution.evolve import evolve
    from evolution.targets import TARGETS
    from sem.library import sorting

    module = kernels("x86_64")
    called = set()
    for name in dir(module):
        kernel = getattr(module, name)
        if isinstance(kernel, CPUDispatcher):
            def recording(*args, _name=name, _kernel=kernel):
                called.add(_name)
                return _kernel(*args)

            monkeypatch.setattr(module, name, recording)
    evolve(sorting.sort3, TARGETS["x86-64 qemu64"], budget_s=None, batches=1, seed=0,
           iterations=warm.WARM_ITERATIONS)
    assert called and called <= set(warm.ENTRY_POINTS), called
