# virtio.s: the virtio console (contract/virtio.py): port 0 of a legacy
# virtio-mmio virtio-serial device.  The driver polls the rings; the device's
# interrupt only ends wfi.  Its memory (queues and receive buffers at
# VIRTIO_CONSOLE, and TX_FRAME, which it sends from) is outside every
# PMP entry a probe gets.  line.s decides when frames travel here.

.equ CONSOLE_RX_DESCS, VIRTIO_CONSOLE + CONSOLE_RX_QUEUE
.equ CONSOLE_RX_AVAIL, CONSOLE_RX_DESCS + VIRTIO_AVAIL_OFFSET
.equ CONSOLE_RX_USED, CONSOLE_RX_DESCS + VIRTIO_USED_OFFSET
.equ CONSOLE_RX_BUFFER0, VIRTIO_CONSOLE + CONSOLE_RX_BUFFERS
.equ CONSOLE_TX_DESCS, VIRTIO_CONSOLE + CONSOLE_TX_QUEUE
.equ CONSOLE_TX_AVAIL, CONSOLE_TX_DESCS + VIRTIO_AVAIL_OFFSET
.equ CONSOLE_TX_USED, CONSOLE_TX_DESCS + VIRTIO_USED_OFFSET

# console_init: find the console (a virtio-mmio slot with the magic, the
# legacy version and the console's device id) and make port 0 ready: both
# queues set up, every receive buffer posted.  Frames stay on the UART until
# line_open.  out a0 = PROBE_LINE_VIRTIO_CONSOLE (console_base and
# console_irq set), or PROBE_LINE_SERIAL when there is no console we can
# drive (nothing else changed).  Clobbers a1-a3, t0-t3.
console_init:
    addi sp, sp, -16
    sd ra, 0(sp)
    li a0, CONSOLE_RX_DESCS
    li a1, CONSOLE_TX_DESCS + VIRTIO_QUEUE_BYTES
    call zero_blocks            # both queues empty: nothing in flight
    li a1, VIRTIO_BASE          # a1 = the slot's registers
    li a2, VIRTIO_IRQ           # a2 = its PLIC source
    li a3, VIRTIO_BASE + VIRTIO_MMIO_SLOTS * VIRTIO_MMIO_STRIDE
1:  bgeu a1, a3, 8f             # no console
    lwu t0, VIRTIO_MMIO_MAGIC(a1)
    li t1, VIRTIO_MMIO_MAGIC_VALUE
    bne t0, t1, 2f
    lwu t0, VIRTIO_MMIO_VERSION(a1)
    li t1, VIRTIO_MMIO_LEGACY_VERSION
    bne t0, t1, 2f              # a modern transport: not ours
    lwu t0, VIRTIO_MMIO_DEVICE_ID(a1)
    li t1, VIRTIO_DEVICE_ID_CONSOLE
    beq t0, t1, 3f
2:  li t0, VIRTIO_MMIO_STRIDE
    add a1, a1, t0
    addi a2, a2, 1
    j 1b
3:  sw zero, VIRTIO_MMIO_STATUS(a1)     # why: reset: the device forgets any earlier driver
    li t0, VIRTIO_STATUS_ACKNOWLEDGE
    sw t0, VIRTIO_MMIO_STATUS(a1)       # why: we have noticed the device
    li t0, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER
    sw t0, VIRTIO_MMIO_STATUS(a1)       # why: and can drive it
    sw zero, VIRTIO_MMIO_GUEST_FEATURES(a1) # why: no MULTIPORT: port 0 alone, on queues 0 and 1
    li t0, VIRTIO_GUEST_PAGE_SIZE
    sw t0, VIRTIO_MMIO_GUEST_PAGE_SIZE(a1)  # why: the unit QueuePFN counts in
    li a0, VIRTIO_RECEIVEQ
    li t3, CONSOLE_RX_DESCS
    call console_queue_init
    beqz a0, 7f
    li a0, VIRTIO_TRANSMITQ
    li t3, CONSOLE_TX_DESCS
    call console_queue_init
    beqz a0, 7f
    li t0, CONSOLE_TX_DESCS     # transmit descriptor 0 always holds the frame going out
    li t1, TX_FRAME
    sd t1, VIRTIO_DESC_ADDR(t0)
    li t0, CONSOLE_TX_AVAIL
    li t1, VIRTIO_AVAIL_F_NO_INTERRUPT
    sh t1, VIRTIO_RING_FLAGS(t0)    # console_send polls for its buffer
    li t0, CONSOLE_RX_AVAIL
    sh t1, VIRTIO_RING_FLAGS(t0)    # console_rx_wait polls; it asks for the interrupt only to sleep
    li t0, CONSOLE_RX_DESCS     # receive descriptor i = receive buffer i, posted as avail entry i
    li t1, CONSOLE_RX_BUFFER0
    li t2, 0
