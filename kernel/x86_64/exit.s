; Leaving QEMU: isa-debug-exit turns a write of V into exit status V*2+1.
.code64

; exit_qemu: writes the value to the debug-exit port; halts for good on a
; machine without that device.  Inputs: EDI = value.  Does not return.
exit_qemu:
    mov eax, edi
    out DEBUG_EXIT_PORT, al
exit_halt:
    cli
    hlt
    jmp exit_halt
