; ACPI: the RSDP, the root table (XSDT when revision >= 2, else RSDT), every
; table it lists, and the DSDT and FACS the FADT points to, all sent raw.
.code64

; acpi_send_all: ACPI_RSDP, then one ACPI_TABLE per table; a LOG frame when
; there is no RSDP.  Clobbers: as frame_send.
acpi_send_all:
    push rbx
    push r12
    push r13
    push r14
    push r15
    call acpi_rsdp_find
    test rax, rax
    jz acpi_no_rsdp
    mov rbx, rax                            ; RBX: RSDP
    mov esi, RSDP_V1_SIZE
    cmp byte ptr [rbx + RSDP_REVISION], RSDP_REVISION_XSDT
    jb acpi_rsdp_length_known
    mov esi, dword ptr [rbx + RSDP_LENGTH]
    cmp esi, ACPI_TABLE_MAX_RAW
    jbe acpi_rsdp_length_known
    mov esi, ACPI_TABLE_MAX_RAW
acpi_rsdp_length_known:
    mov rdi, rbx
    mov edx, MSG_ACPI_RSDP
    call acpi_raw_send

    cmp byte ptr [rbx + RSDP_REVISION], RSDP_REVISION_XSDT
    jb acpi_use_rsdt
    mov r12, qword ptr [rbx + RSDP_XSDT]
    mov r13d, XSDT_ENTRY_SIZE               ; XSDT entries are 64-bit addresses
    test r12, r12
    jnz acpi_root_known
acpi_use_rsdt:
    mov r12d, dword ptr [rbx + RSDP_RSDT]
    mov r13d, RSDT_ENTRY_SIZE               ; RSDT entries are 32-bit addresses
acpi_root_known:
    mov rdi, r12
    call acpi_table_send
    test eax, eax
    jz acpi_done
    mov r14d, dword ptr [r12 + ACPI_HEADER_LENGTH]
    add r14, r12                            ; R14: end of the root table
    add r12, ACPI_HEADER_SIZE               ; R12: next entry
acpi_entry:
    lea rax, [r12 + r13]
    cmp rax, r14
    ja acpi_done
    mov r15, qword ptr [r12]
    cmp r13d, XSDT_ENTRY_SIZE
    je acpi_entry_address_known
    mov r15d, r15d                          ; RSDT: only the low 32 bits are the entry
acpi_entry_address_known:
    mov rdi, r15
    call acpi_table_send
    test eax, eax
    jz acpi_entry_next
    cmp dword ptr [r15], FADT_SIGNATURE_DWORD
    jne acpi_entry_next
    mov rdi, r15
    call acpi_fadt_follow
acpi_entry_next:
    add r12, r13
    jmp acpi_entry
acpi_no_rsdp:
    mov rsi, message_no_rsdp
    mov ecx, message_no_rsdp_end - message_no_rsdp
    call log_send
acpi_done:
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    ret

; acpi_fadt_follow: sends the DSDT and the FACS the FADT names (the 64-bit
; X_ fields when the FADT is long enough and they are set, else the 32-bit ones).
; Inputs: RDI = FADT.  Clobbers: as frame_send.
acpi_fadt_follow:
    push rbx
    mov rbx, rdi
    xor edi, edi
    cmp dword ptr [rbx + ACPI_HEADER_LENGTH], FADT_X_DSDT_END
    jb acpi_fadt_dsdt_32
    mov rdi, qword ptr [rbx + FADT_X_DSDT]
acpi_fadt_dsdt_32:
    test rdi, rdi
    jnz acpi_fadt_dsdt_known
    mov edi, dword ptr [rbx + FADT_DSDT]
acpi_fadt_dsdt_known:
    call acpi_table_send
    xor edi, edi
    cmp dword ptr [rbx + ACPI_HEADER_LENGTH], FADT_X_FIRMWARE_CTRL_END
    jb acpi_fadt_facs_32
    mov rdi, qword ptr [rbx + FADT_X_FIRMWARE_CTRL]
