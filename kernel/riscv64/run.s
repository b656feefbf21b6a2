# run.s: running one probe per contract/probe_abi.py, every trap it raises contained.
#
# A user probe runs in U-mode behind PMP (kernel/riscv64/probing.py lists the
# entries: its areas and nothing else), so it can neither touch M-mode CSRs
# (illegal instruction) nor any memory but its own.  A privileged probe runs
# in M-mode with ra = probe_return and mstatus.MPRV set: after its mret MPP
# reads U, so its loads and stores pass the same PMP entries as a user probe's
# (its instructions, CSR accesses included, stay M-mode's).  Either way every
# trap comes to run_trap,
# which unwinds to the kernel context run_slot saved; the CLINT timer is the
# watchdog (mie.MTIE: taken from U-mode whatever mstatus.MIE says, and from
# a privileged probe because mret sets MIE from MPIE).

# mtimecmp_address reg, tmp: reg = the driver hart's CLINT mtimecmp.
.macro mtimecmp_address reg, tmp
    la \tmp, driver_hartid
    ld \tmp, 0(\tmp)
    slli \tmp, \tmp, 3
    li \reg, CLINT_BASE + MTIMECMP_OFFSET
    add \reg, \reg, \tmp
.endm

# probe_setup: make the probe region and the driver hart ready.  Clobbers t0-t2, a0, a1.
probe_setup:
    addi sp, sp, -16
    sd ra, 0(sp)
    li a0, PROBE_REGION_BASE
    li a1, PROBE_STACK_BASE + PROBE_STACK_SIZE
    call zero_blocks            # code, exit, input, output, stack: clean
    li t0, PROBE_EXIT_BASE
    li t1, PROBE_EXIT_STUB_WORD
    sw t1, 0(t0)                # the exit stub: `ecall` where a user probe's ra points
    fence.i                     # the stub is code now
    li a0, PROBE_SCRATCH_BASE
    li a1, PROBE_SCRATCH_BASE + PROBE_SCRATCH_SIZE
    call zero_blocks
    li t0, PMPADDR0_PROBES
    csrw pmpaddr0, t0           # why: code, R-X for U-mode
    li t0, PMPADDR1_PROBES
    csrw pmpaddr1, t0           # why: exit stub, R-X
    li t0, PMPADDR2_PROBES
    csrw pmpaddr2, t0           # why: input, R
    li t0, PMPADDR3_PROBES
    csrw pmpaddr3, t0           # why: output, RW
    li t0, PMPADDR4_PROBES
    csrw pmpaddr4, t0           # why: stack, RW
    li t0, PMPADDR5_PROBES
    csrw pmpaddr5, t0           # why: the writable scratch window, grown on demand
    li t0, PMPADDR6_PROBES
    csrw pmpaddr6, t0           # why: all of scratch, R (writes fault: the window grows)
    li t0, PMPCFG0_PROBES
    csrw pmpcfg0, t0            # why: entries 0-6 NAPOT with those permissions, 7 off
    csrw pmpcfg2, zero          # why: entries 8-15 off: U-mode may touch nothing else
    sfence.vma                  # why: QEMU caches PMP verdicts in its TLB
    csrw medeleg, zero          # why: every exception of a probe comes to M-mode
    csrw mideleg, zero          # why: so does the watchdog's timer interrupt
    csrw satp, zero             # why: U-mode addresses are physical (Bare)
    li t0, COUNTEREN_CY_TM_IR
    csrw mcounteren, t0         # why: user probes may read cycle, time, instret
    csrw scounteren, t0         # why: U-mode needs the S-level permission as well
    call watchdog_disarm
    csrw mscratch, zero         # why: zero = no probe runs (run_trap tells bugs apart)
    la t0, run_trap
    csrw mtvec, t0              # why: from now on traps are probes' (or bugs)
    la t0, run_state
    li t1, SCRATCH_WINDOW_MIN
    sd t1, RUN_STATE_WINDOW(t0)
    ld ra, 0(sp)
    addi sp, sp, 16
    ret

