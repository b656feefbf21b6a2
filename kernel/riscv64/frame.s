# frame.s: one protocol frame out of FRAME_BUFFER: COBS(header + body + crc32) 0x00,
# on the line (line.s: the UART, or the virtio console once probes are served there).

# crc32: IEEE CRC-32 (as zlib.crc32) of a1 bytes at a0 -> a0, four bytes a step
#   where the data is word-aligned (slicing-by-4: one load of data and four table
#   lookups, where a byte at a time takes two loads a byte).  The tables are
#   generated in Python (crc_tables.s), table k at crc_tables + k * 1024.
#   Clobbers t0-t3.
crc32:
    la t2, crc_tables + 2048    # t2: tables 0-3 at -2048, -1024, 0 and 1024, within an offset's reach
    li t0, 0xFFFFFFFF           # kept zero-extended: the shifts below are 64-bit
    add a1, a0, a1              # a1 = end
1:  beq a0, a1, 4f
    andi t1, a0, 3
    bnez t1, 2f                 # not aligned: a byte
    addi t1, a0, 4
    bleu t1, a1, 3f             # aligned with a whole word left: words
2:  lbu t1, 0(a0)
    xor t1, t1, t0
    andi t1, t1, 0xFF
    slli t1, t1, 2
    add t1, t1, t2
    lwu t1, -2048(t1)           # table 0
    srli t0, t0, 8
    xor t0, t0, t1
    addi a0, a0, 1
    j 1b
3:  lwu t1, 0(a0)
    xor t1, t1, t0              # the word, with the CRC so far
    andi t3, t1, 0xFF
    slli t3, t3, 2
    add t3, t3, t2
    lwu t0, 1024(t3)            # its first byte: table 3
    srli t3, t1, 8
    andi t3, t3, 0xFF
    slli t3, t3, 2
    add t3, t3, t2
    lwu t3, 0(t3)               # the second: table 2
    xor t0, t0, t3
    srli t3, t1, 16
    andi t3, t3, 0xFF
    slli t3, t3, 2
    add t3, t3, t2
    lwu t3, -1024(t3)           # the third: table 1
    xor t0, t0, t3
    srli t3, t1, 24
    slli t3, t3, 2
    add t3, t3, t2
    lwu t3, -2048(t3)           # the fourth: table 0
    xor t0, t0, t3
    addi a0, a0, 4
    addi t1, a0, 4
    bleu t1, a1, 3b
    j 1b                        # the bytes after the last whole word
4:  not a0, t0
    slli a0, a0, 32
    srli a0, a0, 32
    ret

# send_frame: frame the body already at FRAME_BODY.
#   in a0 = message type, a1 = body length.  Clobbers a0-a3, t0-t3.
send_frame:
    addi sp, sp, -32
    sd ra, 0(sp)
    sd s0, 8(sp)
    sd s1, 16(sp)
    li s0, FRAME_BUFFER
    sb a0, FRAME_HEADER_TYPE(s0)    # header: type
    sb zero, FRAME_HEADER_FLAGS(s0) #         flags
    la t0, frame_seq
    lw t1, 0(t0)
    sh t1, FRAME_HEADER_SEQ(s0) #         seq (wraps at 2**16 by the store width)
    addi t1, t1, 1
    sw t1, 0(t0)
    addi s1, a1, FRAME_HEADER_SIZE
    mv a0, s0
    mv a1, s1
    call crc32
    add t0, s0, s1              # append the CRC, little-endian
    sb a0, 0(t0)
    srli a0, a0, 8
    sb a0, 1(t0)
    srli a0, a0, 8
    sb a0, 2(t0)
    srli a0, a0, 8
    sb a0, 3(t0)
    addi a1, s1, FRAME_CRC_SIZE
    mv a0, s0
    call cobs_send
    li a0, FRAME_DELIMITER
    call line_putc
    call line_flush
    ld ra, 0(sp)
    ld s0, 8(sp)
    ld s1, 16(sp)
    addi sp, sp, 32
    ret

# cobs_send: COBS-encode a1 bytes at a0 straight to the line: each block is a
# code byte (1 + the count of non-zero bytes that follow, at most 254) and
# those bytes; a code below 255 stands for a zero after them.
#   Clobbers a0-a3, t0-t3.
cobs_send:
    addi sp, sp, -48
    sd ra, 0(sp)
    sd s0, 8(sp)
    sd s1, 16(sp)
    sd s2, 24(sp)
    sd s3, 32(sp)
    mv s0, a0                   # s0 = block start
    add s1, a0, a1              # s1 = end
1:  mv s2, s0                   # s2 = scan: the run of non-zero bytes
2:  beq s2, s1, 3f
    sub t0, s2, s0
    li t1, 254
    beq t0, t1, 3f
    lbu t0, 0(s2)
    beqz t0, 3f
    addi s2, s2, 1
    j 2b
3:  sub a0, s2, s0
    addi a0, a0, 1
    mv s3, a0                   # s3 = code
    call line_putc
4:  beq s0, s2, 5f              # the run's bytes
    lbu a0, 0(s0)
    call line_putc
    addi s0, s0, 1
    j 4b
5:  beq s2, s1, 6f              # all sent
    li t0, 255
    beq s3, t0, 1b              # a full block implies no zero: go on from here
    addi s0, s2, 1              # skip the zero the code stood for
    j 1b
6:  ld ra, 0(sp)
    ld s0, 8(sp)
    ld s1, 16(sp)
    ld s2, 24(sp)
    ld s3, 32(sp)
    addi sp, sp, 48
    ret
