"""`./run test`: the layers (import-linter), the style (ruff), then the test suite (pytest)."""

from __future__ import annotations

import sys
from pathlib import Path
from shlex import join

from invoke import Context


def run_suite(c: Context, k: str = "", x: bool = False, half: str | None = None) -> None:
    """Each step ends the run when it fails (invoke's UnexpectedExit: its own exit status).
    `half`: "unit" (the tests that start no QEMU), "qemu" (those that do) or None (both)."""
    bin_dir = Path(sys.executable).parent
    c.run(join([str(bin_dir / "lint-imports"), "--no-cache"]), pty=False)
    c.run(join([str(bin_dir / "ruff"), "check", "--no-cache", "--quiet", "."]), pty=False)
    args = [sys.executable, "-m", "pytest", "-q"]
    if k:
        args += ["-k", k]
    if x:
        args.append("-x")
    if half:
        args += ["-m", "qemu" if half == "qemu" else "not qemu"]
    c.run(join(args), pty=False)
