"""Lowered machine code agrees with the reference interpreter in Unicorn.

Every starter routine on both architectures over >= 1,000 vectors (edge cases
plus random), and every operation at every width through small routines, so
the templates the starter library does not reach are held to the same oracle."""

import pytest
from sem_small_routines import SMALL

from arch import ARCHES
from sem.ir import Routine
from sem.library import hackers_delight, sorting
from sem.lower import lower_for
from sem.unicorn_check import check

STARTER = [getattr(hackers_delight, n) for n in hackers_delight.__all__] + [
    sorting.sort3, sorting.sort4, sorting.sort5]
def _vet(r: Routine, arch: str, count: int) -> None:
    code = arch.assemble(lower_for(arch)(r).text)
    report = check(r, arch, code, count=count)
    assert report.vectors >= count
    assert report.ok, f"{arch}: first mismatch {report.mismatches[0]}"


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("r", STARTER, ids=lambda r: r.hint_name)
def test_starter_routine_matches_interpreter(r, arch):
    _vet(r, arch, 1000)


@pytest.mark.parametrize("arch", ARCHES)
def test_every_operation_at_every_width_matches_interpreter(arch):
    failures = []
    for label, r in SMALL:
        code = arch.assemble(lower_for(arch)(r).text)
        report = check(r, arch, code, count=150)
        if not report.ok:
            failures.append((label, report.mismatches[0]))
    assert not failures, failures[:5]
