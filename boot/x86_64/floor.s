; The benchmark floor: a boot sector that sends one byte (a frame delimiter)
; on COM1 and leaves QEMU at once through isa-debug-exit, so timing QEMU start
; to that byte measures QEMU + firmware start-up alone.
.code16

floor_start:
    mov dx, UART_THR                        ; QEMU's 16550 sends without any set-up
    mov al, FRAME_DELIMITER
    out dx, al
    mov al, DEBUG_EXIT_PASS
    out DEBUG_EXIT_PORT, al
floor_halt:
    cli
    hlt
    jmp floor_halt
