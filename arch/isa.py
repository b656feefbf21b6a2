"""What an instruction-set architecture is to the layers above: one `Arch` object per ISA.

An `Arch` holds the facts every layer would otherwise branch on: its names (the
one people type, the code the guest's HELLO frame carries), how to turn text
into machine code and back (our assemblers, capstone), how Unicorn emulates it,
its half of the probe ABI (contract/probe_abi.py), its fault vectors, and how
QEMU runs it.  Layers above look things up here, or in a dict keyed by the
object; nothing compares architecture names.

Heavy libraries (keystone, binutils, capstone, unicorn) load on first use, so a
command that never assembles or emulates does not pay for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from contract.probe_abi import ProbePlatform
from contract.protocol import WireArch

if TYPE_CHECKING:
    import capstone


class UnknownArch(ValueError):
    """A name or code that is no architecture we know."""


@dataclass(frozen=True)
class CallingConvention:
    """How a function is called on this ISA (System V x86-64, RISC-V LP64): what the
    lowering emits and the harnesses that call its code follow."""

    arguments: tuple[str, ...]  # integer argument registers, in order
    result: str  # the integer result register
    stack_pointer: str
    return_address: str | None  # the register holding it; None: pushed at [sp] by the call


@dataclass(frozen=True, eq=False)
class Arch:
    """One ISA.  Compare with `is` (or ==, which is identity): there is one object per ISA."""

    name: str  # what people type and JSON carries: "x86_64", "riscv64"
    wire: WireArch  # the HELLO frame's arch code
    probes: ProbePlatform  # this ISA's half of the probe ABI
    max_instruction_bytes: int  # the longest encoding (what a decoder window must hold)
    # fault vectors as the guest reports them (x86 exception vectors, RISC-V mcause)
    illegal_instruction: int  # #UD / illegal instruction
    protection_fault: int  # #GP / (on RISC-V the same illegal instruction)
    fault_names: Mapping[int, str]
    access_faults: Mapping[str, int]  # the vector a bad "read" / "write" / "fetch" raises
    calling: CallingConvention  # a probe returns its status the same way
    pc_register: str
    # QEMU
    qemu_binary: str
    debian_package: str
    boots_from_disk: bool  # x86-64: a disk image the firmware boots; RISC-V: an ELF kernel
    default_board: str
    # capstone (arch, mode) and unicorn (arch, mode), as the libraries number them
    capstone_mode: tuple[str, tuple[str, ...]] = field(repr=False, default=("", ()))
    unicorn_mode: tuple[str, str] = field(repr=False, default=("", ""))
    unicorn_registers: tuple[str, str] = field(repr=False, default=("", ""))  # (module, prefix)

    def __str__(self) -> str:
        return self.name

    def __reduce__(self) -> tuple:
        return (_arch_named, (self.name,))  # pickled by name: one object per ISA in every process

    # -- machine code --------------------------------------------------------------

    def assemble(self, text: str, *, address: int = 0, constants: Mapping[str, int] = {},
                 extensions: str | None = None) -> bytes:
        """The bytes of `text` (this ISA's assembly, our dialect) placed at `address`, with
        `constants` substituted; every instruction re-decoded by capstone.  The one way from
        text to machine code.  `extensions`: the ISA subset the text may use, where the
        assembler restricts it (RISC-V -march, e.g. "rv64g"; None: the default)."""
        raise NotImplementedError

    @cached_property
    def disassembler(self) -> capstone.Cs:
        """A capstone decoder for this ISA with instruction detail (groups) on."""
        import capstone

        arch_name, mode_names = self.capstone_mode
        mode = 0
        for name in mode_names:
            mode |= getattr(capstone, name)
        cs = capstone.Cs(getattr(capstone, arch_name), mode)
        cs.detail = True
        return cs

    def unicorn(self):
        """A fresh Unicorn engine for this ISA."""
        import unicorn

        arch_name, mode_name = self.unicorn_mode
        return unicorn.Uc(getattr(unicorn, arch_name), getattr(unicorn, mode_name))

    def unicorn_register(self, name: str) -> int:
        """Unicorn's number for the register called `name` ("rax", "a0", ...)."""
        import importlib

        module, prefix = self.unicorn_registers
        return getattr(importlib.import_module(f"unicorn.{module}"), f"{prefix}{name.upper()}")

    def fault_name(self, vector: int) -> str:
        return self.fault_names.get(vector, f"vector {vector}")

    # -- QEMU ------------------------------------------------------------------------

    def exit_failure(self, status: int | None, console_text: str) -> str | None:
        """Why a discovery guest's QEMU exit `status` means failure, or None when it passed.
        `console_text`: what the guest printed outside frames (boot-stage messages)."""
        raise NotImplementedError


def _arch_named(name: str) -> Arch:
    from arch import by_name  # the registry imports this module: look it up at call time

    return by_name(name)
