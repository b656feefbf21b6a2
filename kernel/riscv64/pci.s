# pci.s: PCIe through ECAM.  With -bios none nobody has numbered the buses
# behind bridges, so pci_assign_buses numbers them depth-first in device
# order, as Linux does for unconfigured bridges; pci_report then sends one
# PCI_FUNCTION frame per function found on the numbered buses.

# pci_config: a0 = ECAM address of (bus a0, device a1, function a2).
#   Clobbers t0.
pci_config:
    la t0, bus_first
    ld t0, 0(t0)
    sub a0, a0, t0              # the window starts at the bus-range's first bus
    slli a0, a0, ECAM_BUS_SHIFT
    slli a1, a1, ECAM_DEVICE_SHIFT
    or a0, a0, a1
    slli a2, a2, ECAM_FUNCTION_SHIFT
    or a0, a0, a2
    la t0, ecam_base
    ld t0, 0(t0)
    add a0, a0, t0
    ret

# pci_scan_bus: number every bridge below bus a0, depth first.
#   in a0 = bus, a1 = the highest bus number used so far.
#   out a0 = the highest bus number used after this bus's subtree.
pci_scan_bus:
    addi sp, sp, -64
    sd ra, 0(sp)
    sd s0, 8(sp)
    sd s1, 16(sp)
    sd s2, 24(sp)
    sd s3, 32(sp)
    sd s4, 40(sp)
    mv s0, a0                   # s0 = bus
    mv s4, a1                   # s4 = highest bus number used
    li s1, 0                    # s1 = device
1:  li s2, 0                    # s2 = function
2:  mv a0, s0
    mv a1, s1
    mv a2, s2
    call pci_config
    mv s3, a0                   # s3 = this function's config space
    lhu t0, PCI_VENDOR_ID(s3)
    li t1, PCI_NO_DEVICE_VENDOR
    beq t0, t1, 4f              # nothing here
    lbu t0, PCI_HEADER_TYPE(s3)
    andi t0, t0, PCI_HEADER_TYPE_LAYOUT
    li t1, PCI_LAYOUT_BRIDGE
    bne t0, t1, 3f
    la t0, bus_last
    ld t0, 0(t0)
    bgeu s4, t0, 3f             # no bus number left for it
    addi s4, s4, 1
    lw t0, PCI_BRIDGE_PRIMARY_BUS(s3)  # keep the secondary latency timer (top byte)
    li t1, PCI_BUS_NUMBERS_SECONDARY_LATENCY_TIMER
    and t0, t0, t1
    or t0, t0, s0
    slli t1, s4, PCI_BUS_NUMBERS_SECONDARY_BUS_SHIFT
    or t0, t0, t1
    li t1, PCI_BUS_NUMBERS_SUBORDINATE_BUS
    or t0, t0, t1
    sw t0, PCI_BRIDGE_PRIMARY_BUS(s3)  # why: primary = us, secondary = next, subordinate = 0xFF while we look below
    mv a0, s4
    mv a1, s4
    call pci_scan_bus
    mv s4, a0
    sb s4, PCI_BRIDGE_SUBORDINATE_BUS(s3)  # why: subordinate = the last bus found below
3:  bnez s2, 5f                 # function 0 says whether functions 1-7 exist
    lbu t0, PCI_HEADER_TYPE(s3)
    andi t0, t0, PCI_HEADER_TYPE_MULTI_FUNCTION
    beqz t0, 6f
5:  addi s2, s2, 1
    li t0, PCI_FUNCTIONS
    bltu s2, t0, 2b
    j 6f
4:  bnez s2, 5b                 # an absent function 0 means no device
6:  addi s1, s1, 1
    li t0, PCI_DEVICES
    bltu s1, t0, 1b
    mv a0, s4
    ld ra, 0(sp)
    ld s0, 8(sp)
    ld s1, 16(sp)
    ld s2, 24(sp)
    ld s3, 32(sp)
    ld s4, 40(sp)
    addi sp, sp, 64
    ret

# pci_report: a PCI_FUNCTION frame for every function on buses
#   bus_first..a0 (the highest bus numbered).
pci_report:
    addi sp, sp, -48
    sd ra, 0(sp)
    sd s0, 8(sp)
    sd s1, 16(sp)
    sd s2, 24(sp)
    sd s3, 32(sp)
    sd s4, 40(sp)
    mv s4, a0                   # s4 = last bus
    la t0, bus_first
    ld s0, 0(t0)                # s0 = bus
