# fdt.s: the driver's minimal walk of the device tree (devicetree.org spec
# ch. 5): the UART (compatible "ns16550a"), the PCIe host bridge (compatible
# "pci-host-ecam-generic": reg, bus-range), the number of cpus (nodes with
# device_type "cpu"), the mtime frequency (timebase-frequency) and whether
# /chosen bootargs ask us to stay after FINAL (and allow privileged probes).
# The host parses the whole blob; the guest only needs these.

.equ NODE_UART, 1
.equ NODE_ECAM, 2
.equ NODE_CHOSEN, 4

# fdt_scan: in a0 = device tree; out a0 = 0, or EXIT_BAD_DEVICETREE.
# Walk state: s0 cursor, s1 strings block, s2 depth (root = 1), s3 NODE_* flags
# of the current node, s4/s5 its first reg address/size, s6/s7 its bus-range
# (s7 = -1: none), s10 property length, s11 property name, s8/s9 scratch.
fdt_scan:
    addi sp, sp, -112
    sd ra, 0(sp)
    sd s0, 8(sp)
    sd s1, 16(sp)
    sd s2, 24(sp)
    sd s3, 32(sp)
    sd s4, 40(sp)
    sd s5, 48(sp)
    sd s6, 56(sp)
    sd s7, 64(sp)
    sd s8, 72(sp)
    sd s9, 80(sp)
    sd s10, 88(sp)
    sd s11, 96(sp)
    mv s9, a0
    call be32
    li t0, FDT_MAGIC
    bne a0, t0, fdt_bad
    addi a0, s9, FDT_HEADER_OFF_DT_STRUCT
    call be32
    add s0, s9, a0
    addi a0, s9, FDT_HEADER_OFF_DT_STRINGS
    call be32
    add s1, s9, a0
    li s2, 0
    call fdt_commit_node        # starts the node state empty
fdt_token:
    mv a0, s0
    call be32
    addi s0, s0, FDT_TOKEN_SIZE
    li t0, FDT_BEGIN_NODE
    beq a0, t0, fdt_begin_node
    li t0, FDT_END_NODE
    beq a0, t0, fdt_end_node
    li t0, FDT_PROP
    beq a0, t0, fdt_prop
    li t0, FDT_NOP
    beq a0, t0, fdt_token
    li t0, FDT_END
    beq a0, t0, fdt_done
fdt_bad:
    li a0, EXIT_BAD_DEVICETREE
    j fdt_return

fdt_begin_node:
    call fdt_commit_node        # the parent's properties all precede its children
    addi s2, s2, 1
    li t0, FDT_MAX_DEPTH
    bgeu s2, t0, fdt_bad
    la t0, fdt_cells            # children's defaults: #address-cells 2, #size-cells 1
    slli t1, s2, 1
    add t0, t0, t1
    li t1, FDT_DEFAULT_ADDRESS_CELLS
    sb t1, 0(t0)
    li t1, FDT_DEFAULT_SIZE_CELLS
    sb t1, 1(t0)
    li t0, 2
    bne s2, t0, 1f
    mv a0, s0
    la a1, str_chosen
    call streq
    beqz a0, 1f
    ori s3, s3, NODE_CHOSEN
1:  mv a0, s0                   # skip the name and its padding
    call strlen
    add s0, s0, a0
    addi s0, s0, FDT_TOKEN_SIZE
    andi s0, s0, -FDT_TOKEN_SIZE
    j fdt_token

fdt_end_node:
    call fdt_commit_node
    addi s2, s2, -1
    j fdt_token

fdt_prop:
    mv a0, s0
    call be32
    mv s10, a0                  # FDT_PROPERTY_LEN
    addi a0, s0, FDT_PROPERTY_NAMEOFF
    call be32
    add s11, s1, a0
    addi s0, s0, FDT_PROPERTY_SIZE  # s0 = the value
    mv a0, s11
    la a1, str_compatible
    call streq
    bnez a0, fdt_prop_compatible
    mv a0, s11
    la a1, str_reg
    call streq
    bnez a0, fdt_prop_reg
    mv a0, s11
    la a1, str_address_cells
    call streq
    li s8, 0
    bnez a0, fdt_prop_cells
    mv a0, s11
    la a1, str_size_cells
    call streq
    li s8, 1
    bnez a0, fdt_prop_cells
    mv a0, s11
    la a1, str_device_type
    call streq
    bnez a0, fdt_prop_device_type
    mv a0, s11
    la a1, str_bus_range
    call streq
    bnez a0, fdt_prop_bus_range
    mv a0, s11
    la a1, str_bootargs
    call streq
    bnez a0, fdt_prop_bootargs
    mv a0, s11
    la a1, str_timebase
    call streq
    bnez a0, fdt_prop_timebase
