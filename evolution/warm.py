"""The search kernels compiled before they are needed.

numba compiles an ISA's evaluator module (codegen.py) on its first use on a machine and
keeps the result in its on-disk cache: measured on this project's 2-core host, 5.5-6
minutes of one core for x86_64 (most of it the generated `execute`) and 71 s for riscv64;
loaded from the cache after that in seconds.  A search that starts on a cold cache spends
those minutes inside its own budget: the market stops a search at its CPU cap, 129 s
for a 3-s stake, and on a fresh machine its first x86_64 searches were stopped so, before
`execute` had compiled (three runs in a row).  So whoever is about to search asks
`compiled` first, says so when it is not, and has `warm` compile the kernels beforehand.
"""

from __future__ import annotations

from evolution import codegen
from evolution.evolve import evolve
from evolution.registry import isa_named
from evolution.targets import TARGETS

# The kernels Python calls (each compiles what it calls): run_all for the evaluator and
# the enumeration, window_search for the enumeration, neighbourhood for the local
# search, mcmc for the chains, wrongness for the copies' check (also called by the
# others, which compile it)
ENTRY_POINTS = ("run_all", "window_search", "neighbourhood", "mcmc", "wrongness")
WARM_ITERATIONS = 1_000  # chain iterations of the warming search: its calls compile, not it


def compiled(isa_name: str) -> bool:
    """Whether this machine's numba cache holds the ISA's search kernels."""
    return codegen.compiled(isa_named(isa_name), ENTRY_POINTS)


def warm(isa_name: str) -> None:
    """Compile the ISA's search kernels (minutes on a cold cache), by one short search
    that calls each of them: p01 (x & (x - 1)) on the ISA's first target, one batch."""
    from sem.library import hackers_delight

    target = next(t for t in TARGETS.values() if t.isa == isa_name)
    evolve(hackers_delight.p01, target, budget_s=None, batches=1, seed=0,
           iterations=WARM_ITERATIONS)