4:  sd t1, VIRTIO_DESC_ADDR(t0)
    li t3, VIRTIO_RX_BUFFER_SIZE
    sw t3, VIRTIO_DESC_LEN(t0)
    add t1, t1, t3
    li t3, VIRTIO_DESC_F_WRITE
    sh t3, VIRTIO_DESC_FLAGS(t0)
    slli t3, t2, VIRTIO_AVAIL_ENTRY_SHIFT
    li a0, CONSOLE_RX_AVAIL + VIRTIO_RING_ENTRIES
    add t3, t3, a0
    sh t2, 0(t3)
    addi t0, t0, VIRTIO_DESC_SIZE
    addi t2, t2, 1
    li t3, VIRTIO_RX_BUFFERS
    bltu t2, t3, 4b
    fence w, w                  # the descriptors and entries before the index that publishes them
    li t0, CONSOLE_RX_AVAIL
    sh t2, VIRTIO_RING_IDX(t0)
    la t0, console_rx_avail
    sh t2, 0(t0)
    fence w, o                  # the rings are written before the device is told
    li t0, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK
    sw t0, VIRTIO_MMIO_STATUS(a1)       # why: the queues are ready; QEMU opens port 0 now
    li t0, VIRTIO_RECEIVEQ
    sw t0, VIRTIO_MMIO_QUEUE_NOTIFY(a1) # why: receive buffers wait: QEMU reads the console's socket
    la t0, console_base
    sd a1, 0(t0)
    la t0, console_irq
    sd a2, 0(t0)
    li a0, PROBE_LINE_VIRTIO_CONSOLE
    j 9f
7:  lwu t0, VIRTIO_MMIO_STATUS(a1)
    ori t0, t0, VIRTIO_STATUS_FAILED
    sw t0, VIRTIO_MMIO_STATUS(a1)       # why: we gave up on it (a queue too small)
8:  li a0, PROBE_LINE_SERIAL
9:  ld ra, 0(sp)
    addi sp, sp, 16
    ret

# console_queue_init: queue a0 of the device at a1 in the zeroed memory at t3
# (VIRTIO_QUEUE_BYTES, page-aligned).  out a0 = 0 when the device's queue
# holds fewer than VIRTIO_QUEUE_SIZE entries (or does not exist), else 1.
#   Clobbers t0, t1.
console_queue_init:
    sw a0, VIRTIO_MMIO_QUEUE_SEL(a1)    # why: the queue registers below are this queue's
    lwu t0, VIRTIO_MMIO_QUEUE_NUM_MAX(a1)
    li t1, VIRTIO_QUEUE_SIZE
    bltu t0, t1, 2f
    fence w, o                  # zeroed before the device learns where the queue is
    li t0, VIRTIO_QUEUE_SIZE
    sw t0, VIRTIO_MMIO_QUEUE_NUM(a1)    # why: the size contract/virtio.py's layout is for
    li t0, VIRTIO_QUEUE_ALIGN
    sw t0, VIRTIO_MMIO_QUEUE_ALIGN(a1)  # why: the used ring's alignment in that layout
    srli t0, t3, VIRTIO_PFN_SHIFT
    sw t0, VIRTIO_MMIO_QUEUE_PFN(a1)    # why: where the queue is; the device uses it from DRIVER_OK
    li a0, 1
    ret
2:  li a0, 0
    ret

# console_wake_init: let a used receive buffer wake the driver hart from wfi:
# the console's interrupt through the PLIC (plic_wake_init).
#   Clobbers a0, t0-t2.
console_wake_init:
    la t0, console_irq
    ld a0, 0(t0)
    j plic_wake_init

# console_send: the a1 bytes at TX_FRAME to the device as one buffer (transmit
# descriptor 0); returns once the device has used it, so TX_FRAME can take the
# next frame.  Clobbers t0-t2.
console_send:
    beqz a1, 2f
    li t1, CONSOLE_TX_DESCS
    sw a1, VIRTIO_DESC_LEN(t1)
    la t2, console_tx_avail
    lhu t0, 0(t2)               # t0 = buffers published so far
    addi t0, t0, 1
    slli t0, t0, 48
    srli t0, t0, 48             # t0 = the index that publishes it (16-bit)
    la t2, console_tx_avail
    sh t0, 0(t2)
    fence w, w                  # the descriptor before the index
    li t1, CONSOLE_TX_AVAIL
    sh t0, VIRTIO_RING_IDX(t1)
    fence w, o                  # published before the device is told
    la t1, console_base
    ld t1, 0(t1)
    li t2, VIRTIO_TRANSMITQ
    sw t2, VIRTIO_MMIO_QUEUE_NOTIFY(t1) # why: QEMU writes the buffer to the console's socket
    li t1, CONSOLE_TX_USED
