# fdtlib.s: small leaf routines for reading the (big-endian) device tree.

# be32: a0 = the big-endian u32 at address a0.  Clobbers t0, t1.
be32:
    lbu t0, 0(a0)
    lbu t1, 1(a0)
    slli t0, t0, 8
    or t0, t0, t1
    lbu t1, 2(a0)
    slli t0, t0, 8
    or t0, t0, t1
    lbu t1, 3(a0)
    slli t0, t0, 8
    or a0, t0, t1
    ret

# read_cells: a0 = the big-endian number of a1 32-bit cells at a0 (a1 <= 2).
#   Clobbers a1, t0-t3.
read_cells:
    mv t2, a0
    li t3, 0
1:  beqz a1, 2f
    lbu t0, 0(t2)
    lbu t1, 1(t2)
    slli t0, t0, 8
    or t0, t0, t1
    lbu t1, 2(t2)
    slli t0, t0, 8
    or t0, t0, t1
    lbu t1, 3(t2)
    slli t0, t0, 8
    or t0, t0, t1
    slli t3, t3, 32
    or t3, t3, t0
    addi t2, t2, 4
    addi a1, a1, -1
    j 1b
2:  mv a0, t3
    ret

# strlen: a0 = length of the NUL-terminated string at a0.  Clobbers t0, t1.
strlen:
    mv t0, a0
1:  lbu t1, 0(t0)
    beqz t1, 2f
    addi t0, t0, 1
    j 1b
2:  sub a0, t0, a0
    ret

# streq: a0 = 1 when the NUL-terminated strings at a0 and a1 are equal, else 0.
#   Clobbers a1, t0, t1.
streq:
1:  lbu t0, 0(a0)
    lbu t1, 0(a1)
    bne t0, t1, 2f
    beqz t0, 3f
    addi a0, a0, 1
    addi a1, a1, 1
    j 1b
2:  li a0, 0
    ret
3:  li a0, 1
    ret

# strcontains: a0 = 1 when the NUL-terminated string at a1 occurs in the one
# at a0, else 0.  Clobbers a1, t0-t3.
strcontains:
1:  mv t2, a0
    mv t3, a1
2:  lbu t1, 0(t3)
    beqz t1, 3f                 # the whole needle matched
    lbu t0, 0(t2)
    bne t0, t1, 4f
    addi t2, t2, 1
    addi t3, t3, 1
    j 2b
3:  li a0, 1
    ret
4:  lbu t0, 0(a0)
    addi a0, a0, 1
    bnez t0, 1b
    li a0, 0
    ret
