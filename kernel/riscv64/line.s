# line.s: the line frames travel on.  Discovery, up to and including FINAL,
# uses the UART; from line_open on, a staying guest serves probes on the
# virtio console when console_init could drive one, else on the UART still.

# line_open: make the probe line current, and let it wake the idle driver
# hart.  The console's first byte is a lone delimiter: the host's decoder
# syncs on it.  Clobbers a0, a1, t0-t2.
line_open:
    la t0, console_base
    ld t0, 0(t0)
    beqz t0, uart_wake_init     # no console: the UART stays the line
    addi sp, sp, -16
    sd ra, 0(sp)
    la t0, probe_line
    li t1, PROBE_LINE_VIRTIO_CONSOLE
    sw t1, 0(t0)
    call console_wake_init
    li t0, TX_FRAME
    li a1, FRAME_DELIMITER
    sb a1, 0(t0)
    li a1, 1
    call console_send
    ld ra, 0(sp)
    addi sp, sp, 16
    ret

# line_write: the a1 bytes at TX_FRAME out on the line: the console sends them as
# one buffer, the UART a byte at a time.  Clobbers a0, a2, a3, t0-t2.
line_write:
    la t0, probe_line
    lw t0, 0(t0)
    li t1, PROBE_LINE_VIRTIO_CONSOLE
    beq t0, t1, console_send
    addi sp, sp, -16
    sd ra, 0(sp)
    li a2, TX_FRAME
    add a3, a2, a1              # a3 = end
1:  beq a2, a3, 2f
    lbu a0, 0(a2)
    call uart_putc
    addi a2, a2, 1
    j 1b
2:  ld ra, 0(sp)
    addi sp, sp, 16
    ret

# line_getc: the next received byte, in t1; sleeps while the line is idle.
#   in s2 = UART.  Clobbers t0, t2, t3, a2, a3.
line_getc:
    la t0, probe_line
    lw t0, 0(t0)
    li t1, PROBE_LINE_VIRTIO_CONSOLE
    beq t0, t1, console_getc
    j uart_getc
