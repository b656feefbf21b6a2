"""The suite's two halves: fast unit tests, and tests that start QEMU.

A test that starts QEMU carries the `qemu` marker (on the test, or `pytestmark` on its
module), so `./run test --unit` (`-m "not qemu"`) runs in seconds without a guest and
`./run test --qemu` runs only the boots.  The marker is checked, not trusted: while an
unmarked test runs, starting a `qemu-system-*` process fails the test and says to mark it.
"""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import settings

# Hypothesis fails an example slower than 200 ms by default; on a machine whose cores QEMU
# guests and other work share, that measures the load, not the code.  Correctness only.
settings.register_profile("metaos", deadline=None)
settings.load_profile("metaos")

_POPEN_INIT = subprocess.Popen.__init__


def _qemu_in(args) -> str | None:
    """The QEMU binary a command line starts, if any (it may follow setpriv's options)."""
    words = args if isinstance(args, (list, tuple)) else [args]
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
