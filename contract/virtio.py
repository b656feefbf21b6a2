"""The virtio console both kernels serve probes on, declared once: the legacy
register layouts of its two transports, the split virtqueue, the bits we use.

Sources: Virtio 1.0 (OASIS, 2016) 4.1.4.8 legacy PCI, 4.2.4 legacy MMIO, 2.4
split virtqueues (2.4.2 the legacy layout), 5.3 the console device.  QEMU 7.2's
virtio-serial offers both transports as legacy ones on our boards: the x86-64
`virtio-serial-pci` on the q35/pc root bus (transitional, I/O BAR0), the RISC-V
`virtio-serial-device` on a `virt` virtio-mmio slot (force-legacy by default).

Without VIRTIO_CONSOLE_F_MULTIPORT the device has one port, port 0, with its
receive queue 0 and transmit queue 1 and no control queue; QEMU then treats the
port as open once the driver is DRIVER_OK.  Why a second line at all: QEMU's
16550 costs a main-loop round trip per received byte (about 4.5 us, measured),
a virtqueue buffer costs one memcpy.
"""

from __future__ import annotations

PCI_VENDOR = 0x1AF4
PCI_DEVICE_CONSOLE_LEGACY = 0x1003  # transitional console: legacy registers in BAR0 (I/O)
DEVICE_ID_CONSOLE = 3  # virtio device type (MMIO DeviceID; PCI subsystem id)

# Legacy PCI: byte offsets into the I/O BAR (4.1.4.8), no MSI-X.
LEGACY_PCI = {
    "HOST_FEATURES": 0x00, "GUEST_FEATURES": 0x04, "QUEUE_PFN": 0x08, "QUEUE_SIZE": 0x0C,
    "QUEUE_SELECT": 0x0E, "QUEUE_NOTIFY": 0x10, "STATUS": 0x12, "ISR": 0x13,
}
# Legacy MMIO (version 1): byte offsets into one slot's registers (4.2.4).
LEGACY_MMIO = {
    "MAGIC": 0x000, "VERSION": 0x004, "DEVICE_ID": 0x008, "HOST_FEATURES": 0x010,
    "GUEST_FEATURES": 0x020, "GUEST_PAGE_SIZE": 0x028, "QUEUE_SEL": 0x030,
    "QUEUE_NUM_MAX": 0x034, "QUEUE_NUM": 0x038, "QUEUE_ALIGN": 0x03C, "QUEUE_PFN": 0x040,
    "QUEUE_NOTIFY": 0x050, "INTERRUPT_STATUS": 0x060, "INTERRUPT_ACK": 0x064, "STATUS": 0x070,
}
MMIO_MAGIC = 0x74726976  # "virt", little-endian
MMIO_LEGACY_VERSION = 1

# Device status bits (2.1).
STATUS = {
    "ACKNOWLEDGE": 1 << 0,  # the guest noticed the device
    "DRIVER": 1 << 1,  # the guest can drive it
    "DRIVER_OK": 1 << 2,  # queues set up: the device may use them
    "FAILED": 1 << 7,  # the guest gave up on it
}
DESC_F_WRITE = 2  # the device writes this buffer (a receive buffer)
AVAIL_F_NO_INTERRUPT = 1  # the driver polls: no interrupt per used buffer

RECEIVEQ, TRANSMITQ = 0, 1  # port 0's queues without MULTIPORT
# QEMU sizes port 0's queues 128 (legacy PCI: fixed, the driver checks it; MMIO:
# the driver writes it).  The legacy layout is computed from it, so it is fixed.
QUEUE_SIZE = 128
QUEUE_ALIGN = 4096  # legacy: the used ring starts on the next 4 KiB boundary
DESC_SIZE = 16  # addr (Q), len (I), flags (H), next (H)
DESC_ADDR, DESC_LEN, DESC_FLAGS, DESC_NEXT = 0, 8, 12, 14
USED_ELEM_SIZE = 8  # id (I), len (I)
USED_ID, USED_LEN = 0, 4
PFN_SHIFT = 12  # legacy queue addresses are 4 KiB page numbers
GUEST_PAGE_SIZE = 1 << PFN_SHIFT  # legacy MMIO GuestPageSize: the driver sets the page it counts in
RING_FLAGS, RING_IDX, RING_ENTRIES = 0, 2, 4  # offsets in the avail and used rings
RING_HEADER = RING_ENTRIES
AVAIL_ENTRY_SIZE = 2  # an avail entry is a descriptor index (le16)

