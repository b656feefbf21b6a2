# hart.s: one hart's identity record (the HART frame body, contract/protocol.py).

# probe_csr bit, number: set bit `bit` of a0 when CSR `number` can be read.
# The probe trap handler sets t6 and skips the read when it is illegal.
.macro probe_csr bit, number
    li t6, 0
    csrr t0, \number
    bnez t6, 1f
    li t1, 1
    slli t1, t1, \bit
    or a0, a0, t1
1:
.endm

# read_csr dst, name: dst = the CSR, or 0 when reading it traps.
.macro read_csr dst, name
    li t0, 0
    csrr t0, \name
    sd t0, \dst(s0)
.endm

# hart_record: fill this hart's record.
#   in a0 = slot, a1 = hartid.  Clobbers t0, t1, t6, a0.
hart_record:
    addi sp, sp, -16
    sd ra, 0(sp)
    sd s0, 8(sp)
    li t0, HART_SIZE
    mul t0, t0, a0
    li s0, HART_RECORDS
    add s0, s0, t0              # s0 = this slot's record
    sd a1, HART_HARTID(s0)
    li t0, MSTATUS_FS_VS_INITIAL
    csrs mstatus, t0            # why: FP and vector CSRs trap while FS/VS are Off
    read_csr HART_MISA, misa
    read_csr HART_MVENDORID, mvendorid
    read_csr HART_MARCHID, marchid
    read_csr HART_MIMPID, mimpid
    call probe_csrs
    sd a0, HART_CSRS(s0)
    ld ra, 0(sp)
    ld s0, 8(sp)
    addi sp, sp, 16
    ret
