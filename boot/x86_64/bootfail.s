; The boot stage's one error path (real mode): report on COM1, leave QEMU.
.code16

; boot_fail: prints "MetaOS boot: " and the message, exits through
; isa-debug-exit with DEBUG_EXIT_FAIL once COM1 has sent it, and halts (on hardware without that port).
; Inputs: SI = NUL-terminated message.  Does not return.
boot_fail:
    call boot_serial_init
    push si
    mov si, message_boot_prefix
    call boot_serial_print
    pop si
    call boot_serial_print
    mov dx, UART_LSR
boot_fail_drain:                            ; why: QEMU exits at the port write and drops
    in al, dx                               ; what COM1 still holds (LSR.TEMT: all sent)
    test al, UART_LSR_TEMT
    jz boot_fail_drain
    mov al, DEBUG_EXIT_FAIL
    out DEBUG_EXIT_PORT, al
boot_halt:
    cli
    hlt
    jmp boot_halt

; boot_serial_init: COM1 to 115200 8N1 with FIFOs, polled.
; Inputs: none.  Clobbers: AL, DX.
boot_serial_init:
    mov dx, UART_IER
    mov al, UART_IER_NONE
    out dx, al
    mov dx, UART_LCR
    mov al, UART_LCR_DLAB
    out dx, al
    mov dx, UART_DLL
    mov al, UART_DIVISOR_LOW
    out dx, al
    mov dx, UART_DLM
    mov al, UART_DIVISOR_HIGH
    out dx, al
    mov dx, UART_LCR
    mov al, UART_LCR_8N1
    out dx, al
    mov dx, UART_FCR
    mov al, UART_FCR_INIT
    out dx, al
    ret

; boot_serial_print: sends a NUL-terminated string on COM1.
; Inputs: SI = string.  Clobbers: AL, DX, SI.
boot_serial_print:
    lodsb
    test al, al
    jz boot_serial_print_done
    mov ah, al
    mov dx, UART_LSR
boot_serial_wait:
    in al, dx
    test al, UART_LSR_THRE
    jz boot_serial_wait
    mov al, ah
    mov dx, UART_THR
    out dx, al
    jmp boot_serial_print
boot_serial_print_done:
    ret

message_boot_prefix:
    .asciz "MetaOS boot: "
