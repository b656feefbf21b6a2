"""Which assemblers and checkers the toolchain runs on, as one string: a guest built
with other ones may differ, so caches of built guests key on it (kernel/build_cache.py).

Found without importing them: the installed distributions' dist-info names carry
their versions, and the binutils assembler is identified by its file.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

PACKAGES = ("keystone", "capstone", "elftools")  # imported by toolchain/
DISTRIBUTIONS = ("keystone_engine", "capstone", "pyelftools")  # their dist-info name prefixes
BINARIES = ("riscv64-linux-gnu-as", "riscv64-linux-gnu-ld")


def _dist_info(package: str) -> list[str]:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return [f"{package}: not installed"]
    site = Path(spec.origin).parent.parent
    return sorted(name for name in os.listdir(site)
                  if name.endswith(".dist-info") and name.lower().startswith(DISTRIBUTIONS))


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        return f"{name}: not installed"
    status = os.stat(path)
    return f"{path} {status.st_size} {status.st_mtime_ns}"


def toolchain_identity() -> str:
    """One line per assembler, checker and ELF reader the toolchain uses."""
    lines = sorted({line for package in PACKAGES for line in _dist_info(package)})
    return "\n".join(lines + [_binary(name) for name in BINARIES])
