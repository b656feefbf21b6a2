"""A built guest is kept beside its files and reused while nothing it was built from changed.

Building the x86-64 guest takes seconds (two passes of our assembler over every
source, each statement re-checked with capstone), longer than the boot it serves.
Built from the same inputs, the guest is byte-identical (the build is
reproducible), so a command may reuse the last one.  The inputs are every file
of the packages the build reads (INPUT_PACKAGES: sources, generators, the memory
maps and constants, the assembler itself) and the identity of the external
assemblers (toolchain/versions.py); the cache entry also holds a digest of each
output file, so an output changed or removed since is rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

from toolchain.program import Program
from toolchain.versions import toolchain_identity

REPO_ROOT = Path(__file__).resolve().parents[1]
# Every package a guest build reads; a change to any file in them rebuilds.
INPUT_PACKAGES = ("arch", "boot", "contract", "kernel", "toolchain")
INPUT_SUFFIXES = (".py", ".s", ".S")
ENTRY = "guest.cache"  # in the build directory
FORMAT = 1  # of the entry; a new format rebuilds


@dataclass(frozen=True)
class BuiltFiles:
    """What one guest build produced: its files and the assembled program."""

    image: Path | None
    kernel: Path | None
    elf: Path
    program: Program

    @property
    def paths(self) -> list[Path]:
        return [p for p in (self.image, self.kernel, self.elf) if p is not None]


def inputs_digest(arch_name: str, root: Path = REPO_ROOT) -> str:
    """BLAKE2b over every input file's path and bytes, the toolchain's identity and the arch."""
    digest = hashlib.blake2b(digest_size=32)
    digest.update(f"{FORMAT}\n{arch_name}\n{toolchain_identity()}\n".encode())
    for package in INPUT_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.suffix in INPUT_SUFFIXES and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root)).encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=32).hexdigest()


def load(out_dir: Path, key: str) -> BuiltFiles | None:
    """The guest last built into `out_dir`, if it was built from inputs with digest `key`
    and its files are still the ones written then; else None."""
    try:
        with open(out_dir / ENTRY, "rb") as entry:
            stored = pickle.load(entry)
        if stored["key"] != key:
            return None
        built: BuiltFiles = stored["built"]
        if any(_file_digest(path) != stored["files"].get(str(path)) for path in built.paths):
            return None
        return built
    except (OSError, EOFError, KeyError, TypeError, AttributeError, pickle.UnpicklingError):
        return None  # no entry, an old format, or a file gone: build again


def store(out_dir: Path, key: str, built: BuiltFiles) -> None:
    """Remember `built` as the build of inputs `key` (written atomically: a concurrent
    reader sees the old entry or the new one)."""
    files = {str(path): _file_digest(path) for path in built.paths}
    partial = out_dir / f"{ENTRY}.{os.getpid()}"
    partial.write_bytes(pickle.dumps({"key": key, "built": built, "files": files}))
    os.replace(partial, out_dir / ENTRY)
