# entry.s: where every hart starts (-bios none: pc = 0x80000000, a0 = hartid,
# a1 = device tree).  Each hart takes a slot (the first slot, 0, drives the
# UART and the bus scan), records itself, then all but the driver park.

_start:
    csrw mie, zero              # why: no interrupt may wake or divert us; wfi parks
    la t0, probe_trap
    csrw mtvec, t0              # why: CSR probes turn illegal-instruction traps into "absent"
    la t0, hart_slots
    li t1, 1
    amoadd.w.aq t2, t1, (t0)    # the lottery: slot = arrival order, slot 0 drives
    li t1, MAX_HARTS
    bgeu t2, t1, park           # more harts than records: stay silent
    li sp, STACKS_TOP
    slli t3, t2, STACK_SIZE_LOG2
    sub sp, sp, t3
    mv s0, t2                   # s0 = slot
    mv s1, a1                   # s1 = device tree
    mv a1, a0                   # hartid
    mv a0, s0
    call hart_record
    la t0, fault_trap
    csrw mtvec, t0              # why: from here on any trap is a kernel bug
    la t0, harts_reported
    li t1, 1
    amoadd.w.rl zero, t1, (t0)  # release: our record is complete before we are counted
    bnez s0, park
    mv a0, s1
    j driver_main

# park: a hart with nothing left to do sleeps for good.
park:
    wfi
    j park
