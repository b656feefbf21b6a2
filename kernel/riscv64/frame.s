# frame.s: one protocol frame out of FRAME_BUFFER: COBS(header + body + crc32) 0x00,
# encoded at TX_FRAME, then on the line (line.s: the UART, or the virtio console once
# probes are served there).

# crc32: IEEE CRC-32 (as zlib.crc32) of a1 bytes at a0 -> a0, four bytes a step
#   where the data is word-aligned (slicing-by-4: one load of data and four table
#   lookups, where a byte at a time takes two loads a byte).  The tables are
#   generated in Python (crc_tables.s), table k at crc_tables + k * CRC32_TABLE_SIZE.
#   Clobbers t0-t3.
crc32:
    la t2, crc_tables + 2 * CRC32_TABLE_SIZE  # t2: tables 0-3 at -2, -1, 0 and 1 table
                                # sizes from it, within a 12-bit offset's reach
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
    lwu t1, -2 * CRC32_TABLE_SIZE(t1)  # table 0
    srli t0, t0, 8
    xor t0, t0, t1
    addi a0, a0, 1
    j 1b
3:  lwu t1, 0(a0)
    xor t1, t1, t0              # the word, with the CRC so far
    andi t3, t1, 0xFF
    slli t3, t3, 2
    add t3, t3, t2
    lwu t0, CRC32_TABLE_SIZE(t3)  # its first byte: table 3
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
    lwu t3, -CRC32_TABLE_SIZE(t3)  # the third: table 1
    xor t0, t0, t3
    srli t3, t1, 24
    slli t3, t3, 2
    add t3, t3, t2
    lwu t3, -2 * CRC32_TABLE_SIZE(t3)  # the fourth: table 0
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
    li a2, TX_FRAME
    call cobs_encode            # a0 = its encoded length
    li t0, TX_FRAME
    add t0, t0, a0
    li t1, FRAME_DELIMITER
    sb t1, 0(t0)
    addi a1, a0, 1
    call line_write
    ld ra, 0(sp)
    ld s0, 8(sp)
    ld s1, 16(sp)
    addi sp, sp, 32
    ret

# cobs_encode: COBS-encode a1 bytes at a0 to a2: each block is a code byte (1 +
# the count of non-zero bytes that follow, at most 254) and those bytes; a code
# below 255 stands for a zero after them.  Output equals cobs.encode().
#   out a0 = encoded length.  Clobbers a1-a3, t0-t3.
cobs_encode:
    add a1, a0, a1              # a1 = end of input
    mv t3, a2                   # t3 = start of output
1:  mv a3, a2                   # a3 = this block's code byte
    addi a2, a2, 1
    li t0, 1                    # t0 = the code so far
2:  beq a0, a1, 4f              # the input's end: the last block
    lbu t1, 0(a0)
    addi a0, a0, 1
    beqz t1, 3f                 # a zero closes the block
    sb t1, 0(a2)
    addi a2, a2, 1
    addi t0, t0, 1
    li t2, 255
    bne t0, t2, 2b
    sb t0, 0(a3)                # 254 data bytes: a full block, no zero implied
    beq a0, a1, 5f
    j 1b
3:  sb t0, 0(a3)
    j 1b
4:  sb t0, 0(a3)
5:  sub a0, a2, t3
    ret
