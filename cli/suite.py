"""`./run test`: the layers (import-linter), then the test suite (pytest)."""

from __future__ import annotations

import sys
from pathlib import Path
from shlex import join

from invoke import Context


def run_suite(c: Context, k: str = "", x: bool = False) -> None:
    """Each step ends the run when it fails (invoke's UnexpectedExit: its own exit status)."""
    bin_dir = Path(sys.executable).parent
    c.run(join([str(bin_dir / "lint-imports"), "--no-cache"]), pty=False)
    args = [sys.executable, "-m", "pytest", "-q"]
    if k:
        args += ["-k", k]
    if x:
        args.append("-x")
    c.run(join(args), pty=False)
