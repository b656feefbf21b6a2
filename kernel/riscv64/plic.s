# plic.s: one device's interrupt as the driver hart's wake-up from wfi.

# plic_wake_init: PLIC source a0 to the driver hart's M-mode context, and no
# other source; the claim register in plic_claim, the polling time before a
# line sleeps in idle_spin_ticks.  Nothing traps on the interrupt: mstatus.MIE
# stays off in the kernel and mie.MEIE is on only around the line's wfi.
#   in a0 = PLIC source.  Clobbers a0, t0-t2.
plic_wake_init:
    slli t0, a0, 2
    li t1, PLIC_BASE + PLIC_PRIORITY
    add t0, t0, t1
    li t1, 1
    sw t1, 0(t0)                # why: priority 0 would mean "never interrupts"
    la t0, driver_hartid
    ld t2, 0(t0)
    li t0, PLIC_CONTEXTS_PER_HART
    mul t2, t2, t0
    addi t2, t2, PLIC_M_CONTEXT # t2 = the driver hart's M-mode context
    li t0, PLIC_ENABLE_STRIDE
    mul t0, t0, t2
    li t1, PLIC_BASE + PLIC_ENABLE
    add t0, t0, t1
    srli t1, a0, 5
    slli t1, t1, 2
    add t0, t0, t1              # t0 = the enable word holding the source's bit
    andi t1, a0, 31
    li a0, 1
    sll t1, a0, t1
    sw t1, 0(t0)                # why: this context takes the source (and no other)
    li t0, PLIC_CONTEXT_STRIDE
    mul t0, t0, t2
    li t1, PLIC_BASE + PLIC_CONTEXT
    add t0, t0, t1
    sw zero, PLIC_THRESHOLD(t0) # why: every priority above 0 gets through
    addi t0, t0, PLIC_CLAIM
    la t1, plic_claim
    sd t0, 0(t1)
    la t0, timebase_hz
    ld t0, 0(t0)
    li t1, IDLE_SPIN_PER_SECOND
    divu t0, t0, t1
    la t1, idle_spin_ticks
    sd t0, 0(t1)
    ret