# run_slot: run the probe in slot record a0; the PROBE_RESULT body at
# FRAME_BODY (header already there) gets outcome, status, fault, counts and
# output.  out a0 = result body length.  Clobbers a1-a7, t0-t6.
run_slot:
    addi sp, sp, -32
    sd ra, 0(sp)
    sd s0, 8(sp)
    sd s1, 16(sp)
    sd s2, 24(sp)
    mv s0, a0                   # s0 = the slot record
    lwu s2, SLOT_PRIVILEGE(s0)  # s2 = privileged
    la s1, probe_last_lengths
    li a0, PROBE_CODE_BASE
    addi a1, s0, SLOT_CODE
    lwu a2, SLOT_CODE_LENGTH(s0)
    lwu a3, 0(s1)
    bne a2, a3, run_slot_place  # another length: other code
    call same_dwords            # the code the area holds already (each batch probe of a task)?
    bnez a0, run_slot_input     # left as it is: under TCG a write there drops its translations
    li a0, PROBE_CODE_BASE
    addi a1, s0, SLOT_CODE
    lwu a2, SLOT_CODE_LENGTH(s0)
    lwu a3, 0(s1)
run_slot_place:
    sw a2, 0(s1)
    call place_area
    fence.i                     # the code area holds new code
run_slot_input:
    li a0, PROBE_INPUT_BASE
    li a1, SLOT_INPUT
    add a1, s0, a1
    lwu a2, SLOT_INPUT_LENGTH(s0)
    lwu a3, 4(s1)
    sw a2, 4(s1)
    call place_area
    li a0, PROBE_OUTPUT_BASE
    li a1, PROBE_OUTPUT_BASE + PROBE_OUTPUT_SIZE
    call zero_blocks
    li a0, PROBE_STACK_BASE
    li a1, PROBE_STACK_BASE + PROBE_STACK_SIZE
    call zero_blocks
    li t0, MSTATUS_MPP
    csrc mstatus, t0            # why: mret enters U-mode ...
    beqz s2, 1f
    csrs mstatus, t0            # why: ... or M-mode for a privileged probe,
    li t0, MSTATUS_MPRV
    csrs mstatus, t0            # why: ... whose data accesses mret makes U-mode's (MPP = U after it)
1:  li t0, MSTATUS_MPIE
    csrs mstatus, t0            # why: mret sets MIE, so the watchdog stops M-mode probes too
    call fp_reset
    li t0, PROBE_CODE_BASE
    csrw mepc, t0               # why: mret jumps to the probe's first byte
    csrw mcause, zero           # why: a privileged probe reading the trap CSRs must not see
    csrw mtval, zero            #   the last probe's trap: a run's result may not depend on
                                #   what ran before it (a resend after a lost frame reorders)
    call length_triggers_arm
    lwu a0, SLOT_BUDGET(s0)
    call watchdog_arm
    la t2, run_state
    csrw mscratch, t2           # why: a probe runs; run_trap finds the kernel context here
    sd sp, RUN_STATE_SP(t2)
    sd s0, RUN_STATE_S0(t2)
    sd s1, RUN_STATE_S1(t2)
    sd s2, RUN_STATE_S2(t2)
    sd s3, RUN_STATE_S3(t2)
    sd s4, RUN_STATE_S4(t2)
    sd s5, RUN_STATE_S5(t2)
    sd s6, RUN_STATE_S6(t2)
    sd s7, RUN_STATE_S7(t2)
    sd s8, RUN_STATE_S8(t2)
    sd s9, RUN_STATE_S9(t2)
    sd s10, RUN_STATE_S10(t2)
    sd s11, RUN_STATE_S11(t2)
    lwu a3, SLOT_INPUT_LENGTH(s0)
    li ra, PROBE_EXIT_BASE
    beqz s2, 2f
    la ra, probe_return