acpi_fadt_facs_32:
    test rdi, rdi
    jnz acpi_fadt_facs_known
    mov edi, dword ptr [rbx + FADT_FIRMWARE_CTRL]
acpi_fadt_facs_known:
    call acpi_table_send
    pop rbx
    ret

; acpi_table_send: an ACPI_TABLE frame with the table's raw bytes (its length
; field says how many; cut at ACPI_TABLE_MAX_RAW).  Skips address 0 and tables
; beyond the identity map.
; Inputs: RDI = table.  Outputs: EAX = 1 when sent, 0 when skipped.
; Clobbers: as frame_send.
acpi_table_send:
    test rdi, rdi
    jz acpi_table_skipped
    mov rax, IDENTITY_MAP_END
    lea rcx, [rdi + ACPI_HEADER_SIZE]
    cmp rcx, rax
    ja acpi_table_skipped
    mov esi, dword ptr [rdi + ACPI_HEADER_LENGTH]
    lea rcx, [rdi + rsi]
    cmp rcx, rax
    ja acpi_table_skipped
    cmp esi, ACPI_TABLE_MAX_RAW
    jbe acpi_table_length_known
    mov esi, ACPI_TABLE_MAX_RAW
acpi_table_length_known:
    mov edx, MSG_ACPI_TABLE
    call acpi_raw_send
    mov eax, 1
    ret
acpi_table_skipped:
    xor eax, eax
    ret

; acpi_raw_send: a frame whose body is the address then the bytes there
; (ACPI_RSDP and ACPI_TABLE share this layout).
; Inputs: RDI = address, ESI = length, EDX = message type.  Clobbers: as frame_send.
acpi_raw_send:
    mov r8, FRAME_BODY
    mov qword ptr [r8 + ACPI_TABLE_ADDRESS], rdi
    mov ecx, esi
    mov r9d, esi
    mov rsi, rdi
    lea rdi, [r8 + ACPI_TABLE_SIZE]
    rep movsb
    mov edi, edx
    lea esi, [r9 + ACPI_TABLE_SIZE]
    jmp frame_send

; acpi_rsdp_find: the RSDP in the first KiB of the EBDA, else in the BIOS
; area 0xE0000-0xFFFFF.  Outputs: RAX = its address, 0 if none.
; Clobbers: RCX, RSI, RDI, R8.
acpi_rsdp_find:
    mov eax, BIOS_DATA_EBDA_SEGMENT
    movzx edi, word ptr [rax]
    shl edi, 4                              ; segment -> address
    test edi, edi
    jz acpi_rsdp_bios_area
    lea esi, [rdi + EBDA_SEARCH_SIZE]
    call acpi_rsdp_scan
    test rax, rax
    jnz acpi_rsdp_found
acpi_rsdp_bios_area:
    mov edi, BIOS_AREA_START
    mov esi, BIOS_AREA_END
    call acpi_rsdp_scan
acpi_rsdp_found:
    ret

; acpi_rsdp_scan: the first 16-byte aligned "RSD PTR " whose first 20 bytes
; sum to 0 (mod 256).  Inputs: RDI = start, RSI = end.
; Outputs: RAX = address, 0 if none.  Clobbers: RCX, RDI, R8.
acpi_rsdp_scan:
    mov r8, RSDP_SIGNATURE_QWORD
acpi_rsdp_candidate:
    cmp rdi, rsi
    jae acpi_rsdp_none
    cmp qword ptr [rdi], r8
    jne acpi_rsdp_next
    xor eax, eax
    xor ecx, ecx
acpi_rsdp_sum:
    add al, byte ptr [rdi + rcx]
    inc ecx
    cmp ecx, RSDP_V1_SIZE
    jb acpi_rsdp_sum
    test al, al
    jnz acpi_rsdp_next
    mov rax, rdi
    ret
acpi_rsdp_next:
    add rdi, RSDP_ALIGN
    jmp acpi_rsdp_candidate
acpi_rsdp_none:
    xor eax, eax
    ret

message_no_rsdp:
    .ascii "ACPI: no RSDP in the EBDA or 0xE0000-0xFFFFF"
message_no_rsdp_end:
