"""The human view of an inventory: header, memory map, PCI tree, CPU, ACPI.

`report(inventory)` returns the report as data, parts of lines and tables in
order; the CLI (cli/report.py) prints them.  Device names come from pci.ids at
this point only (numbers are the identity).  Lines for PCI functions read like
`lspci -nn` so the two can be compared.
"""

from __future__ import annotations

from dataclasses import dataclass

from discovery.acpi import fadt_dsdt_address
from discovery.inventory import Inventory
from discovery.pci import PciFunction, capability_name, extended_capability_name
from discovery.pciids import PciIds

INDENT = "    "


@dataclass(frozen=True)
class ReportLines:
    """A titled part of the report: lines of text."""

    title: str
    lines: list[str]


@dataclass(frozen=True)
class ReportTable:
    """A titled part of the report: a table (`right` names the right-aligned columns)."""

    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    right: frozenset[str] = frozenset()


def lspci_size(size: int) -> str:
    """A size as lspci writes it in [size=...]: 4K, 16M, 2G, or bytes."""
    for suffix, shift in (("G", 30), ("M", 20), ("K", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift}{suffix}"
    return str(size)


def lspci_line(f: PciFunction, names: PciIds) -> str:
    """`lspci -nn` wording: bdf class [ccss]: vendor device [vvvv:dddd] (rev rr)."""
    class_name = names.class_name(f.class_code) or "Class"
    vendor = names.vendor_name(f.vendor)
    device = names.device_name(f.vendor, f.device_id)
    if vendor and device:
        who = f"{vendor} {device}"
    elif vendor:
        who = f"{vendor} Device"
    else:
        who = "Device"
    line = (f"{f.bdf} {class_name} [{f.class_code >> 8:04x}]: {who} "
            f"[{f.vendor:04x}:{f.device_id:04x}]")
    if f.revision:
        line += f" (rev {f.revision:02x})"
    return line


def _bar_line(bar) -> str:
    if bar.kind == "io":
        return f"Region {bar.index}: I/O ports at {bar.address:x} [size={lspci_size(bar.size)}]"
    width = "64-bit" if bar.kind == "mem64" else "32-bit"
    prefetch = "prefetchable" if bar.prefetchable else "non-prefetchable"
    return (f"Region {bar.index}: Memory at {bar.address:x} ({width}, {prefetch}) "
            f"[size={lspci_size(bar.size)}]")


def _details(f: PciFunction, names: PciIds) -> list[str]:
    lines = []
    sub_vendor, sub_device = f.subsystem
    if sub_vendor or sub_device:
        sub_name = names.subsystem_name(f.vendor, f.device_id, sub_vendor, sub_device)
        vendor = names.vendor_name(sub_vendor) or "Vendor"
        lines.append(f"Subsystem: {vendor} {sub_name or 'Device'} "
                     f"[{sub_vendor:04x}:{sub_device:04x}]")
    prog_if = names.prog_if_name(f.class_code)
    if prog_if:
        lines.append(f"Programming interface: {f.class_code & 0xFF:02x} [{prog_if}]")
    if f.multi_function:
        lines.append("Multi-function device")
    if f.interrupt_pin:
        pin = "ABCD"[(f.interrupt_pin - 1) % 4]
        lines.append(f"Interrupt: pin {pin} routed to IRQ {f.interrupt_line}")
    lines += [_bar_line(bar) for bar in f.bars]
    caps = [f"{capability_name(c)} [{c:02x}]" for c in f.capabilities]
    caps += [f"{extended_capability_name(c)} [{c:04x}]" for c in f.extended_capabilities]
    if caps:
        lines.append("Capabilities: " + ", ".join(caps))
    if f.is_bridge:
        lines.append(f"Bus: secondary={f.secondary_bus:02x}, subordinate={f.subordinate_bus:02x}")
    return lines


def pci_tree_lines(functions: list[PciFunction], names: PciIds) -> list[str]:
    """Functions behind a bridge are listed, indented, under that bridge."""
    secondary = {(f.segment, f.secondary_bus): f for f in functions if f.is_bridge}
    children: dict[int, list[PciFunction]] = {}
    roots = []
    for f in functions:
        parent = secondary.get((f.segment, f.bus))
        if parent is not None and parent is not f:
            children.setdefault(id(parent), []).append(f)
        else:
            roots.append(f)
    lines: list[str] = []

    def walk(f: PciFunction, depth: int, seen: set[int]) -> None:
        pad = INDENT * depth
        lines.append(pad + lspci_line(f, names))
        lines.extend(pad + INDENT + detail for detail in _details(f, names))
        if id(f) in seen:  # a bridge whose secondary bus loops back: list once
            return
        for child in children.get(id(f), []):
            walk(child, depth + 1, seen | {id(f)})

    for f in roots:
        walk(f, 0, set())
    return lines


def _header(inv: Inventory) -> list[str]:
    b = inv.board
    accel = b.get("accel")
    if b.get("accel_reason"):
        accel = f"{accel} ({b['accel_reason']})"
    lines = [f"MetaOS inventory: {inv.arch_name}, machine {b.get('machine')}, "
             f"cpu {b.get('cpu')}, smp {b.get('smp')}",
             f"Accelerator: {accel}",
             f"Boot: {inv.boot.seconds:.2f} s, {inv.boot.frames} frames, "
             f"{inv.boot.crc_errors} CRC errors"]
    if inv.protocol_version is not None:
        lines.append(f"Protocol version {inv.protocol_version}")
    if inv.final is not None and inv.final.get("status"):
        lines.append(f"Discovery ended with status {inv.final['status']}")
    return lines


def _memory_table(inv: Inventory) -> ReportTable:
    return ReportTable("Memory map", ("start", "end", "size", "type"),
                       [(f"0x{r.base:016x}", f"0x{r.end - 1:016x}", lspci_size(r.length),
                         r.type_name)
                        for r in inv.memory], right=frozenset({"size"}))


def _acpi_lines(inv: Inventory) -> list[str]:
    lines = []
    if inv.rsdp is not None:
        try:
            lines.append(f"RSDP  at 0x{inv.rsdp.address:x}, revision {inv.rsdp.revision}, "
                         f"OEM {inv.rsdp.oem_id},"
                         f" checksum {'ok' if inv.rsdp.checksum_valid else 'BAD'}")
        except ValueError as exc:
            lines.append(f"RSDP  at 0x{inv.rsdp.address:x}: {exc}")
    for t in inv.acpi_tables:
        try:
            if not t.has_standard_header:
                lines.append(f"{t.signature}  at 0x{t.address:x}, {t.length} bytes, "
                             f"version {t.facs_version}"
                             f" (no checksum: the {t.signature} has none)")
                continue
            line = (f"{t.signature}  at 0x{t.address:x}, {t.length} bytes, revision {t.revision},"
                    f" OEM {t.oem_id} {t.oem_table_id},"
                    f" checksum {'ok' if t.checksum_valid else 'BAD'}")
        except ValueError as exc:
            lines.append(f"????  at 0x{t.address:x}: {exc}")
            continue
        if t.signature == "APIC" and inv.madt is not None:
            m = inv.madt
            line += f"; {m.cpu_count} CPUs (APIC IDs {', '.join(map(str, m.apic_ids))})"
            line += "".join(f"; IO APIC {io.id} at 0x{io.address:x}" for io in m.io_apics)
        elif t.signature == "MCFG":
            line += "".join(f"; ECAM base 0x{r.base:x} segment {r.segment} "
                            f"buses {r.start_bus:02x}-{r.end_bus:02x}" for r in inv.ecam)
        elif t.signature == "FACP":
            dsdt = fadt_dsdt_address(t)
            if dsdt is not None:
                line += f"; DSDT at 0x{dsdt:x}"
        lines.append(line)
    return lines


def report(inventory: Inventory) -> list[ReportLines | ReportTable]:
    """The report's parts in order; empty parts are left out."""
    names = inventory.names
    cpu_lines: list[str] = []
    if inventory.cpu is not None:
        rows = inventory.cpu.summary()
        width = max((len(label) for label, _ in rows), default=0) + 2
        cpu_lines = [f"{(label + ':') if label else '':<{width}}{value}"
                     for label, value in rows]
    parts: list[ReportLines | ReportTable] = [
        ReportLines("Machine", _header(inventory)),
        _memory_table(inventory),
        ReportLines("PCI", pci_tree_lines(inventory.pci, names)),
        ReportLines("CPU", cpu_lines),
        ReportLines("ACPI", _acpi_lines(inventory)),
        ReportLines("Guest log", inventory.logs),
        ReportLines("Faults", [", ".join(f"{k}=0x{v:x}" for k, v in fault.items())
                               for fault in inventory.faults]),
        ReportLines("Unknown frames", [f"seq {f.seq}: type 0x{int(f.type):02x},"
                                       f" {len(f.body)} bytes" for f in inventory.unknown]),
        ReportLines("Problems", inventory.problems),
    ]
    return [p for p in parts if (p.rows if isinstance(p, ReportTable) else p.lines)]
