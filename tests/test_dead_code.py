"""No dead code (STYLE): every function, method, class and property is called from
somewhere, as vulture (a maintained dead-code finder) reads the repository.  What it
cannot see being called is named below with the reason: a framework's hook, a name
looked up at run time, code generated as text, or a language's vocabulary."""

from __future__ import annotations

from pathlib import Path

from vulture import Vulture

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("cli", "motherboard", "market", "evolution", "probes", "discovery", "sem", "link",
           "qemu", "kernel", "boot", "stores", "arch", "contract", "toolchain", "testing",
           "bench", "tests", "tasks.py")
KINDS = ("function", "method", "class", "property")
CALLED_UNSEEN = {
    # hooks their frameworks call
    ("cli/program.py", "load_collection"): "invoke's Program hook",
    ("cli/terminal.py", "on_broken_pipe"): "rich's Console hook",
    ("tests/conftest.py", "_only_marked_tests_start_qemu"): "an autouse pytest fixture",
    ("tests/conftest.py", "pytest_runtest_protocol"): "a pytest hook",
    ("tests/conftest.py", "pytest_collection_finish"): "a pytest hook",
    ("tests/conftest.py", "pytest_collection_modifyitems"): "a pytest hook",
    ("tests/conftest.py", "pytest_sessionfinish"): "a pytest hook",
    # called from the kernels' source, generated as text (evolution/codegen.py)
    ("evolution/kernel_template.py", "clz64"): "generated kernels",
    ("evolution/kernel_template.py", "ctz64"): "generated kernels",
    ("evolution/kernel_template.py", "mulhs64"): "generated kernels",
    # a ledger entry's handler, looked up by its type (MarketState.apply)
    ("market/state.py", "_joined"): "by entry type",
    ("market/state.py", "_counterexample"): "by entry type",
    ("market/state.py", "_refuted"): "by entry type",
    ("market/state.py", "_adopted"): "by entry type",
    ("market/state.py", "_not_adopted"): "by entry type",
    # the IR's comparisons, each with its mirror (ugt beside ult): the language routines
    # are written in, whether or not a starter routine uses every word yet
    ("sem/ir.py", "uge"): "IR vocabulary",
    ("sem/ir.py", "sgt"): "IR vocabulary",
    ("sem/ir.py", "sge"): "IR vocabulary",
}


def unused() -> set[tuple[str, str]]:
    v = Vulture()
    v.scavenge([str(REPO / p) for p in SCANNED])
    return {(str(Path(item.filename).relative_to(REPO)), item.name)
            for item in v.get_unused_code(min_confidence=60) if item.typ in KINDS}


def test_every_function_method_class_and_property_is_used():
    found = unused()
    # the starter library's routines are found by the loader, by module (sem/loader.py)
    found = {(f, n) for f, n in found if not f.startswith("sem/library/")}
    assert not found - set(CALLED_UNSEEN), "unused (remove it, or say here who calls it)"
    assert not set(CALLED_UNSEEN) - found, "named here but seen used now: take it out"
