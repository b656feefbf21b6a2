"""Reusing a guest's last build while nothing it is made from has changed.

Assembling the x86-64 guest costs about a second of Python (keystone, then
capstone on every statement): more than a whole TCG boot, and most of
`./run demo`.  A build is keyed by a digest of everything it is made from:
every .py and .s file of the packages that build guests (SOURCE_PACKAGES), and
the identity (path, size, mtime) of the third-party assemblers and decoders.
The key, the program and the digests of the files the build wrote are kept
beside them (RECORD); another key, a missing or changed output, or an
unreadable record means a fresh build.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

from arch import Arch
from toolchain.binutils import AS, LD, OBJCOPY
from toolchain.program import Program

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_PACKAGES = ("toolchain", "contract", "boot", "kernel")
SOURCE_SUFFIXES = (".py", ".s")
THIRD_PARTY_MODULES = ("keystone", "capstone", "elftools", "cobs")
EXTERNAL_TOOLS = (AS, LD, OBJCOPY)
RECORD = "build-record.pickle"


@dataclass(frozen=True)
class BuildRecord:
    """What one build left in its directory (file names inside it) and how to find it again."""

    key: str
    program: Program
    outputs: dict[str, str]  # file name -> sha256 of its bytes
    image: str | None  # the disk image, x86-64
    kernel: str | None  # the ELF kernel QEMU loads, RISC-V
    elf: str  # the ELF with every label

    @classmethod
    def of(cls, out_dir: Path, key: str, program: Program, *, image: Path | None,
           kernel: Path | None, elf: Path) -> BuildRecord:
        """The record of the files a build just wrote into `out_dir`."""
        names = {path.name for path in (image, kernel, elf) if path is not None}
        outputs = {name: _sha256(out_dir / name) for name in sorted(names)}
        return cls(key, program, outputs, image.name if image else None,
                   kernel.name if kernel else None, elf.name)


def inputs_key(arch: Arch, root: Path = REPO_ROOT) -> str:
    """The digest of every input of `arch`'s build (see the module's docstring)."""
    digest = hashlib.sha256(arch.name.encode())
    for package in SOURCE_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.suffix in SOURCE_SUFFIXES and path.is_file():
                digest.update(str(path.relative_to(root)).encode() + b"\0")
                digest.update(path.read_bytes())
    for name in THIRD_PARTY_MODULES:
        spec = importlib.util.find_spec(name)
        digest.update(_identity(spec.origin if spec else None, name))
    for tool in EXTERNAL_TOOLS:
        digest.update(_identity(shutil.which(tool), tool))
    return digest.hexdigest()


def _identity(path: str | None, name: str) -> bytes:
    """Which installed file `name` is: a reinstall or upgrade changes its size or mtime."""
    if path is None:
        return f"{name}: absent\0".encode()
    status = os.stat(path)
    return f"{name}: {path} {status.st_size} {status.st_mtime_ns}\0".encode()


def load(out_dir: Path, key: str) -> BuildRecord | None:
    """The record of the build in `out_dir` when it has `key` and its outputs are intact."""
    try:
        with open(out_dir / RECORD, "rb") as file:
            record = pickle.load(file)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None
    if not isinstance(record, BuildRecord) or record.key != key:
        return None
    for name, sha in record.outputs.items():
        try:
            if _sha256(out_dir / name) != sha:
                return None
        except OSError:
            return None
    return record


def store(out_dir: Path, record: BuildRecord) -> None:
    """Keep `record` in `out_dir` (written aside, then renamed: a reader sees all or none)."""
    partial = out_dir / f"{RECORD}.{os.getpid()}"
    partial.write_bytes(pickle.dumps(record))
    os.replace(partial, out_dir / RECORD)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
