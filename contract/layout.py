"""The one layout language host and guest share: byte records and register bit-fields.

Every layout the two sides agree on is declared here as data (as seL4 declares
its bit layouts in `structures.bf`), and the same declaration does both jobs:

- the guest kernels get its assembler constants, under one naming scheme:
  `<NAME>_<FIELD>` says where a field is (its byte offset in a record, or its
  address when the record is placed at one; its mask, already shifted, in a
  register), `<NAME>_<FIELD>_SHIFT` a register field's lowest bit,
  `<NAME>_<FIELD>_MAX` a multi-bit register field's largest value, and
  `<NAME>_SIZE` a record's size in bytes;
- the host packs and unpacks with it (a record through a cached `struct.Struct`,
  so a campaign's thousands of frames a second cost one C call each).

    HELLO = Record("HELLO", (("version", "H"), ("arch", "H")))
    HELLO.pack(version=1, arch=2)  -> b"\\x01\\x00\\x02\\x00"
    HELLO.unpack(body)             -> ({"version": 1, "arch": 2}, tail)
    HELLO.asm_constants()          -> {"HELLO_VERSION": 0, "HELLO_ARCH": 2, "HELLO_SIZE": 4}

    LSR = Register("UART_LSR", (Bits("DR", 0), Bits("THRE", 5)), width=8)
    LSR.pack(THRE=1)               -> 0x20
    LSR.unpack(0x21)               -> {"DR": 1, "THRE": 1}
    LSR.asm_constants()            -> {"UART_LSR_DR": 0x01, "UART_LSR_DR_SHIFT": 0, ...}

A record's fields are (name, struct code) pairs: `B H I Q` for unsigned
integers of 1, 2, 4, 8 bytes, `Ns` for N raw bytes, and `Nx` for N bytes of
padding (named, but carrying no value).  Records are little-endian unless
declared big-endian (`byte_order=">"`, as the device tree's are).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Record:
    """A fixed-size run of named fields.  Bytes past it are the caller's
    variable part (a message's tail, a table's payload)."""

    name: str
    fields: tuple[tuple[str, str], ...]  # (field name, struct code)
    byte_order: str = "<"

    def __post_init__(self) -> None:
        if self.byte_order not in "<>":
            raise ValueError(f"record {self.name}: byte order is '<' or '>', "
                             f"not {self.byte_order!r}")
        names = [name for name, _ in self.fields]
        if len(names) != len(set(names)):
            raise ValueError(f"record {self.name} names a field twice: {names}")
        for name, code in self.fields:
            try:
                struct.calcsize(code)
            except struct.error:
                raise ValueError(f"record {self.name}: field {name} has no struct code "
                                 f"{code!r}") from None

    @cached_property  # a campaign packs and unpacks thousands of frames a second
    def struct(self) -> struct.Struct:
        return struct.Struct(self.byte_order + "".join(code for _, code in self.fields))

    @cached_property
    def names(self) -> tuple[str, ...]:
        """The fields that carry values (padding, "x", has none)."""
        return tuple(f for f, code in self.fields if not code.endswith("x"))

    @property
    def size(self) -> int:
        return self.struct.size

    @cached_property
    def offsets(self) -> Mapping[str, int]:
        """Each value-carrying field's byte offset."""
        result, at = {}, 0
        for name, code in self.fields:
            if not code.endswith("x"):
                result[name] = at
            at += struct.calcsize(self.byte_order + code)
        return result

    def unpack(self, data: bytes) -> tuple[dict[str, int], bytes]:
        """Split `data` into its named fields and the bytes after the record."""
        if len(data) < self.size:
            raise ValueError(f"{self.name} body is {len(data)} bytes, needs at least {self.size}")
        values = self.struct.unpack_from(data)  # padding ("x") fields yield no value
        return dict(zip(self.names, values, strict=True)), bytes(data[self.size :])

    def pack(self, tail: bytes = b"", **values: int) -> bytes:
        """The record with the named fields set (missing ones 0) followed by `tail`."""
        return self.struct.pack(*[values.get(f, 0) for f in self.names]) + tail

    def asm_constants(self, at: int = 0) -> dict[str, int]:
        """`<NAME>_<FIELD>`: the field's offset (plus `at`, the record's address when it
        has a fixed one); `<NAME>_SIZE`: the record's size."""
        consts = {f"{self.name}_{f.upper()}": at + o for f, o in self.offsets.items()}
        consts[f"{self.name}_SIZE"] = self.size
        return consts


@dataclass(frozen=True)
class Bits:
    """One field of a register: `width` bits from bit `shift` up."""

    name: str
    shift: int
    width: int = 1
    meaning: str = ""

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.shift

    @property
    def max(self) -> int:
        return (1 << self.width) - 1


@dataclass(frozen=True)
class Register:
    """A word of named bit-fields (a control register, a descriptor, a page-table entry)."""

    name: str
    fields: tuple[Bits, ...]
    width: int = 64

    def __post_init__(self) -> None:
        taken = 0
        for f in self.fields:
            if f.width < 1 or f.shift < 0 or f.shift + f.width > self.width:
                raise ValueError(f"register {self.name}: field {f.name} (bits {f.shift}.."
                                 f"{f.shift + f.width - 1}) is outside its {self.width} bits")
            if taken & f.mask:
                raise ValueError(f"register {self.name}: field {f.name} overlaps another field")
            taken |= f.mask
        if len({f.name for f in self.fields}) != len(self.fields):
            raise ValueError(f"register {self.name} names a field twice")

    def field(self, name: str) -> Bits:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name}")

    def pack(self, **values: int) -> int:
        """The register value with the named fields set (others 0); raises when a
        value does not fit its field."""
        result = 0
        for name, value in values.items():
            f = self.field(name)
            if value < 0 or value > f.max:
                raise ValueError(f"{value:#x} does not fit the {f.width}-bit field "
                                 f"{self.name}.{name}")
            result |= value << f.shift
        return result

    def unpack(self, value: int) -> dict[str, int]:
        """Each field's value in `value` (bits no field covers are ignored)."""
        return {f.name: (value >> f.shift) & f.max for f in self.fields}

    def asm_constants(self) -> dict[str, int]:
        """`<NAME>_<FIELD>` (mask), `<NAME>_<FIELD>_SHIFT`, and for multi-bit fields
        `<NAME>_<FIELD>_MAX`."""
        consts = {}
        for f in self.fields:
            consts[f"{self.name}_{f.name}"] = f.mask
            consts[f"{self.name}_{f.name}_SHIFT"] = f.shift
            if f.width > 1:
                consts[f"{self.name}_{f.name}_MAX"] = f.max
        return consts