2:  li a0, PROBE_INPUT_BASE     # the ABI's entry registers; all others zero
    li a1, PROBE_OUTPUT_BASE
    li a2, PROBE_SCRATCH_BASE
    li sp, PROBE_STACK_TOP
    li gp, 0
    li tp, 0
    li s0, 0
    li s1, 0
    li s2, 0
    li s3, 0
    li s4, 0
    li s5, 0
    li s6, 0
    li s7, 0
    li s8, 0
    li s9, 0
    li s10, 0
    li s11, 0
    li a4, 0
    li a5, 0
    li a6, 0
    li a7, 0
    li t3, 0
    li t4, 0
    li t5, 0
    li t6, 0
    csrr t0, minstret
    csrr t1, mcycle
    sd t0, RUN_STATE_INSTRET_START(t2)
    sd t1, RUN_STATE_CYCLE_START(t2)
    li t0, 0
    li t1, 0
    li t2, 0
    mret                        # into the probe

# run_finished: run_trap comes here with the kernel's sp and s0-s11 back and
# the trap's mcause/mepc/mtval untouched; mscratch holds the probe's a0.
run_finished:
    li t0, MSTATUS_MPRV
    csrc mstatus, t0            # why: the kernel's data accesses are M-mode's, whatever MPP says next
    csrw mie, zero              # why: the watchdog has done its job (or was not needed)
    call watchdog_disarm
    call length_triggers_disarm
    csrrw s1, mscratch, zero    # why: no probe runs any more; s1 = the probe's a0
    li t3, FRAME_BODY
    la t2, run_state
    ld t0, RUN_STATE_CYCLE_END(t2)
    ld t1, RUN_STATE_CYCLE_START(t2)
    sub t0, t0, t1
    sd t0, PROBE_RESULT_CYCLES(t3)
    ld t0, RUN_STATE_INSTRET_END(t2)
    ld t1, RUN_STATE_INSTRET_START(t2)
    sub t0, t0, t1
    sd t0, PROBE_RESULT_INSTRET(t3)
    csrr t0, mcause
    csrr t1, mepc
    csrr t2, mtval
    li t4, PROBE_EXIT_BASE
    bne t1, t4, 1f
    li t4, MCAUSE_ECALL_U       # the exit stub's ecall: the probe returned
    beq t0, t4, 4f
    li t4, MCAUSE_ECALL_M
    beq t0, t4, 4f
    bltz t0, 4f                 # the watchdog struck at the stub: the probe had returned
    j 3f
1:  la t4, probe_return
    bne t1, t4, 2f
    bnez s2, 4f                 # a privileged probe returned (or the watchdog hit as it did)
2:  bgez t0, 3f                 # mcause bit 63 clear: an exception
    li t0, PROBE_OUTCOME_TIMEOUT    # the only interrupt enabled is the watchdog's
    sb t0, PROBE_RESULT_OUTCOME(t3)
    la t0, timeouts
    li a0, PROBE_RESULT_SIZE
    j 5f
3:  li t4, PROBE_OUTCOME_FAULT
    sb t4, PROBE_RESULT_OUTCOME(t3)
    sd t0, PROBE_RESULT_FAULT_VECTOR(t3)
    sd t1, PROBE_RESULT_FAULT_IP(t3)
    sd t2, PROBE_RESULT_FAULT_ADDRESS(t3)
    la t0, faults
    li a0, PROBE_RESULT_SIZE
    j 5f
4:  li t4, PROBE_OUTCOME_RETURNED
    sb t4, PROBE_RESULT_OUTCOME(t3)
    sd s1, PROBE_RESULT_STATUS(t3)
    addi a0, t3, PROBE_RESULT_SIZE
    li a1, PROBE_OUTPUT_BASE
    lwu a2, SLOT_OUTPUT_SIZE(s0)
    call copy_dwords
    lwu a0, SLOT_OUTPUT_SIZE(s0)
    addi a0, a0, PROBE_RESULT_SIZE
    j 6f
