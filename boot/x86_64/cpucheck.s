; Refuse CPUs that cannot run the kernel, before anything is changed.
.code16

; long_mode_check: fails the boot unless CPUID 0x80000001 reports long mode.
; Inputs: none.  Clobbers: EAX, EBX, ECX, EDX, SI.
long_mode_check:
    mov eax, CPUID_EXTENDED_BASE
    cpuid
    cmp eax, CPUID_EXTENDED_BASE + 1
    jb long_mode_missing
    mov eax, CPUID_EXTENDED_BASE + 1
    cpuid
    test edx, CPUID_80000001_EDX_LM
    jz long_mode_missing
    ret
long_mode_missing:
    mov si, message_no_long_mode
    jmp boot_fail

message_no_long_mode:
    .asciz "no long mode (CPUID 0x80000001 EDX bit 29 clear)\r\n"
