# rx.s: host -> guest frames: bytes from the line (line.s) until 0x00,
# COBS-decoded in place at RX_FRAME, CRC-32 checked.  A bad frame is dropped
# without a word: every host command is idempotent and the host resends what
# got no answer.

# frame_receive: wait for the next good frame.  out a0 = body length (the
# body is at RX_BODY), a1 = message type.  Clobbers a2, a3, t0-t3.
# Sleeps while the line is idle (line_getc).
frame_receive:
    addi sp, sp, -32
    sd ra, 0(sp)
    sd s0, 8(sp)
    sd s1, 16(sp)
    sd s2, 24(sp)
    la t0, uart_base
    ld s2, 0(t0)                # s2 = UART
1:  li s0, RX_FRAME             # s0 = where the next byte goes
    li s1, RX_FRAME + RX_CAPACITY
2:  la t0, probe_line
    lw t0, 0(t0)
    li t1, PROBE_LINE_VIRTIO_CONSOLE
    bne t0, t1, 6f
    bgeu s0, s1, 6f             # overlong: the rest is dropped a byte at a time
    mv a0, s0
    sub a1, s1, s0
    call console_read_run       # what the console holds up to the delimiter, at once
    add s0, s0, a0
6:  call line_getc
    beqz t1, 3f                 # the delimiter ends the frame
    bgeu s0, s1, 2b             # overlong: drop bytes up to the delimiter
    sb t1, 0(s0)
    addi s0, s0, 1
    j 2b
3:  bgeu s0, s1, 1b             # it overflowed: not a frame
    li a0, RX_FRAME
    sub a1, s0, a0
    call cobs_decode
    li t0, FRAME_HEADER_SIZE + FRAME_CRC_SIZE
    blt a0, t0, 1b              # malformed or too short
    addi s0, a0, -FRAME_CRC_SIZE  # s0 = header + body length
    li a0, RX_FRAME
    mv a1, s0
    call crc32
    li t0, RX_FRAME
    add t0, t0, s0              # the CRC as sent: little-endian, unaligned
    lbu t1, 3(t0)
    lbu t2, 2(t0)
    slli t1, t1, 8
    or t1, t1, t2
    lbu t2, 1(t0)
    slli t1, t1, 8
    or t1, t1, t2
    lbu t2, 0(t0)
    slli t1, t1, 8
    or t1, t1, t2
    bne a0, t1, 1b
    addi a0, s0, -FRAME_HEADER_SIZE
    li t0, RX_FRAME
    lbu a1, FRAME_HEADER_TYPE(t0)
    ld ra, 0(sp)
    ld s0, 8(sp)
    ld s1, 16(sp)
    ld s2, 24(sp)
    addi sp, sp, 32
    ret

# cobs_decode: decode a1 bytes at a0 in place (the output never overtakes the
# input).  Each block is a code byte c and c - 1 data bytes, followed by a
# zero unless c is 255 or the block is the last.
#   out a0 = decoded length, or -1 when a block overruns the input.
#   Clobbers a1-a3, t0-t2.
cobs_decode:
    mv a2, a0                   # a2 = read
    add a1, a0, a1              # a1 = end
    mv a3, a0                   # a3 = write
1:  bgeu a2, a1, 4f
    lbu t2, 0(a2)               # t2 = the code byte
    addi a2, a2, 1
    li t1, 1
    beq t2, t1, 6f              # most blocks of a probe's data: a lone zero
    beqz t2, 5f                 # (cannot happen: zeros were the delimiters)
    addi t0, t2, -1             # t0 = data bytes in this block
    add t1, a2, t0
    bgtu t1, a1, 5f
2:  beqz t0, 3f
    lbu t1, 0(a2)
    sb t1, 0(a3)
    addi a2, a2, 1
    addi a3, a3, 1
    addi t0, t0, -1
    j 2b
3:  bgeu a2, a1, 4f             # the last block stands for no zero
    li t1, 255
    beq t2, t1, 1b              # a full block stands for no zero either
    sb zero, 0(a3)
    addi a3, a3, 1
    j 1b
4:  sub a0, a3, a0
    ret
5:  li a0, -1
    ret
6:  bgeu a2, a1, 4b             # the last block stands for no zero
    sb zero, 0(a3)
    addi a3, a3, 1
    j 1b