5:  lw t1, 0(t0)                # timeouts / faults += 1
    addi t1, t1, 1
    sw t1, 0(t0)
6:  la t0, runs
    lw t1, 0(t0)
    addi t1, t1, 1
    sw t1, 0(t0)
    mv s1, a0
    call scratch_clean
    mv a0, s1
    ld ra, 0(sp)
    ld s0, 8(sp)
    ld s1, 16(sp)
    ld s2, 24(sp)
    addi sp, sp, 32
    ret

# probe_return: a privileged probe's ra.  Trapping here (rather than just
# returning) switches off MIE atomically, so the watchdog cannot strike
# half-way out; run_finished knows this address.
.balign 4, 0
probe_return:
    ecall

# run_trap: mtvec while probes are served.  mscratch = run_state while a
# probe runs, else 0 (then the trap is the kernel's own: a bug).
.balign 4, 0
run_trap:
    csrrw a0, mscratch, a0      # a0 = run_state, mscratch = the probe's a0
    beqz a0, fault_trap
    sd t0, RUN_STATE_T0(a0)
    sd t1, RUN_STATE_T1(a0)
    csrr t0, mcycle
    csrr t1, minstret
    sd t0, RUN_STATE_CYCLE_END(a0)
    sd t1, RUN_STATE_INSTRET_END(a0)
    csrr t0, mcause
    li t1, MCAUSE_STORE_ACCESS_FAULT
    beq t0, t1, 2f
    li t1, MCAUSE_BREAKPOINT
    beq t0, t1, 5f
1:  ld sp, RUN_STATE_SP(a0)     # unwind: back into run_slot's frame
    ld s0, RUN_STATE_S0(a0)
    ld s1, RUN_STATE_S1(a0)
    ld s2, RUN_STATE_S2(a0)
    ld s3, RUN_STATE_S3(a0)
    ld s4, RUN_STATE_S4(a0)
    ld s5, RUN_STATE_S5(a0)
    ld s6, RUN_STATE_S6(a0)
    ld s7, RUN_STATE_S7(a0)
    ld s8, RUN_STATE_S8(a0)
    ld s9, RUN_STATE_S9(a0)
    ld s10, RUN_STATE_S10(a0)
    ld s11, RUN_STATE_S11(a0)
    li gp, 0
    li tp, 0
    j run_finished
2:  csrr t0, mtval              # a store to scratch beyond the window?
    li t1, PROBE_SCRATCH_BASE
    bltu t0, t1, 1b
    sub t0, t0, t1
    li t1, PROBE_SCRATCH_SIZE
    bgeu t0, t1, 1b
    addi t0, t0, 7              # the store's last byte (8 bytes at most) ...
    bltu t0, t1, 3f
    addi t0, t1, -1             # ... inside scratch
3:  ld t1, RUN_STATE_WINDOW(a0)
    bltu t0, t1, 1b             # it was writable: a genuine fault
4:  slli t1, t1, 1              # double the window until it covers the store
    bgeu t0, t1, 4b
    sd t1, RUN_STATE_WINDOW(a0)
    srli t1, t1, 3
    addi t1, t1, -1
    li t0, SCRATCH_PMPADDR_BASE
    or t1, t1, t0
    csrw pmpaddr5, t1           # why: the scratch window now covers the store
    sfence.vma                  # why: QEMU caches PMP verdicts in its TLB
    ld t0, RUN_STATE_T0(a0)
    ld t1, RUN_STATE_T1(a0)
    csrrw a0, mscratch, a0      # the probe's a0 back, run_state in mscratch
    mret                        # retry the store