fdt_prop_next:
    add s0, s0, s10
    addi s0, s0, FDT_TOKEN_SIZE - 1
    andi s0, s0, -FDT_TOKEN_SIZE
    j fdt_token

# compatible: a list of strings; any of them may match.
fdt_prop_compatible:
    mv s8, s0
    add s9, s0, s10
1:  bgeu s8, s9, fdt_prop_next
    mv a0, s8
    la a1, str_ns16550a
    call streq
    beqz a0, 2f
    ori s3, s3, NODE_UART
2:  mv a0, s8
    la a1, str_pci_host_ecam
    call streq
    beqz a0, 3f
    ori s3, s3, NODE_ECAM
3:  mv a0, s8
    call strlen
    add s8, s8, a0
    addi s8, s8, 1
    j 1b

# reg: the first (address, size) pair, in the parent's cell counts.
fdt_prop_reg:
    la s8, fdt_cells
    slli t0, s2, 1
    add s8, s8, t0
    addi s8, s8, -2             # the parent's entry
    mv a0, s0
    lbu a1, 0(s8)
    call read_cells
    mv s4, a0
    lbu t0, 0(s8)
    slli t0, t0, 2
    add a0, s0, t0
    lbu a1, 1(s8)
    call read_cells
    mv s5, a0
    j fdt_prop_next

# #address-cells (s8 = 0) / #size-cells (s8 = 1): they apply to the children.
fdt_prop_cells:
    mv a0, s0
    call be32
    la t0, fdt_cells
    slli t1, s2, 1
    add t0, t0, t1
    add t0, t0, s8
    sb a0, 0(t0)
    j fdt_prop_next

fdt_prop_device_type:
    mv a0, s0
    la a1, str_cpu
    call streq
    beqz a0, fdt_prop_next
    la t0, cpu_count
    ld t1, 0(t0)
    addi t1, t1, 1
    sd t1, 0(t0)
    j fdt_prop_next

fdt_prop_bus_range:
    mv a0, s0
    call be32
    mv s6, a0
    addi a0, s0, 4
    call be32
    mv s7, a0
    j fdt_prop_next

fdt_prop_bootargs:
    andi t0, s3, NODE_CHOSEN
    beqz t0, fdt_prop_next
    mv a0, s0
    la a1, str_park
    call strcontains
    la t0, park_after_final
    sd a0, 0(t0)
    mv a0, s0
    la a1, str_privileged
    call strcontains
    la t0, privileged_allowed
    sd a0, 0(t0)
    j fdt_prop_next

# timebase-frequency (a u32 in /cpus): mtime ticks per second.
fdt_prop_timebase:
    li t0, 4
    bne s10, t0, fdt_prop_next
    mv a0, s0
    call be32
    la t0, timebase_hz
    sd a0, 0(t0)
    j fdt_prop_next

fdt_done:
    li a0, 0
fdt_return:
    ld ra, 0(sp)
    ld s0, 8(sp)
    ld s1, 16(sp)
    ld s2, 24(sp)
    ld s3, 32(sp)
    ld s4, 40(sp)
    ld s5, 48(sp)
    ld s6, 56(sp)
    ld s7, 64(sp)
    ld s8, 72(sp)
    ld s9, 80(sp)
    ld s10, 88(sp)
    ld s11, 96(sp)
    addi sp, sp, 112
    ret

# fdt_commit_node: if the node just finished is the first UART / PCIe host
# bridge seen, keep its address; then empty the node state (s3-s7).
#   Clobbers t0, t1.
fdt_commit_node:
    andi t0, s3, NODE_UART
    beqz t0, 1f
    la t0, uart_base
    ld t1, 0(t0)
    bnez t1, 1f
    sd s4, 0(t0)
1:  andi t0, s3, NODE_ECAM
    beqz t0, 3f
    la t0, ecam_base
    ld t1, 0(t0)
    bnez t1, 3f
    sd s4, 0(t0)
    li t1, -1
    bne s7, t1, 2f
    li s6, 0                    # no bus-range: every bus the ECAM window covers
    srli s7, s5, ECAM_BUS_SHIFT
    addi s7, s7, -1
2:  la t0, bus_first
    sd s6, 0(t0)
    la t0, bus_last
    sd s7, 0(t0)
3:  li s3, 0
    li s4, 0
    li s5, 0
    li s6, 0
    li s7, -1
    ret