AVAIL_OFFSET = QUEUE_SIZE * DESC_SIZE
_AVAIL_END = AVAIL_OFFSET + RING_HEADER + AVAIL_ENTRY_SIZE * QUEUE_SIZE + 2  # + used_event
USED_OFFSET = -(-_AVAIL_END // QUEUE_ALIGN) * QUEUE_ALIGN
QUEUE_BYTES = -(-(USED_OFFSET + RING_HEADER + USED_ELEM_SIZE * QUEUE_SIZE + 2) // QUEUE_ALIGN) * QUEUE_ALIGN

# Receive buffers the driver keeps posted.  QEMU fills one buffer per chunk it
# read from the host's socket, so a buffer holds one or a few frames; every one
# is handed back as soon as its last byte is taken.
RX_BUFFERS = 64  # a power of two: a used id is masked into range
RX_BUFFER_SIZE = 1024
if RX_BUFFERS & (RX_BUFFERS - 1) or RX_BUFFERS > QUEUE_SIZE:
    raise ValueError("RX_BUFFERS must be a power of two no larger than QUEUE_SIZE")
# The console's memory, at a page-aligned base each kernel's memory map gives:
#   +0                         receive queue (QUEUE_BYTES)
#   +QUEUE_BYTES               transmit queue (QUEUE_BYTES)
#   +2 * QUEUE_BYTES           RX_BUFFERS receive buffers of RX_BUFFER_SIZE
CONSOLE_RX_QUEUE = 0
CONSOLE_TX_QUEUE = QUEUE_BYTES
CONSOLE_RX_BUFFERS = 2 * QUEUE_BYTES
CONSOLE_BYTES = CONSOLE_RX_BUFFERS + RX_BUFFERS * RX_BUFFER_SIZE


def asm_constants() -> dict[str, int]:
    consts = {f"VIRTIO_PCI_{name}": off for name, off in LEGACY_PCI.items()}
    consts.update({f"VIRTIO_MMIO_{name}": off for name, off in LEGACY_MMIO.items()})
    consts.update({f"VIRTIO_STATUS_{name}": bit for name, bit in STATUS.items()})
    consts.update(
        VIRTIO_PCI_VENDOR=PCI_VENDOR,
        VIRTIO_PCI_DEVICE_CONSOLE=PCI_DEVICE_CONSOLE_LEGACY,
        VIRTIO_PCI_CONSOLE_ID=PCI_VENDOR | PCI_DEVICE_CONSOLE_LEGACY << 16,  # config dword 0
        VIRTIO_DEVICE_ID_CONSOLE=DEVICE_ID_CONSOLE,
        VIRTIO_MMIO_MAGIC_VALUE=MMIO_MAGIC,
        VIRTIO_MMIO_LEGACY_VERSION=MMIO_LEGACY_VERSION,
        VIRTIO_DESC_F_WRITE=DESC_F_WRITE,
        VIRTIO_AVAIL_F_NO_INTERRUPT=AVAIL_F_NO_INTERRUPT,
        VIRTIO_RECEIVEQ=RECEIVEQ,
        VIRTIO_TRANSMITQ=TRANSMITQ,
        VIRTIO_QUEUE_SIZE=QUEUE_SIZE,
        VIRTIO_QUEUE_ALIGN=QUEUE_ALIGN,
        VIRTIO_GUEST_PAGE_SIZE=GUEST_PAGE_SIZE,
        VIRTIO_DESC_SIZE=DESC_SIZE,
        VIRTIO_DESC_ADDR=DESC_ADDR,
        VIRTIO_DESC_LEN=DESC_LEN,
        VIRTIO_DESC_FLAGS=DESC_FLAGS,
        VIRTIO_DESC_NEXT=DESC_NEXT,
        VIRTIO_USED_ELEM_SIZE=USED_ELEM_SIZE,
        VIRTIO_USED_ID=USED_ID,
        VIRTIO_USED_LEN=USED_LEN,
        VIRTIO_PFN_SHIFT=PFN_SHIFT,
        VIRTIO_RING_FLAGS=RING_FLAGS,
        VIRTIO_RING_IDX=RING_IDX,
        VIRTIO_RING_ENTRIES=RING_ENTRIES,
        VIRTIO_AVAIL_ENTRY_SIZE=AVAIL_ENTRY_SIZE,
        VIRTIO_AVAIL_ENTRY_SHIFT=AVAIL_ENTRY_SIZE.bit_length() - 1,
        VIRTIO_AVAIL_OFFSET=AVAIL_OFFSET,
        VIRTIO_USED_OFFSET=USED_OFFSET,
        VIRTIO_QUEUE_BYTES=QUEUE_BYTES,
        VIRTIO_RX_BUFFERS=RX_BUFFERS,
        VIRTIO_RX_BUFFER_SIZE=RX_BUFFER_SIZE,
        CONSOLE_RX_QUEUE=CONSOLE_RX_QUEUE,
        CONSOLE_TX_QUEUE=CONSOLE_TX_QUEUE,
        CONSOLE_RX_BUFFERS=CONSOLE_RX_BUFFERS,
        CONSOLE_BYTES=CONSOLE_BYTES,
    )
    return consts
