"""QEMU riscv64 `virt`: the memory map and device registers, written out once.

Every address the RISC-V kernel uses comes from here (emitted into assembly by
`asm_constants()`), as QEMU 7.2's `virt` lays it out (hw/riscv/virt.c,
`virt_memmap`).  The UART's and PCIe ECAM's bases are read from the device tree
at boot (their values here serve the host's documentation and tests); the
others (CLINT, PLIC, sifive_test, the virtio-mmio slots) are used as given.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.frames import MAX_ENCODED
from contract import pci
from contract.pci import CONFIG_SPACE_EXTENDED, ECAM_BUS_SHIFT, ECAM_DEVICE_SHIFT, ECAM_FUNCTION_SHIFT
from contract.protocol import HEADER, STAY_IDLE_POLL_NS
from contract.probe_abi import RISCV_MSTATUS_FS_INITIAL, RISCV_MSTATUS_VS_INITIAL
from contract.virtio import QUEUE_ALIGN


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

# Where the kernel keeps what its image does not carry (RAM above the image;
# QEMU puts the device tree at the top of RAM, far from these).
#                  name             address      why
KERNEL_RAM = {
    "KERNEL_BASE":       0x80000000,  # ELF entry: -bios none jumps here with a0=hartid, a1=DTB
    "FRAME_BODY":        0x80100000,  # one frame's body (<= 64 KiB), its header just before
    "HART_RECORDS":      0x80120000,  # one HART frame body per hart slot
    "STACKS_TOP":        0x80200000,  # hart slot n's stack ends at STACKS_TOP - n * STACK_SIZE
    "RX_BODY":           0x80200008,  # a received frame, decoded in place; header just before
    "PROBE_SLOTS_BASE":  0x80400000,  # PROBE_SLOTS slot records (kernel/riscv64/probing.py)
    "RESULT_CACHE_BASE": 0x80600000,  # PROBE_RESULT_CACHE cached results
    "VIRTIO_CONSOLE":    0x80800000,  # the console's queues and receive buffers (contract/virtio.py)
    "CONSOLE_TX_BUFFER": 0x80820000,  # one encoded frame and its delimiter, sent on the console
}
CONSOLE_TX_CAPACITY = MAX_ENCODED + 1  # the longest encoded frame, then its delimiter
assert KERNEL_RAM["VIRTIO_CONSOLE"] % QUEUE_ALIGN == 0, "legacy queues are page-aligned (QueuePFN)"
RX_CAPACITY = 0x1F000  # more than any legal encoded frame (contract/frames.py MAX_ENCODED)
STACK_SIZE_LOG2 = 12  # 4 KiB per hart: the deepest path (PCI recursion) uses < 1 KiB
MAX_HARTS = 64  # QEMU virt allows up to 512; more slots than we ever boot here

SIFIVE_TEST_PASS = 0x5555  # low half: exit QEMU with status 0
SIFIVE_TEST_FAIL = 0x3333  # low half: exit QEMU with the status in bits 31:16
MTIME_OFFSET = 0xBFF8  # CLINT mtime, 10 MHz on virt
MTIME_HZ = 10_000_000  # used only when the device tree has no timebase-frequency
MTIMECMP_OFFSET = 0x4000  # CLINT mtimecmp of hart h at +0x4000 + 8 * h
HART_WAIT_TICKS = MTIME_HZ  # the driver waits at most 1 s for the other harts

# 16550 registers (byte offsets, reg-shift 0) and the bits we touch.
UART_REGISTERS = {
    "UART_THR": 0, "UART_IER": 1, "UART_FCR": 2, "UART_LCR": 3, "UART_LSR": 5,
    "UART_RBR": 0, "UART_LSR_DR": 0x01,
    "UART_LCR_8N1": 0x03, "UART_FCR_ENABLE_CLEAR": 0x07,
    "UART_FCR_TRIGGER_14": 0xC0,  # receive trigger level: 14 bytes
    "UART_LSR_THRE": 0x20,
    "UART_FIFO_SIZE": 16,  # 16550A transmit FIFO depth
    "UART_IER_ERBFI": 0x01,  # interrupt when received data is available (or times out)
}

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
# How long an idle staying guest polls before it sleeps in wfi (contract/protocol.py),
# as the divisor of the timebase the assembly has at hand.
IDLE_SPIN_PER_SECOND = 1_000_000_000 // STAY_IDLE_POLL_NS

PCI_REGISTERS = {
    "ECAM_BUS_SHIFT": ECAM_BUS_SHIFT, "ECAM_DEVICE_SHIFT": ECAM_DEVICE_SHIFT,
    "ECAM_FUNCTION_SHIFT": ECAM_FUNCTION_SHIFT,
    "PCI_CONFIG_SIZE": CONFIG_SPACE_EXTENDED,
    "PCI_VENDOR_ID": pci.VENDOR_ID, "PCI_COMMAND": pci.COMMAND, "PCI_HEADER_TYPE": pci.HEADER_TYPE,
    "PCI_BAR0": pci.BAR0,
    "PCI_PRIMARY_BUS": pci.PRIMARY_BUS,  # bridges: primary, secondary, subordinate, latency timer
    "PCI_COMMAND_DECODE": 0x3,  # I/O space + memory space enable
    "PCI_HEADER_MULTIFUNCTION": 0x80, "PCI_HEADER_LAYOUT": 0x7F,
    "PCI_HEADER_BRIDGE": 1, "PCI_BARS_DEVICE": 6, "PCI_BARS_BRIDGE": 2,
}

# Flattened device tree (devicetree.org spec, ch. 5), big-endian.
FDT_CONSTANTS = {
    "FDT_MAGIC": 0xD00DFEED, "FDT_TOTALSIZE": 4, "FDT_OFF_STRUCT": 8, "FDT_OFF_STRINGS": 12,
    "FDT_BEGIN_NODE": 1, "FDT_END_NODE": 2, "FDT_PROP": 3, "FDT_NOP": 4, "FDT_END": 9,
    "FDT_MAX_DEPTH": 16,
}

MSTATUS_FS_VS_INITIAL = RISCV_MSTATUS_FS_INITIAL | RISCV_MSTATUS_VS_INITIAL  # FP/vector CSRs readable

# Machine-mode CSR bits and trap causes (RISC-V Privileged Architecture).
MACHINE_CSR_BITS = {
    "MSTATUS_MIE": 1 << 3, "MSTATUS_MPIE": 1 << 7, "MSTATUS_MPP": 3 << 11,
    "MSTATUS_MPRV": 1 << 17,
    "MIE_MTIE": 1 << 7, "MIE_MEIE": 1 << 11,
    "MISA_D": 1 << (ord("D") - ord("A")),  # double-precision FP present
    "COUNTEREN_CY_TM_IR": 0b111,  # cycle, time, instret readable one level down
    "MCAUSE_INTERRUPT_SHIFT": 63, "MCAUSE_MACHINE_TIMER": 7,
    "MCAUSE_STORE_ACCESS_FAULT": 7, "MCAUSE_ECALL_U": 8, "MCAUSE_ECALL_M": 11,
    "MCAUSE_BREAKPOINT": 3,
}

# Sdtrig (RISC-V Debug Specification, "mcontrol"): an address-match trigger.
# Type 2 in tdata1[63:60]; fires on execution at tdata2 in M- or U-mode;
# action 0 (a breakpoint exception, mepc = the address), match 0 (equal).
MCONTROL = {
    "MCONTROL_TYPE2": 2 << 60,
    "MCONTROL_FIRE_ON_EXECUTE_MU": (1 << 6) | (1 << 3) | (1 << 2),  # m, u, execute
}


def asm_constants() -> dict[str, int]:
    consts = {f"{r.name}_BASE": r.base for r in VIRT_MEMORY_MAP}
    consts.update(KERNEL_RAM)
    # The header sits just below the body so the body's 8-byte fields are aligned.
    consts["FRAME_BUFFER"] = KERNEL_RAM["FRAME_BODY"] - HEADER.size
    consts["RX_FRAME"] = KERNEL_RAM["RX_BODY"] - HEADER.size
    consts.update(UART_REGISTERS)
    consts.update(PLIC_REGISTERS)
    consts.update(PCI_REGISTERS)
    consts.update(FDT_CONSTANTS)
    consts.update(MACHINE_CSR_BITS)
    consts.update(MCONTROL)
    consts.update(
        STACK_SIZE_LOG2=STACK_SIZE_LOG2, MAX_HARTS=MAX_HARTS,
        SIFIVE_TEST_PASS=SIFIVE_TEST_PASS, SIFIVE_TEST_FAIL=SIFIVE_TEST_FAIL,
        MTIME_OFFSET=MTIME_OFFSET, HART_WAIT_TICKS=HART_WAIT_TICKS, MTIME_HZ=MTIME_HZ,
        MTIMECMP_OFFSET=MTIMECMP_OFFSET, RX_CAPACITY=RX_CAPACITY,
        MSTATUS_FS_VS_INITIAL=MSTATUS_FS_VS_INITIAL, IDLE_SPIN_PER_SECOND=IDLE_SPIN_PER_SECOND,
        VIRTIO_MMIO_STRIDE=VIRTIO_MMIO_STRIDE, VIRTIO_MMIO_SLOTS=VIRTIO_MMIO_SLOTS,
        CONSOLE_TX_CAPACITY=CONSOLE_TX_CAPACITY,
    )
    return consts
