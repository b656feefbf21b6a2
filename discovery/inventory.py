"""The inventory of one machine, built from the frames of one discovery run.

Architecture-neutral parts (memory, PCI, ACPI, logs) live here; the CPU section
is an arch-specific object chosen from the HELLO frame's `arch` (see CpuSection).
Raw material (config spaces, CPUID results, ACPI tables) is kept for dumps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from arch import RISCV64, X86_64, Arch, by_name, by_wire
from contract.frames import Frame, ProtocolError
from contract.protocol import PROTOCOL_VERSION, Msg
from discovery.acpi import Madt, Rsdp, Table, parse_madt, parse_mcfg
from discovery.memory import MemoryRegion
from discovery.pci import PciFunction, function_from_fields
from discovery.pciids import PciIds
from link.session import Run

SCHEMA = "metaos.inventory/1"
# The board as the inventory states it; accel_reason says why that accelerator
# (qemu.boards.AccelChoice), None in inventories made before it was kept.
BOARD_KEYS = ("machine", "cpu", "smp", "accel", "accel_reason", "qemu_args")


class CpuSection(Protocol):
    """What an architecture plugs into an inventory.

    accept(frame)      take the frames it understands (CPUID, HART, DEVICETREE...) -> True
    finish(inventory)  called once after all frames (e.g. to read the MADT)
    to_json()          the value of the inventory's "cpu" key
    extra_json()       additional top-level keys (e.g. {"devicetree": ...})
    summary()          lscpu-like (label, value) rows for the human report
    """

    def accept(self, frame: Frame) -> bool: ...
    def finish(self, inventory: Inventory) -> None: ...
    def to_json(self) -> dict: ...
    def extra_json(self) -> dict: ...
    def summary(self) -> list[tuple[str, str]]: ...


def cpu_section_for(arch: Arch | None) -> CpuSection | None:
    """The CPU section an architecture's frames go into (None: unknown arch)."""
    from discovery.harts import RiscvCpu
    from discovery.x86 import X86Cpu

    sections: dict[Arch, type] = {X86_64: X86Cpu, RISCV64: RiscvCpu}
    factory = sections.get(arch)
    return factory() if factory else None


@dataclass
class BootStats:
    seconds: float = 0.0
    frames: int = 0
    crc_errors: int = 0

    def to_json(self) -> dict:
        return {"seconds": self.seconds, "frames": self.frames, "crc_errors": self.crc_errors}