1:  lhu t2, VIRTIO_RING_IDX(t1)
    bne t2, t0, 1b              # until the device has used it (at once, unless the host lags)
    fence r, w                  # used before the next frame overwrites the buffer
2:  ret

# console_getc: the next received byte, in t1 (line_getc's contract): from
# the receive buffer in hand, which goes back to the device as soon as its
# last byte is taken; when none is in hand, from the next buffer the device
# used (console_rx_take).  Clobbers t0, t2, t3, a2, a3.
console_getc:
    la t2, console_rx_next
    ld t0, 0(t2)
    la t3, console_rx_end
    ld t3, 0(t3)
    bgeu t0, t3, console_rx_take
    lbu t1, 0(t0)
    addi t0, t0, 1
    sd t0, 0(t2)
    bgeu t0, t3, console_rx_return  # its last byte: the buffer goes back now
    ret

# console_read_run: copies the bytes of the receive buffer in hand up to the
# next zero byte, short of the buffer's last byte (console_getc takes that one
# and gives the buffer back) and of a1 bytes, to a0: eight bytes a load once the
# buffer's side is aligned, where a frame read a byte at a time through
# line_getc cost some 20 instructions a byte.  out a0 = bytes copied.
#   Clobbers a1-a3, t0-t3.
console_read_run:
    la t2, console_rx_next
    ld t0, 0(t2)                # t0 = the next byte
    la t3, console_rx_end
    ld t3, 0(t3)
    bgeu t0, t3, 6f             # none in hand
    addi t3, t3, -1             # t3 = the buffer's last byte, left to console_getc
    bgeu t0, t3, 6f
    sub t1, t3, t0
    bleu t1, a1, 1f
    add t3, t0, a1              # no further than the room
1:  mv a2, t0                   # a2 = where the run began
    li a3, 0x0101010101010101
    slli a1, a3, 7              # a1 = 0x8080808080808080
2:  andi t1, t0, 7
    beqz t1, 4f                 # aligned: eight bytes a load
3:  bgeu t0, t3, 5f             # a byte
    lbu t1, 0(t0)
    beqz t1, 5f
    sb t1, 0(a0)
    addi t0, t0, 1
    addi a0, a0, 1
    j 2b
4:  addi t1, t0, 8
    bgtu t1, t3, 3b             # fewer than eight before the limit: bytes
    ld t1, 0(t0)
    sub t2, t1, a3
    and t2, t2, a1
    or t2, t2, t1
    xor t2, t2, t1              # (x - 0x01..01) & 0x80..80 & ~x: nonzero when a byte of x is zero
    bnez t2, 3b                 # a zero among them: up to it a byte at a time
    sb t1, 0(a0)                # stored a byte at a time: the frame's side need not be aligned
    srli t1, t1, 8
    sb t1, 1(a0)
    srli t1, t1, 8
    sb t1, 2(a0)
    srli t1, t1, 8
    sb t1, 3(a0)
    srli t1, t1, 8
    sb t1, 4(a0)
    srli t1, t1, 8
    sb t1, 5(a0)
    srli t1, t1, 8
    sb t1, 6(a0)
    srli t1, t1, 8
    sb t1, 7(a0)
    addi t0, t0, 8
    addi a0, a0, 8
    j 4b
5:  la t2, console_rx_next
    sd t0, 0(t2)
    sub a0, t0, a2
    ret
6:  li a0, 0
    ret

# console_rx_take: wait for the next used receive buffer, take it in hand
# and return its first byte as console_getc does.  A buffer the device used
# for nothing goes straight back.  Clobbers t0, t2, t3, a2, a3.
console_rx_take:
    addi sp, sp, -16
    sd ra, 0(sp)
1:  call console_rx_wait        # a3 = buffers taken so far: the used entry to read
    fence r, r                  # the entry and its bytes after the index that published them
    andi t0, a3, VIRTIO_QUEUE_SIZE - 1
    li t2, VIRTIO_USED_SIZE
    mul t0, t0, t2
    li t2, CONSOLE_RX_USED + VIRTIO_RING_ENTRIES
    add t0, t0, t2
    lwu t2, VIRTIO_USED_ID(t0)  # t2 = its descriptor = its receive buffer's index
    andi t2, t2, VIRTIO_RX_BUFFERS - 1  # one of our buffers, whatever the device says
    lwu t3, VIRTIO_USED_LEN(t0) # t3 = bytes the device wrote there
    li t0, VIRTIO_RX_BUFFER_SIZE
    bleu t3, t0, 3f
    mv t3, t0                   # never past the buffer