5:  ld t1, RUN_STATE_MEASURING(a0)  # a length trigger?
    beqz t1, 1b                 # no: the probe's own ebreak
    csrr t0, mepc
    li t1, PROBE_CODE_BASE
    sub t0, t0, t1              # where the first instruction fell through to
    li t1, 2
    beq t0, t1, 6f
    li t1, 4
    bne t0, t1, 1b              # an ebreak at the entry itself: a fault, length 0
6:  li t1, FRAME_BODY
    sw t0, PROBE_RESULT_LENGTH(t1)
    sd zero, RUN_STATE_MEASURING(a0)
    li t0, MCONTROL_TYPE2
    csrw tselect, zero
    csrw tdata1, t0             # why: measured; the probe runs on untripped
    li t1, 1
    csrw tselect, t1
    csrw tdata1, t0             # why: the other length trigger too
    ld t0, RUN_STATE_T0(a0)
    ld t1, RUN_STATE_T1(a0)
    csrrw a0, mscratch, a0      # the probe's a0 back, run_state in mscratch
    mret                        # on with the probe at its second instruction

# scratch_clean: zero what the last probe could have written to scratch (the
# window) and shrink the window back.  Clobbers a0, a1, t0-t2.
scratch_clean:
    addi sp, sp, -16
    sd ra, 0(sp)
    la t2, run_state
    ld a1, RUN_STATE_WINDOW(t2)
    li a0, PROBE_SCRATCH_BASE
    add a1, a1, a0
    call zero_blocks
    la t2, run_state
    li t0, SCRATCH_WINDOW_MIN
    sd t0, RUN_STATE_WINDOW(t2)
    li t0, PMPADDR5_PROBES
    csrw pmpaddr5, t0           # why: the next probe starts with the smallest window
    sfence.vma                  # why: forget the wider window's cached verdicts
    ld ra, 0(sp)
    addi sp, sp, 16
    ret

# fp_reset: the FP/vector state contract/probe_abi.py promises at entry, whatever the
# last probe left: f0-f31 = 0, fcsr = 0, mstatus.FS = Initial, VS = Off.  A
# hart without D keeps FS Off (F/D illegal).  Clobbers t0.
fp_reset:
    li t0, PROBE_MSTATUS_FS_VS_MASK
    csrc mstatus, t0            # why: FS/VS Off unless the hart can run what follows
    csrr t0, misa
    andi t0, t0, MISA_D
    beqz t0, 1f
    li t0, PROBE_MSTATUS_FS_VS_ENTRY
    csrs mstatus, t0            # why: the FP writes below need FS on
.option push
.option arch, +d                # only here: the kernel itself uses no FP
.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    fmv.d.x f\n, zero
.endr
    fscsr zero
.option pop
    li t0, PROBE_MSTATUS_FS_VS_MASK
    csrc mstatus, t0            # why: those writes made FS Dirty ...
    li t0, PROBE_MSTATUS_FS_VS_ENTRY
    csrs mstatus, t0            # why: ... and a probe starts with FS = Initial
1:  ret

# length_triggers_arm: with PROBE_RUN_FLAG_MEASURE_LENGTH, address triggers on
# the two places the first instruction can fall through to (the encoding makes
# it 2 or 4 bytes long, ISA manual "Base Instruction-Length Encoding"); the one
# that fires tells run_trap the length.  Clobbers t0-t2.
length_triggers_arm:
    la t2, run_state
    ld t0, RUN_STATE_FLAGS(t2)
    andi t0, t0, PROBE_RUN_FLAG_MEASURE_LENGTH
    sd t0, RUN_STATE_MEASURING(t2)
    beqz t0, 1f
    csrw tselect, zero
    li t0, PROBE_CODE_BASE + 2
    csrw tdata2, t0             # why: a 16-bit first instruction ends here ...
    li t0, MCONTROL_TYPE2 | MCONTROL_FIRE_ON_EXECUTE_MU
    csrw tdata1, t0             # why: ... and a breakpoint says so before the next runs
    li t1, 1
    csrw tselect, t1
    li t1, PROBE_CODE_BASE + 4
    csrw tdata2, t1             # why: a 32-bit one ends here
    csrw tdata1, t0             # why: the same kind of trigger