@dataclass
class Inventory:
    arch: Arch | None  # None: the HELLO frame named an architecture this host does not know
    board: dict
    boot: BootStats
    arch_code: int | None = None  # the HELLO frame's arch code, as sent
    protocol_version: int | None = None
    memory: list[MemoryRegion] = field(default_factory=list)
    pci: list[PciFunction] = field(default_factory=list)
    rsdp: Rsdp | None = None
    acpi_tables: list[Table] = field(default_factory=list)
    cpu: CpuSection | None = None
    logs: list[str] = field(default_factory=list)
    faults: list[dict] = field(default_factory=list)
    final: dict | None = None
    unknown: list[Frame] = field(default_factory=list)  # types this host does not know
    problems: list[str] = field(default_factory=list)  # what could not be decoded, and why
    names: PciIds = field(default_factory=PciIds, repr=False)

    @property
    def arch_name(self) -> str:
        return self.arch.name if self.arch is not None else f"arch{self.arch_code}"

    @classmethod
    def from_boot(cls, run: Run) -> Inventory:
        """Decode one boot to FINAL (link/session.py)."""
        return cls.from_frames(
            run.frames, board=run.board.to_json(),
            boot={"seconds": run.seconds, "frames": len(run.frames), "crc_errors": run.crc_errors})

    @classmethod
    def from_frames(cls, frames: list[Frame], board: dict, boot: dict) -> Inventory:
        """Decode one run.  `board`: BOARD_KEYS (and optionally
        arch); `boot`: seconds, frames, crc_errors as measured by the session."""
        arch, arch_code = _arch_of(frames, board)
        inventory = cls(
            arch=arch, arch_code=arch_code, board=dict(board),
            boot=BootStats(float(boot.get("seconds", 0.0)), int(boot.get("frames", len(frames))),
                           int(boot.get("crc_errors", 0))),
            cpu=cpu_section_for(arch),
        )
        if inventory.cpu is None:
            inventory.problems.append(
                f"no CPU decoder for {inventory.arch_name}; CPU frames kept raw")
        for frame in frames:
            try:
                inventory._take(frame)
            except (ProtocolError, ValueError) as exc:
                inventory.problems.append(f"frame seq {frame.seq} ({_type_name(frame)}): {exc}")
        if inventory.cpu is not None:
            inventory.cpu.finish(inventory)
        inventory.pci.sort(key=lambda f: (f.segment, f.bus, f.device, f.function))
        return inventory

    def _take(self, frame: Frame) -> None:
        if not frame.known:
            self.unknown.append(frame)
            return
        if self.cpu is not None and self.cpu.accept(frame):
            return
        fields, tail = frame.fields()
        if frame.type == Msg.HELLO:
            self.protocol_version = fields["version"]
            if fields["version"] > PROTOCOL_VERSION:
                self.problems.append(f"guest speaks protocol {fields['version']}, this host "
                                     f"knows {PROTOCOL_VERSION}: update the host")
        elif frame.type == Msg.LOG:
            self.logs.append(tail.decode("ascii", errors="replace"))
        elif frame.type == Msg.MEMORY:
            self.memory.append(MemoryRegion(fields["base"], fields["length"], fields["type"]))
        elif frame.type == Msg.PCI_FUNCTION:
            self.pci.append(function_from_fields(fields, tail))
        elif frame.type == Msg.ACPI_RSDP:
            self.rsdp = Rsdp(fields["address"], tail)
        elif frame.type == Msg.ACPI_TABLE:
            self.acpi_tables.append(Table(fields["address"], tail))
        elif frame.type == Msg.FAULT:
            self.faults.append(fields)
        elif frame.type == Msg.FINAL:
            self.final = fields
        else:  # known to the protocol, but for another architecture's section
            self.unknown.append(frame)

    def table(self, signature: str) -> Table | None:
        return next((t for t in self.acpi_tables if _signature(t) == signature), None)

    @property
    def madt(self) -> Madt | None:
        table = self.table("APIC")
        try:
            return parse_madt(table) if table else None
        except ValueError:
            return None

    @property
    def ecam(self):
        table = self.table("MCFG")
        try:
            return parse_mcfg(table) if table else []
        except ValueError:
            return []

    def to_json(self) -> dict:
        names = self.names if self.names.available else None
        result = {
            "schema": SCHEMA,
            "arch": self.arch_name,
            "board": {key: self.board.get(key) for key in BOARD_KEYS},
            "boot": self.boot.to_json(),
            "memory": [region.to_json() for region in self.memory],
            "pci": [function.to_json(names) for function in self.pci],
            "cpu": self.cpu.to_json() if self.cpu is not None else {},
            "acpi": [t.to_json() for t in self.acpi_tables if _signature(t) is not None],
        }
        if self.cpu is not None:
            result.update(self.cpu.extra_json())
        return result


def _signature(table: Table) -> str | None:
    try:
        return table.signature
    except ValueError:
        return None


def _type_name(frame: Frame) -> str:
    return frame.type.name if frame.known else f"0x{int(frame.type):02x}"


def _arch_of(frames: list[Frame], board: dict) -> tuple[Arch | None, int | None]:
    """The architecture the HELLO frame names (and its code), else the board's."""
    for frame in frames:
        if frame.type == Msg.HELLO:
            try:
                fields, _ = frame.fields()
                return by_wire(fields["arch"]), fields["arch"]
            except ProtocolError:
                break
    return by_name(board.get("arch", X86_64)), None
