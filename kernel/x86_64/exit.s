; Leaving QEMU: isa-debug-exit turns a write of V into exit status V*2+1.
.code64

; exit_qemu: waits until COM1 has sent its last byte (LSR.TEMT), then writes the
; value to the debug-exit port; halts for good on a machine without that
; device.  Inputs: EDI = value.  Clobbers AL, DX.  Does not return.
exit_qemu:
    mov dx, UART_LSR
exit_drain:                                 ; why: QEMU exits at the port write and drops what
    in al, dx                               ; COM1 still holds: THRE comes while the last byte
    test al, UART_LSR_TEMT                  ; waits in the shift register, and QEMU keeps bytes
    jz exit_drain                           ; there while a slow host's socket is full
    mov eax, edi
    out DEBUG_EXIT_PORT, al
exit_halt:
    cli
    hlt
    jmp exit_halt
