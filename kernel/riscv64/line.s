# line.s: the line frames travel on.  Discovery, up to and including FINAL,
# uses the UART; from line_open on, a staying guest serves probes on the
# virtio console when console_init could drive one, else on the UART still.

# line_open: make the probe line current, and let it wake the idle driver
# hart.  The console's first byte is a lone delimiter: the host's decoder
# syncs on it.  Clobbers a0, t0-t2.
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
    li a0, FRAME_DELIMITER
    call console_putc
    call console_send
    ld ra, 0(sp)
    addi sp, sp, 16
    ret

# line_putc: byte a0 out on the line (the console collects a frame's bytes
# until line_flush).  Clobbers t0-t2.
line_putc:
    la t0, probe_line
    lw t0, 0(t0)
    li t1, PROBE_LINE_VIRTIO_CONSOLE
    beq t0, t1, console_putc
    j uart_putc

# line_flush: what line_putc collected goes out (the UART has sent it
# already).  Clobbers t0-t2.
line_flush:
    la t0, probe_line
    lw t0, 0(t0)
    li t1, PROBE_LINE_VIRTIO_CONSOLE
    beq t0, t1, console_send
    ret

# line_getc: the next received byte, in t1; sleeps while the line is idle.
#   in s2 = UART.  Clobbers t0, t2, t3, a2, a3.
line_getc:
    la t0, probe_line
    lw t0, 0(t0)
    li t1, PROBE_LINE_VIRTIO_CONSOLE
    beq t0, t1, console_getc
    j uart_getc
