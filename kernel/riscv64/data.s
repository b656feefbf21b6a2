# data.s: the kernel's variables, loaded with the image (so they start at 0
# without any clearing race between harts).  They start on a page of their
# own: TCG takes a slow path for every store to a page that holds translated
# code, and the probe line stores per byte.

.balign 4096, 0
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
plic_claim:      .dword 0       # the driver's M-mode claim/complete register (plic_wake_init)
idle_spin_ticks: .dword 0       # mtime ticks line_getc polls before it sleeps
fdt_cells:       .space FDT_MAX_DEPTH * 2, 0   # per depth: #address-cells, #size-cells

# The probe line (line.s) and the virtio console (virtio.s).
.balign 8, 0
console_base:    .dword 0       # the console's registers, once console_init drove it
console_irq:     .dword 0       # its PLIC source
console_rx_next: .dword 0       # the receive buffer in hand: its bytes not taken yet are
console_rx_end:  .dword 0       #   [next, end); none in hand when next = end
probe_line:      .word PROBE_LINE_SERIAL   # where frames go after FINAL (line_open)
console_rx_id:   .half 0        # the descriptor of the receive buffer in hand
console_rx_used: .half 0        # used receive entries taken (mod 2**16, as the ring's index)
console_rx_avail: .half 0       # receive entries published (mod 2**16)
console_tx_avail: .half 0       # transmit entries published (mod 2**16)

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
