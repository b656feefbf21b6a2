; Address line 20: without it every odd megabyte aliases the even one below.
.code16

; a20_enable: leaves A20 on, trying in turn: already on, BIOS INT 15h AX=2401h,
; the fast A20 gate (port 0x92).  Fails the boot when A20 stays off.
; Inputs: DS = 0.  Clobbers: AX, SI, ES.
a20_enable:
    call a20_is_on
    je a20_done
    mov ax, A20_BIOS_ENABLE
    int 0x15
    call a20_is_on
    je a20_done
    in al, A20_FAST_PORT
    or al, A20_FAST_ENABLE
    and al, A20_FAST_KEEP
    out A20_FAST_PORT, al
    call a20_is_on
    je a20_done
    mov si, message_no_a20
    jmp boot_fail
a20_done:
    ret

; a20_is_on: writes a pattern at A20_PROBE and its complement 1 MiB higher;
; the first survives only if the two addresses are distinct (A20 on).
; Inputs: DS = 0.  Outputs: ZF set when A20 is on.  Clobbers: AX, ES.
a20_is_on:
    mov ax, HIGH_SEGMENT
    mov es, ax
    mov word ptr [A20_PROBE], A20_PROBE_PATTERN
    mov word ptr es:[A20_PROBE + 0x10], 0xFFFF - A20_PROBE_PATTERN
    cmp word ptr [A20_PROBE], A20_PROBE_PATTERN
    mov ax, 0                               ; ES back to 0 (mov keeps the flags)
    mov es, ax
    ret

message_no_a20:
    .asciz "A20 could not be enabled (BIOS and port 0x92 tried)\r\n"
