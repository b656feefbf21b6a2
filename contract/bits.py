"""Declaring a hardware register as data: named bits and multi-bit fields.

Each layout becomes assembler constants `<REGISTER>_<FIELD>` (the field's mask,
already shifted) and, for multi-bit fields, `<REGISTER>_<FIELD>_SHIFT` and
`<REGISTER>_<FIELD>_MAX` (the unshifted mask)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    name: str
    shift: int  # lowest bit
    width: int = 1
    meaning: str = ""

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.shift

    def place(self, value: int) -> int:
        """`value` moved into this field; raises if it does not fit."""
        if value >> self.width:
            raise ValueError(f"{value:#x} does not fit the {self.width}-bit field {self.name}")
        return value << self.shift


@dataclass(frozen=True)
class Register:
    name: str
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name}")

    def value(self, **fields: int) -> int:
        """The register value with the named fields set (others 0)."""
        result = 0
        for name, v in fields.items():
            result |= self.field(name).place(v)
        return result

    def asm_constants(self) -> dict[str, int]:
        consts = {}
        for f in self.fields:
            consts[f"{self.name}_{f.name}"] = f.mask
            if f.width > 1:
                consts[f"{self.name}_{f.name}_SHIFT"] = f.shift
                consts[f"{self.name}_{f.name}_MAX"] = (1 << f.width) - 1
        return consts
