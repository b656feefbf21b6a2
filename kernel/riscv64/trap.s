# trap.s: the two machine-mode trap handlers.

# probe_trap: while CSRs are probed, an illegal instruction means "this CSR
# does not exist": flag it in t6 and resume after the (4-byte) csrr.  Any
# other trap is a bug and goes to fault_trap.  Clobbers t6 only.
.balign 4, 0
probe_trap:
    csrr t6, mcause
    addi t6, t6, -MCAUSE_ILLEGAL_INSTRUCTION
    bnez t6, fault_trap
    csrr t6, mepc
    addi t6, t6, 4
    csrw mepc, t6               # why: skip the csrr that trapped
    li t6, 1
    mret

# fault_trap: the kernel took a trap it did not expect.  The driver, once its
# UART works, reports FAULT(mcause, 0, mepc, mtval); then QEMU exits failing.
.balign 4, 0
fault_trap:
    la t0, uart_ready
    lw t0, 0(t0)
    beqz t0, 1f
    la t0, driver_hartid
    ld t0, 0(t0)
    csrr t1, mhartid
    bne t0, t1, 1f
    li t2, FRAME_BODY
    csrr t0, mcause
    sd t0, FAULT_VECTOR(t2)
    sd zero, FAULT_ERROR_CODE(t2)
    csrr t0, mepc
    sd t0, FAULT_IP(t2)
    csrr t0, mtval
    sd t0, FAULT_ADDRESS(t2)
    li a0, MSG_FAULT
    li a1, FAULT_SIZE
    call send_frame
1:  li a0, EXIT_FAULT
    j exit_fail