1:  li s1, 0                    # s1 = device
2:  li s2, 0                    # s2 = function
3:  mv a0, s0
    mv a1, s1
    mv a2, s2
    call pci_config
    mv s3, a0
    lhu t0, PCI_VENDOR_ID(s3)
    li t1, PCI_NO_DEVICE_VENDOR
    beq t0, t1, 4f
    mv a0, s3
    mv a1, s0
    mv a2, s1
    mv a3, s2
    call pci_send_function
    bnez s2, 5f
    lbu t0, PCI_HEADER_TYPE(s3)
    andi t0, t0, PCI_HEADER_TYPE_MULTI_FUNCTION
    beqz t0, 6f
5:  addi s2, s2, 1
    li t0, PCI_FUNCTIONS
    bltu s2, t0, 3b
    j 6f
4:  bnez s2, 5b
6:  addi s1, s1, 1
    li t0, PCI_DEVICES
    bltu s1, t0, 2b
    addi s0, s0, 1
    bleu s0, s4, 1b
    ld ra, 0(sp)
    ld s0, 8(sp)
    ld s1, 16(sp)
    ld s2, 24(sp)
    ld s3, 32(sp)
    ld s4, 40(sp)
    addi sp, sp, 48
    ret

# pci_send_function: size-probe the BARs and send the function's frame.
#   in a0 = config space, a1 = bus, a2 = device, a3 = function.
#   Clobbers a0-a3, t0-t4.
pci_send_function:
    addi sp, sp, -16
    sd ra, 0(sp)
    li t2, FRAME_BODY
    sh zero, PCI_FUNCTION_SEGMENT(t2)
    sb a1, PCI_FUNCTION_BUS(t2)
    sb a2, PCI_FUNCTION_DEVICE(t2)
    sb a3, PCI_FUNCTION_FUNCTION(t2)
    li t0, CONFIG_SOURCE_ECAM
    sb t0, PCI_FUNCTION_CONFIG_SOURCE(t2)
    li t0, PCI_CONFIG_SPACE_EXTENDED
    sh t0, PCI_FUNCTION_CONFIG_SIZE(t2)
    li t3, PCI_DEVICE_BARS      # t3 = how many BARs this header has
    lbu t0, PCI_HEADER_TYPE(a0)
    andi t0, t0, PCI_HEADER_TYPE_LAYOUT
    beqz t0, 1f
    li t3, PCI_BRIDGE_BARS
1:  lhu t4, PCI_COMMAND(a0)
    andi t0, t4, ~PCI_COMMAND_DECODE
    sh t0, PCI_COMMAND(a0)      # why: no decoding while a BAR holds all-ones
    li t0, 0                    # t0 = BAR index
    addi t1, t2, PCI_FUNCTION_BAR0_READBACK
2:  li a1, 0
    bgeu t0, t3, 3f
    slli a2, t0, 2
    add a2, a2, a0
    lw a3, PCI_BAR0(a2)         # the original value
    li a1, -1
    sw a1, PCI_BAR0(a2)         # why: the size probe writes all-ones
    lw a1, PCI_BAR0(a2)
    sw a3, PCI_BAR0(a2)         # why: put the original back
3:  sw a1, 0(t1)
    addi t1, t1, 4
    addi t0, t0, 1
    li a2, PCI_DEVICE_BARS      # the frame has a readback for every BAR a header can have
    bltu t0, a2, 2b
    sh t4, PCI_COMMAND(a0)      # why: restore decoding as it was
    addi t1, t2, PCI_FUNCTION_SIZE   # the raw config space follows
    li t0, PCI_CONFIG_SPACE_EXTENDED
    add t0, t0, a0
    lw t4, 0(a0)
    not t4, t4                  # t4 = the word before (first: unlike word 0)
4:  lw a1, 0(a0)
    sw a1, 0(t1)
    addi a0, a0, 4
    addi t1, t1, 4
    beq a1, t4, 5f
    mv t3, t1                   # t3 = just past the last word unlike the one before
    mv t4, a1
5:  bltu a0, t0, 4b
    li a0, MSG_PCI_FUNCTION
    sub a1, t3, t2              # a trailing run of equal words is sent once
    call send_frame
    ld ra, 0(sp)
    addi sp, sp, 16
    ret
