; The BIOS memory map, collected while the BIOS is still callable.
.code16

; e820_collect: stores every non-empty INT 15h E820 entry (24 bytes each, at
; most E820_MAX_ENTRIES) at E820_BUFFER and records them in the boot-info block.
; Fails the boot when the BIOS returns no entry.
; Inputs: ES = 0.  Clobbers: EAX, EBX, ECX, EDX, EBP, DI, SI.
e820_collect:
    mov di, E820_BUFFER
    xor ebx, ebx                            ; continuation value 0: first entry
    xor ebp, ebp                            ; entries stored
e820_next:
    mov dword ptr [di + E820_ENTRY_ATTRIBUTES], E820_ATTRIBUTES_VALID
    mov eax, E820_FUNCTION
    mov edx, E820_SMAP
    mov ecx, E820_ENTRY_SIZE
    int 0x15
    jc e820_done                            ; carry: past the last entry (or no E820 at all)
    cmp eax, E820_SMAP
    jne e820_done
    mov eax, dword ptr [di + E820_ENTRY_LENGTH]     ; skip entries of length 0
    or eax, dword ptr [di + E820_ENTRY_LENGTH + 4]
    jz e820_skip
    add di, E820_ENTRY_SIZE
    inc ebp
    cmp ebp, E820_MAX_ENTRIES
    je e820_done
e820_skip:
    test ebx, ebx                           ; 0: that was the last entry
    jnz e820_next
e820_done:
    test ebp, ebp
    jz e820_missing
    mov dword ptr [BOOT_INFO + BOOT_INFO_E820_COUNT], ebp
    mov dword ptr [BOOT_INFO + BOOT_INFO_E820_ENTRY_SIZE], E820_ENTRY_SIZE
    mov dword ptr [BOOT_INFO + BOOT_INFO_E820_ENTRIES], E820_BUFFER
    mov dword ptr [BOOT_INFO + BOOT_INFO_E820_ENTRIES + 4], 0
    ret
e820_missing:
    mov si, message_no_e820
    jmp boot_fail

message_no_e820:
    .asciz "no E820 memory map (INT 15h EAX=E820h)\r\n"
