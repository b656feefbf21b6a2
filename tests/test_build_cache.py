"""Reusing a guest's build (kernel/build_cache.py): only while its inputs and outputs are
unchanged, and then exactly what a fresh build makes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from arch import RISCV64, X86_64
from kernel import build_cache
from kernel.guest import build_guest
from kernel.x86_64.build import build

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A build that bypasses the cache, to compare against."""
    return build(tmp_path_factory.mktemp("fresh"))


def test_a_reused_build_is_the_fresh_build_and_is_not_rewritten(tmp_path, fresh):
    first = build_guest(X86_64, tmp_path)
    written = first.image.stat().st_mtime_ns, first.elf.stat().st_mtime_ns
    again = build_guest(X86_64, tmp_path)
    assert (again.image.stat().st_mtime_ns, again.elf.stat().st_mtime_ns) == written
    assert again.image.read_bytes() == fresh.image.read_bytes()
    assert again.elf.read_bytes() == fresh.elf.read_bytes()
    entry = fresh.program.symbols["kernel_entry"].address
    assert again.symbolize(entry + 1) == fresh.program.symbolize(entry + 1) == "kernel_entry+0x1"


def test_a_changed_output_or_record_means_a_fresh_build(tmp_path, fresh):
    guest = build_guest(X86_64, tmp_path)
    damaged = bytearray(guest.image.read_bytes())
    damaged[0x200] ^= 0xFF
    guest.image.write_bytes(bytes(damaged))
    assert build_guest(X86_64, tmp_path).image.read_bytes() == fresh.image.read_bytes()
    (tmp_path / build_cache.RECORD).write_bytes(b"not a pickle")
    guest.elf.unlink()
    assert build_guest(X86_64, tmp_path).elf.read_bytes() == fresh.elf.read_bytes()


def test_the_key_follows_every_source_and_only_the_sources(tmp_path):
    root = tmp_path / "repo"
    for package in build_cache.SOURCE_PACKAGES:
        shutil.copytree(REPO / package, root / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    key = build_cache.inputs_key(X86_64, root)
    assert build_cache.inputs_key(X86_64, root) == key
    assert build_cache.inputs_key(RISCV64, root) != key
    (root / "kernel" / "x86_64" / "notes.txt").write_text("not an input")
    assert build_cache.inputs_key(X86_64, root) == key
    for source in ("kernel/x86_64/uart16550.s", "contract/uart16550.py", "toolchain/x86asm.py",
                   "boot/x86_64/stage2.s"):
        path = root / source
        original = path.read_bytes()
        path.write_bytes(original + b"\n")
        assert build_cache.inputs_key(X86_64, root) != key, source
        path.write_bytes(original)
    assert build_cache.inputs_key(X86_64, root) == key
