"""The flattened device tree a RISC-V guest sends (DEVICETREE frame), decoded.

Parsed with the `fdt` package; this module only picks out the nodes that matter
for the inventory: memory, harts (with their `riscv,isa` strings), the PCIe host
bridge (ECAM window, bus range, address ranges) and the UART.  Addresses use
each node's parent `#address-cells` / `#size-cells` (devicetree.org spec 2.3.5).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import fdt

from contract.fdt import DEFAULT_ADDRESS_CELLS, DEFAULT_SIZE_CELLS
from contract.pci import ECAM_BUS_SHIFT

PCIE_COMPATIBLE = "pci-host-ecam-generic"
UART_COMPATIBLE = "ns16550a"
# PCI bus binding (IEEE 1275 PCI, "phys.hi" cell): bits 25:24 = space, 30 = prefetchable.
PCI_SPACES = {0: "config", 1: "io", 2: "mem32", 3: "mem64"}


class DeviceTreeError(ValueError):
    """A blob that is not a device tree we can read."""


@dataclass(frozen=True)
class MemoryNode:
    base: int
    size: int


@dataclass(frozen=True)
class HartNode:
    hartid: int
    isa: str
    status: str
    compatible: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PciRange:
    space: str  # io, mem32, mem64
    prefetchable: bool
    pci_address: int
    cpu_address: int
    size: int


@dataclass(frozen=True)
class PcieHostBridge:
    path: str
    ecam_base: int
    ecam_size: int
    bus_first: int
    bus_last: int
    ranges: list[PciRange]


@dataclass(frozen=True)
class UartNode:
    path: str
    base: int
    size: int
    compatible: list[str]


@dataclass(frozen=True)
class DeviceTree:
    memory: list[MemoryNode]
    harts: list[HartNode]
    pcie: PcieHostBridge | None
    uart: UartNode | None
    bootargs: str

    def to_json(self) -> dict:
        """The inventory's "devicetree" section."""
        return {
            "memory": [asdict(m) for m in self.memory],
            "cpus": [asdict(h) for h in self.harts],
            "pcie": asdict(self.pcie) if self.pcie else None,
            "uart": asdict(self.uart) if self.uart else None,
        }


def _cells(node, name: str, default: int) -> int:
    if node is None or not node.exist_property(name):
        return default
    return node.get_property(name).value


def _words(node, name: str) -> list[int]:
    prop = node.get_property(name)
    return list(prop.data) if prop is not None and hasattr(prop, "data") else []


def _number(cells: list[int]) -> int:
    value = 0
    for cell in cells:
        value = value << 32 | cell
    return value


def _reg(node) -> list[tuple[int, int]]:
    """(address, size) pairs of `reg`, in the parent's cell counts."""
    address_cells = _cells(node.parent, "#address-cells", DEFAULT_ADDRESS_CELLS)
    size_cells = _cells(node.parent, "#size-cells", DEFAULT_SIZE_CELLS)
    words = _words(node, "reg")
    step = address_cells + size_cells
    return [(_number(words[i:i + address_cells]), _number(words[i + address_cells:i + step]))
            for i in range(0, len(words) - step + 1, step)]


def _strings(node, name: str) -> list[str]:
    prop = node.get_property(name)
    return list(prop.data) if prop is not None else []


def _walk(tree):
    for path, nodes, _ in tree.walk():
        for node in nodes:
            yield (path.rstrip("/") + "/" + node.name), node


def _compatible_with(tree, compatible: str):
    return [(path, node) for path, node in _walk(tree)
            if compatible in _strings(node, "compatible")]


def _pcie(tree) -> PcieHostBridge | None:
    found = _compatible_with(tree, PCIE_COMPATIBLE)
    if not found:
        return None
    path, node = found[0]
    (base, size), *_ = _reg(node)
    bus_range = _words(node, "bus-range") or [0, (size >> ECAM_BUS_SHIFT) - 1]
    address_cells = _cells(node, "#address-cells", 3)
    size_cells = _cells(node, "#size-cells", 2)
    parent_cells = _cells(node.parent, "#address-cells", DEFAULT_ADDRESS_CELLS)
    words, step = _words(node, "ranges"), address_cells + parent_cells + size_cells
    ranges = []
    for i in range(0, len(words) - step + 1, step):
        phys_hi = words[i]
        ranges.append(PciRange(
            space=PCI_SPACES[phys_hi >> 24 & 3],
            prefetchable=bool(phys_hi >> 30 & 1),
            pci_address=_number(words[i + 1:i + address_cells]),
            cpu_address=_number(words[i + address_cells:i + address_cells + parent_cells]),
            size=_number(words[i + address_cells + parent_cells:i + step]),
        ))
    return PcieHostBridge(path, base, size, bus_range[0], bus_range[1], ranges)


def _uart(tree) -> UartNode | None:
    found = _compatible_with(tree, UART_COMPATIBLE)
    if not found:
        return None
    path, node = found[0]
    (base, size), *_ = _reg(node)
    return UartNode(path, base, size, _strings(node, "compatible"))


def parse_devicetree(blob: bytes) -> DeviceTree:
    """Decode a DTB.  Raises DeviceTreeError if it is not one."""
    try:
        tree = fdt.parse_dtb(bytes(blob))
    except Exception as exc:  # fdt raises bare Exceptions for malformed blobs
        raise DeviceTreeError(f"the DEVICETREE frame does not hold a valid DTB: {exc}") from exc
    memory = [MemoryNode(base, size)
              for _, node in _walk(tree) if _strings(node, "device_type") == ["memory"]
              for base, size in _reg(node)]
    harts = []
    cpus = tree.get_node("/cpus") if tree.exist_node("/cpus") else None
    for node in cpus.nodes if cpus else []:
        if _strings(node, "device_type") != ["cpu"]:
            continue
        (hartid, _), *_ = _reg(node)
        isa = _strings(node, "riscv,isa")
        status = _strings(node, "status")
        harts.append(HartNode(hartid, isa[0] if isa else "", status[0] if status else "okay",
                              _strings(node, "compatible")))
    chosen = tree.get_node("/chosen") if tree.exist_node("/chosen") else None
    bootargs = _strings(chosen, "bootargs") if chosen else []
    return DeviceTree(
        memory=sorted(memory, key=lambda m: m.base),
        harts=sorted(harts, key=lambda h: h.hartid),
        pcie=_pcie(tree), uart=_uart(tree),
        bootargs=bootargs[0] if bootargs else "",
    )
