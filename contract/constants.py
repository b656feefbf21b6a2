"""Collecting assembler constants: every name defined once, and where.

Both kernel builds gather their constants with `collect`; a name that comes
from two places is an error naming both, even when the two values agree
(defined once means once: two definitions that agree today drift tomorrow).

    collect("contract.uart16550", LCR, LSR, {"UART_FIFO_DEPTH": 16})

Each part is a layout (anything with `name` and `asm_constants()`: a Record,
a Register), a ConstantSet (its names keep their own sources), a
(source, mapping) pair, or a plain mapping (its names are `source`'s).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import IntEnum
from typing import Protocol


class DuplicateConstant(ValueError):
    """An assembler constant defined in two places."""


class Layout(Protocol):
    name: str

    def asm_constants(self) -> Mapping[str, int]: ...


class ConstantSet(Mapping[str, int]):
    """Assembler constants, each with the place that defined it."""

    def __init__(self) -> None:
        self._values: dict[str, int] = {}
        self._sources: dict[str, str] = {}

    def add(self, source: str, constants: Mapping[str, int]) -> None:
        """Add `constants` as defined by `source`; raise DuplicateConstant when a name
        is already here."""
        for name, value in constants.items():
            origin = constants.source(name) if isinstance(constants, ConstantSet) else source
            if name in self._values:
                raise DuplicateConstant(
                    f"assembler constant {name} is defined twice: by {self._sources[name]} "
                    f"and by {origin}; keep one of them")
            if not isinstance(value, int):
                raise TypeError(f"assembler constant {name} from {origin} is {value!r}, "
                                "not an integer")
            self._values[name] = value
            self._sources[name] = origin

    def source(self, name: str) -> str:
        """Where `name` was defined."""
        return self._sources[name]

    def __getitem__(self, name: str) -> int:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def collect(source: str,
            *parts: Layout | Mapping[str, int] | tuple[str, Mapping[str, int]]) -> ConstantSet:
    """One ConstantSet from `parts` (see the module docstring)."""
    result = ConstantSet()
    for part in parts:
        if isinstance(part, tuple):
            result.add(*part)
        elif isinstance(part, Mapping):
            result.add(source, part)
        else:
            result.add(f"{source} ({part.name})", part.asm_constants())
    return result


def enum_constants(prefix: str, members: type[IntEnum]) -> dict[str, int]:
    """`<PREFIX>_<MEMBER>` for every member of an IntEnum."""
    return {f"{prefix}_{m.name}": int(m) for m in members}
