# uart.s: the 16550 the device tree named (base in uart_base).

# uart_init: 8N1, FIFOs on, no interrupts.  Clobbers t0, t1.
uart_init:
    la t0, uart_base
    ld t0, 0(t0)
    sb zero, UART_IER(t0)       # why: we poll; an interrupt would have nowhere to go
    li t1, UART_FCR_ENABLE_CLEAR | UART_FCR_TRIGGER_14
    sb t1, UART_FCR(t0)         # why: FIFOs on and empty, so bytes leave in order; QEMU
                                # hands over received bytes up to the trigger level at once
    li t1, UART_LCR_8N1
    sb t1, UART_LCR(t0)         # why: 8 data bits, no parity, 1 stop bit, DLAB off
    la t0, uart_ready
    li t1, 1
    sw t1, 0(t0)
    ret

# uart_putc: send byte a0.  THRE means the whole 16-byte transmit FIFO is
# empty, so one poll buys room for 16 bytes (as Linux's 8250 driver does).
#   Clobbers t0-t2.
uart_putc:
    la t2, uart_tx_room
    lw t1, 0(t2)
    la t0, uart_base
    ld t0, 0(t0)
    bnez t1, 2f
1:  lbu t1, UART_LSR(t0)
    andi t1, t1, UART_LSR_THRE
    beqz t1, 1b
    li t1, UART_FIFO_SIZE
2:  addi t1, t1, -1
    sw t1, 0(t2)
    sb a0, UART_THR(t0)
    ret
