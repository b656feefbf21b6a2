# main.s: what the driver hart does: find the devices, then send HELLO,
# DEVICETREE, one HART per hart, one PCI_FUNCTION per function, FINAL.

# driver_main: in a0 = device tree.  Does not return.
driver_main:
    mv s0, a0                   # s0 = device tree
    csrr t0, mhartid
    la t1, driver_hartid
    sd t0, 0(t1)
    call fdt_scan
    bnez a0, exit_fail
    la t0, uart_base
    ld t0, 0(t0)
    li a0, EXIT_NO_UART
    beqz t0, exit_fail
    la t0, ecam_base
    ld t0, 0(t0)
    li a0, EXIT_NO_PCIE
    beqz t0, exit_fail
    call uart_init
    li a0, FRAME_DELIMITER      # cut off anything on the line before us
    call uart_putc
    call send_hello
    mv a0, s0
    call send_devicetree
    call wait_for_harts
    mv s1, a0                   # s1 = FINAL status
    call send_harts
    la t0, bus_first
    ld a0, 0(t0)
    mv a1, a0
    call pci_scan_bus
    call pci_report
    li s2, PROBE_LINE_SERIAL    # s2 = where probes will be served
    la t0, park_after_final
    ld t0, 0(t0)
    beqz t0, 1f
    call console_init           # staying: on the virtio console, if there is one
    mv s2, a0
1:  li t2, FRAME_BODY
    la t0, frame_seq
    lw t0, 0(t0)
    sw t0, FINAL_FRAMES(t2)
    sh s1, FINAL_STATUS(t2)
    sb s2, FINAL_PROBE_LINE(t2)
    sb zero, FINAL_PROBE_LINE + 1(t2)   # the padding
    li a0, MSG_FINAL
    li a1, FINAL_SIZE
    call send_frame
    la t0, park_after_final
    ld t0, 0(t0)
    bnez t0, probe_loop         # asked to stay: serve probes (QEMU can be queried too)
    j exit_pass

send_hello:
    addi sp, sp, -16
    sd ra, 0(sp)
    li t2, FRAME_BODY
    li t0, PROTOCOL_VERSION
    sh t0, HELLO_VERSION(t2)
    li t0, ARCH_RISCV64
    sh t0, HELLO_ARCH(t2)
    li a0, MSG_HELLO
    li a1, HELLO_SIZE
    call send_frame
    ld ra, 0(sp)
    addi sp, sp, 16
    ret

# send_devicetree: the blob at a0, raw (its size is the header's totalsize).
send_devicetree:
    addi sp, sp, -16
    sd ra, 0(sp)
    sd s0, 8(sp)
    mv s0, a0
    addi a0, s0, FDT_HEADER_TOTALSIZE
    call be32
    mv a3, a0                   # a3 = totalsize
    li t0, FRAME_MAX_BODY - DEVICETREE_SIZE
    li a0, EXIT_DEVICETREE_TOO_BIG
    bgtu a3, t0, exit_fail
    li t2, FRAME_BODY
    sd s0, DEVICETREE_ADDRESS(t2)
    addi t1, t2, DEVICETREE_SIZE
    mv t0, s0
    add t3, s0, a3
1:  bgeu t0, t3, 2f
    lbu a0, 0(t0)
    sb a0, 0(t1)
    addi t0, t0, 1
    addi t1, t1, 1
    j 1b
2:  li a0, MSG_DEVICETREE
    addi a1, a3, DEVICETREE_SIZE
    call send_frame
    ld ra, 0(sp)
    ld s0, 8(sp)
    addi sp, sp, 16
    ret

# wait_for_harts: until as many harts have reported as the device tree lists
# cpus, or HART_WAIT_TICKS of mtime pass.  out a0 = FINAL_COMPLETE or
# FINAL_HARTS_MISSING.  Clobbers t0-t3.
wait_for_harts:
    li t2, CLINT_BASE + MTIME_OFFSET
    ld t3, 0(t2)
    li t0, HART_WAIT_TICKS
    add t3, t3, t0              # t3 = deadline
    la t0, cpu_count
    ld t0, 0(t0)
1:  la t1, harts_reported
    lw t1, 0(t1)
    fence r, rw                 # acquire: the records counted are complete
    bgeu t1, t0, 2f
    ld t1, 0(t2)
    bltu t1, t3, 1b
    li a0, FINAL_HARTS_MISSING
    ret
2:  li a0, FINAL_COMPLETE
    ret

# send_harts: one HART frame per record completed.
send_harts:
    addi sp, sp, -32
    sd ra, 0(sp)
    sd s0, 8(sp)
    sd s1, 16(sp)
    la t0, harts_reported
    lw s1, 0(t0)
    li t0, HART_SIZE
    mul s1, s1, t0
    li s0, HART_RECORDS
    add s1, s1, s0              # s1 = end of the completed records
1:  bgeu s0, s1, 3f
    li t1, FRAME_BODY
    li t0, 0
2:  add t2, s0, t0
    ld t3, 0(t2)
    add t2, t1, t0
    sd t3, 0(t2)
    addi t0, t0, 8
    li t2, HART_SIZE
    bltu t0, t2, 2b
    li a0, MSG_HART
    li a1, HART_SIZE
    call send_frame
    addi s0, s0, HART_SIZE
    j 1b
3:  ld ra, 0(sp)
    ld s0, 8(sp)
    ld s1, 16(sp)
    addi sp, sp, 32
    ret
