"""QEMU riscv64 `virt`, the board: its memory map and how its devices are wired.

As QEMU 7.2's `virt` lays it out (hw/riscv/virt.c, `virt_memmap`; hw/riscv/virt.h
for the interrupt sources).  The UART's and PCIe ECAM's bases are read from the
device tree at boot (their values here serve the host's documentation and
tests); the others (CLINT, PLIC, sifive_test, the virtio-mmio slots) are used as
given.  Where the kernel keeps its own data is contract/riscv64/memory_map.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract import uart16550
from contract.constants import ConstantSet, collect
from contract.layout import Bits, Register


@dataclass(frozen=True)
class Region:
    name: str
    base: int
    size: int
    what: str


#                  name            base         size         what
VIRT_MEMORY_MAP = (
    Region("TEST",       0x00100000, 0x1000,      "sifive_test: 32-bit store exits QEMU"),
    Region("CLINT",      0x02000000, 0x10000,     "core-local interruptor; mtime at +0xBFF8"),
    Region("PCIE_PIO",   0x03000000, 0x10000,     "PCIe I/O port window"),
    Region("PLIC",       0x0C000000, 0x600000,    "platform interrupt controller"),
    Region("UART0",      0x10000000, 0x100,       "ns16550a, reg-shift 0"),
    Region("VIRTIO",     0x10001000, 0x8000,      "8 virtio-mmio slots, 0x1000 apart (legacy)"),
    Region("PCIE_ECAM",  0x30000000, 0x10000000,  "PCIe ECAM, 256 buses x 1 MiB"),
    Region("PCIE_MMIO",  0x40000000, 0x40000000,  "PCIe 32-bit memory window"),
    Region("DRAM",       0x80000000, 0x80000000,  "RAM (size set by -m); -kernel ELF entry here"),
)

# sifive_test (hw/misc/sifive_test.c): a 32-bit store of STATUS | CODE << 16.
SIFIVE_TEST = Register("SIFIVE_TEST", (
    Bits("STATUS", 0, 16, "PASS exits QEMU with 0, FAIL with CODE"),
    Bits("CODE", 16, 16, "QEMU's exit status after a FAIL"),
), width=32)
SIFIVE_TEST_PASS = 0x5555
SIFIVE_TEST_FAIL = 0x3333
MTIME_OFFSET = 0xBFF8  # CLINT mtime, 10 MHz on virt
MTIME_HZ = 10_000_000  # used only when the device tree has no timebase-frequency
MTIMECMP_OFFSET = 0x4000  # CLINT mtimecmp of hart h at +0x4000 + 8 * h
HART_WAIT_TICKS = MTIME_HZ  # the driver waits at most 1 s for the other harts

# UART0 is a 16550 (contract/uart16550.py) with its registers one byte apart; the
# kernel reads its base from the device tree, so its register constants are offsets.
UART_REG_SHIFT = 0

# virt's virtio-mmio transports (hw/riscv/virt.c: VIRTIO_COUNT of them, one per
# 0x1000 from the VIRTIO region's base); the kernel looks for its console there.
VIRTIO_MMIO_STRIDE = 0x1000
_VIRTIO_WINDOW = next(r for r in VIRT_MEMORY_MAP if r.name == "VIRTIO")
VIRTIO_MMIO_SLOTS = _VIRTIO_WINDOW.size // VIRTIO_MMIO_STRIDE

# The PLIC (riscv-plic-spec 1.0.0 memory map) as virt wires it: UART0 is source 10
# (hw/riscv/virt.h UART0_IRQ), virtio-mmio slot n is source VIRTIO_IRQ + n, and
# each hart has two contexts, M-mode first (virt's hart config "MS"), so hart
# h's M-mode context is 2 * h on one socket.
PLIC_REGISTERS = {
    "UART0_IRQ": 10,
    "VIRTIO_IRQ": 1,
    "PLIC_PRIORITY": 0x0,  # + 4 * source
    "PLIC_ENABLE": 0x2000, "PLIC_ENABLE_STRIDE": 0x80,  # + context * stride: bitmap of sources
    "PLIC_CONTEXT": 0x200000, "PLIC_CONTEXT_STRIDE": 0x1000,  # threshold at +0, claim at +4
    "PLIC_THRESHOLD": 0, "PLIC_CLAIM": 4,
    "PLIC_CONTEXTS_PER_HART": 2, "PLIC_M_CONTEXT": 0,
}


def asm_constants() -> ConstantSet:
    return collect(
        __name__, SIFIVE_TEST, {f"{r.name}_BASE": r.base for r in VIRT_MEMORY_MAP},
        uart16550.asm_constants(base=0, reg_shift=UART_REG_SHIFT), PLIC_REGISTERS,
        {
            "SIFIVE_TEST_PASS": SIFIVE_TEST_PASS, "SIFIVE_TEST_FAIL": SIFIVE_TEST_FAIL,
            "MTIME_OFFSET": MTIME_OFFSET, "MTIME_HZ": MTIME_HZ, "MTIMECMP_OFFSET": MTIMECMP_OFFSET,
            "HART_WAIT_TICKS": HART_WAIT_TICKS,
            "VIRTIO_MMIO_STRIDE": VIRTIO_MMIO_STRIDE, "VIRTIO_MMIO_SLOTS": VIRTIO_MMIO_SLOTS,
        },
    )
