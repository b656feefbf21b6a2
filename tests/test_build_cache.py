"""A built guest is reused only while its inputs and its files are what they were."""

from __future__ import annotations

import shutil

import pytest

from arch import RISCV64
from kernel import build_cache, guest
from kernel.build_cache import REPO_ROOT, inputs_digest


@pytest.fixture
def counted(monkeypatch):
    """The real builders, counting the builds they do."""
    builds = []
    real = dict(guest.BUILDERS)

    def counting(arch):
        def build(out):
            builds.append(arch)
            return real[arch](out)
        return build

    monkeypatch.setattr(guest, "BUILDERS", {a: counting(a) for a in real})
    return builds


def test_a_guest_is_built_once_and_rebuilt_when_its_files_change(tmp_path, counted):
    first = guest.build_guest(RISCV64, tmp_path)
    elf = first.elf.read_bytes()
    again = guest.build_guest(RISCV64, tmp_path)
    assert counted == [RISCV64]
    assert again.elf == first.elf and again.elf.read_bytes() == elf
    assert again.symbolize(0x8000_0000) == first.symbolize(0x8000_0000) == "_start"
    first.elf.write_bytes(elf[:-1] + bytes([elf[-1] ^ 1]))  # damaged since: not trusted
    assert guest.build_guest(RISCV64, tmp_path).elf.read_bytes() == elf
    assert counted == [RISCV64, RISCV64]
    (tmp_path / build_cache.ENTRY).write_bytes(b"not a cache entry")
    guest.build_guest(RISCV64, tmp_path)
    assert counted == [RISCV64, RISCV64, RISCV64]


def test_the_inputs_are_every_source_and_generator_file(tmp_path):
    for package in build_cache.INPUT_PACKAGES:
        shutil.copytree(REPO_ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    before = inputs_digest("riscv64", tmp_path)
    assert inputs_digest("x86_64", tmp_path) != before
    (tmp_path / "README.md").write_text("not an input")
    assert inputs_digest("riscv64", tmp_path) == before
    for changed in ("kernel/riscv64/uart.s", "contract/protocol.py", "toolchain/riscvasm.py"):
        path = tmp_path / changed
        original = path.read_bytes()
        path.write_bytes(original + b"\n")
        assert inputs_digest("riscv64", tmp_path) != before, changed
        path.write_bytes(original)
    assert inputs_digest("riscv64", tmp_path) == before
