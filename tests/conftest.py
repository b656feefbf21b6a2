"""The suite's two halves: fast unit tests, and tests that start QEMU.

A test that starts QEMU carries the `qemu` marker (on the test, or `pytestmark` on its
module), so `./run test --unit` (`-m "not qemu"`) runs in seconds without a guest and
`./run test --qemu` runs only the boots.  The marker is checked, not trusted: while an
unmarked test runs, starting a `qemu-system-*` process fails the test and says to mark it.
"""

from __future__ import annotations

import multiprocessing
import subprocess

import pytest
from hypothesis import settings

# Hypothesis fails an example slower than 200 ms by default; on a machine whose cores QEMU
# guests and other work share, that measures the load, not the code.  Correctness only.
settings.register_profile("metaos", deadline=None)
settings.load_profile("metaos")

_POPEN_INIT = subprocess.Popen.__init__


def _qemu_in(args) -> str | None:
    """The QEMU binary a command line starts, if any (it may follow setpriv's options);
    not `-cpu help`, which lists the CPU models and boots nothing (a board spec's check,
    qemu/boards.py `cpu_models`)."""
    words = args if isinstance(args, (list, tuple)) else [args]
    if [str(w) for w in words[1:]] == ["-cpu", "help"]:
        return None
    return next((str(w) for w in words[:4] if "qemu-system" in str(w)), None)


@pytest.fixture(autouse=True)
def _only_marked_tests_start_qemu(request, monkeypatch):
    if request.node.get_closest_marker("qemu") is not None:
        yield
        return

    def refuse_qemu(self, args, *rest, **options):
        if (binary := _qemu_in(args)) is not None:
            pytest.fail(f"{request.node.nodeid} starts QEMU ({binary}) but is not marked: add "
                        "@pytest.mark.qemu (tests/conftest.py)", pytrace=False)
        _POPEN_INIT(self, args, *rest, **options)

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse_qemu)
    yield


# -- the search kernels, compiled beside the tests that do not search --------------------
# On a machine's first run numba compiles the search kernels (evolution/warm.py): about
# 6 minutes of one core for x86_64, 1 for riscv64, which the first search would pay
# for.  Started as the session begins, each ISA's in a process of its own, the compiles
# overlap the tests that do not search, which run first; a test of the modules that
# search waits for them.  (A clean clone on a cold cache took 26 minutes with the
# machine also busy; 19.3 with the compiles beside the 5 minutes of tests alphabetically
# before test_evolution_*; the warm suite 12.2.)
SEARCHING_MODULES = ("test_evolution_", "test_market")
_compiling: list[multiprocessing.process.BaseProcess] = []


def pytest_collection_modifyitems(session, config, items):
    """The modules that search last, each in its order (the sort is stable)."""
    items.sort(key=lambda item: item.path.name.startswith(SEARCHING_MODULES))


def pytest_collection_finish(session):
    if not any(item.path.name.startswith(SEARCHING_MODULES) for item in session.items):
        return
    from evolution import warm
    from evolution.registry import ISAS

    spawn = multiprocessing.get_context("spawn")
    for isa in sorted(ISAS):
        if not warm.compiled(isa):
            process = spawn.Process(target=warm.warm, args=(isa,), daemon=True,
                                    name=f"compiling the {isa} search kernels")
            process.start()
            _compiling.append(process)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """Outside every other wrapper of a test's run, so that the wait is not counted in
    the test's own timeout (pytest-timeout's timer starts in its wrapper, inside this)."""
    if _compiling and item.path.name.startswith(SEARCHING_MODULES):
        for process in _compiling:
            process.join()
        _compiling.clear()
    yield


def pytest_sessionfinish(session):
    for process in _compiling:  # the session stopped before a test that searches
        process.terminate()