1:  ret

# length_triggers_disarm: both length triggers off, whatever became of them.
# Clobbers t0, t1.
length_triggers_disarm:
    la t0, run_state
    ld t1, RUN_STATE_FLAGS(t0)
    andi t1, t1, PROBE_RUN_FLAG_MEASURE_LENGTH
    beqz t1, 1f
    sd zero, RUN_STATE_MEASURING(t0)
    li t0, MCONTROL_TYPE2
    csrw tselect, zero
    csrw tdata1, t0             # why: no breakpoint left in the probe's code
    li t1, 1
    csrw tselect, t1
    csrw tdata1, t0             # why: nor the other one
1:  ret

# watchdog_arm: the driver hart's mtimecmp = now + probes.abi.watchdog_ns(a0
# instructions) in mtime ticks; machine timer interrupts on.  Clobbers a0, t0-t2.
watchdog_arm:
    li t0, PROBE_WATCHDOG_NS_PER_INSN
    mul a0, a0, t0
    li t0, PROBE_WATCHDOG_MIN_NS
    bgeu a0, t0, 1f
    mv a0, t0
1:  la t0, timebase_hz
    ld t0, 0(t0)
    mul a0, a0, t0
    li t0, 1000000000
    divu a0, a0, t0             # a0 = ticks
    li t0, CLINT_BASE + MTIME_OFFSET
    ld t1, 0(t0)
    add a0, a0, t1
    mtimecmp_address t0, t1
    sd a0, 0(t0)
    li t0, MIE_MTIE
    csrw mie, t0                # why: the watchdog's interrupt (deadline set just before)
    ret

# watchdog_disarm: mtimecmp as far away as it goes.  Clobbers t0, t1.
watchdog_disarm:
    mtimecmp_address t0, t1
    li t1, -1
    sd t1, 0(t0)
    ret

# place_area: put a2 bytes (dwords) from a1 at a0, zeroing what is left of
# the previous a3 bytes there.  Clobbers a0-a3, t0, t1.
place_area:
    addi a3, a3, 7
    andi a3, a3, -8
    addi t1, a2, 7
    andi t1, t1, -8
    add a3, a0, a3              # a3 = end of the old contents
    add t1, a0, t1              # t1 = end of the new ones
1:  bgeu t1, a3, 2f
    sd zero, 0(t1)
    addi t1, t1, 8
    j 1b
2:  j copy_dwords

# same_dwords: whether a2 bytes at a0 and a1, rounded up to whole dwords as
#   copy_dwords copies them, are the same.  out a0 = 1 if so, else 0.
#   Clobbers a1, a2, t0, t1.
same_dwords:
1:  blez a2, 2f
    ld t0, 0(a0)
    ld t1, 0(a1)
    bne t0, t1, 3f
    addi a0, a0, 8
    addi a1, a1, 8
    addi a2, a2, -8
    j 1b
2:  li a0, 1
    ret
3:  li a0, 0
    ret

# copy_dwords: a2 bytes from a1 to a0, rounded up to whole dwords.
#   Clobbers a0-a2, t0.
copy_dwords:
1:  blez a2, 2f
    ld t0, 0(a1)
    sd t0, 0(a0)
    addi a0, a0, 8
    addi a1, a1, 8
    addi a2, a2, -8
    j 1b
2:  ret

# zero_blocks: zero [a0, a1), both multiples of 64.  Clobbers a0.
zero_blocks:
1:  bgeu a0, a1, 2f
    sd zero, 0(a0)
    sd zero, 8(a0)
    sd zero, 16(a0)
    sd zero, 24(a0)
    sd zero, 32(a0)
    sd zero, 40(a0)
    sd zero, 48(a0)
    sd zero, 56(a0)
    addi a0, a0, 64
    j 1b
2:  ret
