; The benchmark floor: a boot sector that leaves QEMU at once through
; isa-debug-exit, so timing it measures QEMU + firmware start-up alone.
.code16

floor_start:
    mov al, DEBUG_EXIT_PASS
    out DEBUG_EXIT_PORT, al
floor_halt:
    cli
    hlt
    jmp floor_halt
