"""Records shared by every assembler back end (x86asm, riscvasm): what goes in
(`Section`), what comes out (`Program`, `Symbol`, `Line`) and how it fails
(`AssemblyError`).  Kept apart so both back ends import the same types."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Section:
    """One contiguous piece of output, assembled from its sources in order."""

    name: str  # e.g. "boot", "stage2", "kernel"
    base: int  # link/load address of its first byte
    sources: tuple[Path, ...]  # assembled in order as one unit
    bits: int = 64  # initial mode 16/32/64; `.code16/.code32/.code64` switch inside


@dataclass(frozen=True)
class Symbol:
    """A label: where it landed and where it was written."""

    name: str
    address: int
    section: str
    file: str
    line: int


@dataclass(frozen=True)
class Line:
    """One assembled statement, for listings."""

    address: int
    size: int
    file: str
    line: int
    text: str


@dataclass
class Program:
    """The result of one assembly: section bytes, labels and a listing."""

    sections: dict[str, bytes]  # section name -> bytes (starting at its base)
    bases: dict[str, int]
    symbols: dict[str, Symbol]  # every label, across all sections and files
    listing: list[Line]
    constants: dict[str, int] = field(default_factory=dict)  # Python constants + `.equ`s

    def symbolize(self, address: int) -> str:
        """Name `address` as "label+0x12" after the nearest label at or below it
        inside the same section; a bare hex number when no section holds it."""
        for name, base in self.bases.items():
            if base <= address < base + max(len(self.sections[name]), 1):
                labels = sorted(
                    (s.address, s.name) for s in self.symbols.values() if s.section == name
                )
                at = bisect.bisect_right(labels, (address, "\U0010ffff")) - 1
                if at < 0:
                    return f"{name}+{address - base:#x}"
                label_address, label = labels[at]
                offset = address - label_address
                return label if offset == 0 else f"{label}+{offset:#x}"
        return f"{address:#x}"


class AssemblyError(Exception):
    """A statement that cannot be assembled; str() is "file:line: text: reason"."""

    def __init__(self, file: str, line: int, text: str, reason: str) -> None:
        super().__init__(f"{file}:{line}: {text}: {reason}")
        self.file = file
        self.line = line
        self.text = text
        self.reason = reason
