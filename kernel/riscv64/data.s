# data.s: the kernel's variables, loaded with the image (so they start at 0
# without any clearing race between harts).

.balign 8, 0
hart_slots:      .word 0        # next free hart slot (the lottery)
harts_reported:  .word 0        # harts whose record is complete
uart_ready:      .word 0        # nonzero once the driver's UART is set up
frame_seq:       .word 0        # frames sent so far
uart_tx_room:    .word 0        # bytes the transmit FIFO can still take unpolled
driver_hartid:   .dword 0
uart_base:       .dword 0       # from the device tree: compatible "ns16550a"
ecam_base:       .dword 0       # from the device tree: compatible "pci-host-ecam-generic"
bus_first:       .dword 0       # its bus-range
bus_last:        .dword 0
cpu_count:       .dword 0       # /cpus nodes with device_type "cpu"
park_after_final: .dword 0      # /chosen bootargs contain STAY_BOOTARG: serve probes
privileged_allowed: .dword 0    # /chosen bootargs contain PRIVILEGED_BOOTARG
timebase_hz:     .dword MTIME_HZ  # from the device tree's timebase-frequency
plic_claim:      .dword 0       # the driver's M-mode claim/complete register (uart_wake_init)
idle_spin_ticks: .dword 0       # mtime ticks uart_getc polls before it sleeps
fdt_cells:       .space FDT_MAX_DEPTH * 2, 0   # per depth: #address-cells, #size-cells

# Names the device-tree walk looks for.
str_chosen:        .asciz "chosen"
str_compatible:    .asciz "compatible"
str_reg:           .asciz "reg"
str_address_cells: .asciz "#address-cells"
str_size_cells:    .asciz "#size-cells"
str_device_type:   .asciz "device_type"
str_bus_range:     .asciz "bus-range"
str_bootargs:      .asciz "bootargs"
str_timebase:      .asciz "timebase-frequency"
str_cpu:           .asciz "cpu"
str_ns16550a:      .asciz "ns16550a"
str_pci_host_ecam: .asciz "pci-host-ecam-generic"
