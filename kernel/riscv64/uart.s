# uart.s: the 16550 the device tree named (base in uart_base).

# uart_init: 8N1, FIFOs on, no interrupts.  Clobbers t0, t1.
uart_init:
    la t0, uart_base
    ld t0, 0(t0)
    sb zero, UART_IER(t0)       # why: we poll; an interrupt would have nowhere to go
    li t1, UART_FCR_INIT
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
    li t1, UART_FIFO_DEPTH
2:  addi t1, t1, -1
    sw t1, 0(t2)
    sb a0, UART_THR(t0)
    ret

# uart_wake_init: let a received byte wake the driver hart from wfi: the
# UART's receive interrupt through the PLIC (plic_wake_init).
#   Clobbers a0, t0-t2.
uart_wake_init:
    la t0, uart_base
    ld t0, 0(t0)
    li t1, UART_IER_RX_DATA
    sb t1, UART_IER(t0)         # why: received data raises the UART's interrupt line
    li a0, UART0_IRQ
    j plic_wake_init

# uart_getc: the next received byte, in t1.  Polls for idle_spin_ticks of
# mtime, then sleeps in wfi until the UART interrupts (uart_wake_init, which
# line_open runs before any frame is received).
#   in s2 = UART.  Clobbers t0, t2, t3.
uart_getc:
    lbu t1, UART_LSR(s2)
    andi t1, t1, UART_LSR_DR
    bnez t1, 4f
    li t2, CLINT_BASE + MTIME_OFFSET
    ld t3, 0(t2)
    la t0, idle_spin_ticks
    ld t0, 0(t0)
    add t3, t3, t0              # t3 = when polling gives way to sleeping
1:  lbu t1, UART_LSR(s2)
    andi t1, t1, UART_LSR_DR
    bnez t1, 4f
    ld t0, 0(t2)
    bltu t0, t3, 1b
    la t0, plic_claim
    ld t3, 0(t0)                # t3 = the claim register
    li t0, MIE_MEIE
    csrs mie, t0                # why: the UART's interrupt (through the PLIC) ends wfi
2:  lw t0, 0(t3)                # claim what is pending ...
    beqz t0, 3f
    sw t0, 0(t3)                # ... and complete it: the UART's next request gets through
3:  lbu t1, UART_LSR(s2)        # a byte that came before the claim is seen here
    andi t1, t1, UART_LSR_DR
    bnez t1, 5f
    wfi                         # mstatus.MIE is off: wakes without trapping
    j 2b
5:  li t0, MIE_MEIE
    csrc mie, t0                # why: no UART interrupt while probes run
4:  lbu t1, UART_RBR(s2)
    ret
