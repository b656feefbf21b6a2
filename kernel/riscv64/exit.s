# exit.s: leave QEMU through sifive_test (32-bit stores only).

# exit_pass: QEMU exits with status 0.
exit_pass:
    call uart_drain
    li t0, TEST_BASE
    li t1, SIFIVE_TEST_PASS
    sw t1, 0(t0)
    j park

# exit_fail: QEMU exits with status a0 (a GuestExit code).
exit_fail:
    call uart_drain
    li t0, TEST_BASE
    slli a0, a0, SIFIVE_TEST_CODE_SHIFT
    li t1, SIFIVE_TEST_FAIL
    or a0, a0, t1
    sw a0, 0(t0)
    j park

# uart_drain: wait until the UART has handed on its last byte (LSR.TEMT).
# Why: QEMU exits at the sifive_test store and drops what its 16550 still
# holds; THRE comes while the last byte waits in the shift register, and when
# the host reads slowly QEMU keeps bytes there until its socket takes them, so
# the stream's tail (FINAL) was lost.  Nothing to wait for before uart_init.
#   Clobbers t0, t1.
uart_drain:
    la t0, uart_ready
    lw t0, 0(t0)
    beqz t0, 2f
    la t0, uart_base
    ld t0, 0(t0)
1:  lbu t1, UART_LSR(t0)
    andi t1, t1, UART_LSR_TEMT
    beqz t1, 1b
2:  ret