3:    addi a3, a3, 1
    la t0, console_rx_used
    sh a3, 0(t0)
    la t0, console_rx_id
    sh t2, 0(t0)
    li t0, VIRTIO_RX_BUFFER_SIZE
    mul t2, t2, t0
    li t0, CONSOLE_RX_BUFFER0
    add t2, t2, t0              # t2 = the buffer
    add t3, t3, t2              # t3 = the end of its bytes
    la t0, console_rx_next
    sd t2, 0(t0)
    la t0, console_rx_end
    sd t3, 0(t0)
    bne t2, t3, 2f
    call console_rx_return      # empty: back at once
    j 1b
2:  ld ra, 0(sp)
    addi sp, sp, 16
    j console_getc

# console_rx_return: the receive buffer in hand (console_rx_id) back to the
# device: its avail entry, then the index that publishes it.  The device is
# told only when it may be waiting for a buffer: when it had used every one
# published before this one.  Keeps t1.  Clobbers t0, t2, t3, a2, a3.
console_rx_return:
    la t0, console_rx_id
    lhu a2, 0(t0)               # a2 = its descriptor
    la t2, console_rx_avail
    lhu a3, 0(t2)               # a3 = buffers published before it
    andi t0, a3, VIRTIO_QUEUE_SIZE - 1
    slli t0, t0, VIRTIO_AVAIL_ENTRY_SHIFT
    li t3, CONSOLE_RX_AVAIL
    add t0, t0, t3
    sh a2, VIRTIO_RING_ENTRIES(t0)
    addi a2, a3, 1
    sh a2, 0(t2)
    fence w, w                  # the entry before the index
    sh a2, VIRTIO_RING_IDX(t3)
    fence rw, rw                # published before we read how far the device got
    li t0, CONSOLE_RX_USED
    lhu t0, VIRTIO_RING_IDX(t0)
    bne t0, a3, 1f              # it still holds buffers: not waiting
    la t0, console_base
    ld t0, 0(t0)
    li t2, VIRTIO_RECEIVEQ
    fence w, o                  # published before the device is told
    sw t2, VIRTIO_MMIO_QUEUE_NOTIFY(t0) # why: it may have stopped reading its socket: no buffer
1:  ret

# console_rx_wait: until the device has used a receive buffer not taken yet.
# Polls the used index for idle_spin_ticks of mtime, then asks the device for
# its interrupt (the receive ring's flags) and sleeps in wfi until it comes
# (console_wake_init, which line_open runs before any frame is received).
#   out a3 = buffers taken so far.  Clobbers t0, t2, t3, a2.
console_rx_wait:
    la t0, console_rx_used
    lhu a3, 0(t0)
    li t0, CONSOLE_RX_USED
    lhu a2, VIRTIO_RING_IDX(t0)
    bne a2, a3, 4f
    li t2, CLINT_BASE + MTIME_OFFSET
    ld t3, 0(t2)
    la t0, idle_spin_ticks
    ld t0, 0(t0)
    add t3, t3, t0              # t3 = when polling gives way to sleeping
1:  li t0, CONSOLE_RX_USED
    lhu a2, VIRTIO_RING_IDX(t0)
    bne a2, a3, 4f
    ld t0, 0(t2)
    bltu t0, t3, 1b
    la t0, plic_claim
    ld t3, 0(t0)                # t3 = the claim register
    la t0, console_base
    ld t2, 0(t0)                # t2 = the console's registers
    li t0, CONSOLE_RX_AVAIL
    sh zero, VIRTIO_RING_FLAGS(t0)  # the next used buffer raises the interrupt
    fence w, o                  # asked for before the device is told
    li t0, VIRTIO_RECEIVEQ
    sw t0, VIRTIO_MMIO_QUEUE_NOTIFY(t2) # why: before sleeping, the device surely knows every buffer
                                # (a notice console_rx_return judged needless costs nothing here)
    li t0, MIE_MEIE
    csrs mie, t0                # why: the console's interrupt (through the PLIC) ends wfi
2:  lw t0, 0(t3)                # claim what is pending ...
    beqz t0, 3f
    sw t0, 0(t3)                # ... and complete it: the console's next request gets through
3:  lwu t0, VIRTIO_MMIO_INTERRUPT_STATUS(t2)
    sw t0, VIRTIO_MMIO_INTERRUPT_ACK(t2)    # why: its line drops; the next used buffer raises it
    fence o, r                  # acknowledged before the used index is read
    li t0, CONSOLE_RX_USED
    lhu a2, VIRTIO_RING_IDX(t0)
    bne a2, a3, 5f
    wfi                         # mstatus.MIE is off: wakes without trapping
    j 2b
5:  li t0, MIE_MEIE
    csrc mie, t0                # why: no console interrupt while probes run
    li t0, CONSOLE_RX_AVAIL
    li t2, VIRTIO_AVAIL_F_NO_INTERRUPT
    sh t2, VIRTIO_RING_FLAGS(t0)    # polling again
4:  ret
