; The firmware memory map, as the boot stage collected it from E820.
.code64

; memory_send: one MEMORY frame per stored E820 entry (its first MEMORY_SIZE
; bytes are the body: base, length, type).  A LOG frame if the block is missing.
; Inputs: RDI = boot-info block.  Clobbers: as frame_send.
memory_send:
    push rbx
    push r12
    push r13
    cmp dword ptr [rdi + BOOT_INFO_MAGIC], BOOT_INFO_MAGIC_VALUE
    jne memory_no_boot_info
    mov rbx, qword ptr [rdi + BOOT_INFO_E820_ENTRIES]
    mov r12d, dword ptr [rdi + BOOT_INFO_E820_COUNT]
    mov r13d, dword ptr [rdi + BOOT_INFO_E820_ENTRY_SIZE]
    test r12d, r12d
    jz memory_done
memory_entry:
    mov rsi, rbx
    mov rdi, FRAME_BODY
    mov ecx, MEMORY_SIZE
    rep movsb
    mov edi, MSG_MEMORY
    mov esi, MEMORY_SIZE
    call frame_send
    add rbx, r13
    dec r12d
    jnz memory_entry
    jmp memory_done
memory_no_boot_info:
    mov rsi, message_no_boot_info
    mov ecx, message_no_boot_info_end - message_no_boot_info
    call log_send
memory_done:
    pop r13
    pop r12
    pop rbx
    ret

message_no_boot_info:
    .ascii "boot-info block missing (bad magic): no memory map"
message_no_boot_info_end:
