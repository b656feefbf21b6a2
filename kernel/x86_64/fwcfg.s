; QEMU fw_cfg: how the host passes the guest named settings (see hw/fwcfg.py).
.code64

; stay_requested: whether the host asked the kernel to stay after FINAL (the
; fw_cfg file STAY_FW_CFG_FILE exists) instead of leaving QEMU.
; Outputs: EAX = nonzero when asked.  Clobbers: as fwcfg_find.
stay_requested:
    mov rsi, fwcfg_stay_name
    jmp fwcfg_find

; privileged_requested: whether the host allows privileged probes (the fw_cfg
; file PRIVILEGED_FW_CFG_FILE of kernel/x86_64/probe_env.py exists).
; Outputs: EAX = nonzero when allowed.  Clobbers: as fwcfg_find.
privileged_requested:
    mov rsi, fwcfg_privileged_name
    jmp fwcfg_find

; fwcfg_find: looks a file up in the fw_cfg directory.
; Inputs: RSI = NUL-terminated name.  Outputs: EAX = its selector, 0 when absent.
; Clobbers: RCX, RDX, RDI, R8, R9, R10, R11.
fwcfg_find:
    mov dx, FW_CFG_PORT_SELECTOR
    mov ax, FW_CFG_FILE_DIR
    out dx, ax
    mov dx, FW_CFG_PORT_DATA
    call fwcfg_read_be32
    mov r9d, eax                            ; files left to look at
fwcfg_find_file:
    test r9d, r9d
    jz fwcfg_find_absent
    dec r9d
    call fwcfg_read_be32                    ; size: not needed
    call fwcfg_read_be32                    ; selector (high half) and reserved
    shr eax, 16
    mov r10d, eax
    xor r8d, r8d                            ; 1 once a name byte differs
    mov rdi, rsi
    mov ecx, FW_CFG_NAME_SIZE
fwcfg_find_byte:
    in al, dx
    cmp al, byte ptr [rdi]
    je fwcfg_find_same
    mov r8d, 1
fwcfg_find_same:
    cmp byte ptr [rdi], 0                   ; past our name's end: compare with NULs
    je fwcfg_find_stay
    inc rdi
fwcfg_find_stay:
    dec ecx
    jnz fwcfg_find_byte
    test r8d, r8d
    jnz fwcfg_find_file
    mov eax, r10d
    ret
fwcfg_find_absent:
    xor eax, eax
    ret

; fwcfg_read_be32: the next four data bytes as a big-endian number.
; Inputs: DX = FW_CFG_PORT_DATA.  Outputs: EAX.  Clobbers: R11.
fwcfg_read_be32:
    push rcx
    xor r11d, r11d
    mov ecx, 4
fwcfg_read_be32_byte:
    shl r11d, 8
    in al, dx
    movzx eax, al
    or r11d, eax
    dec ecx
    jnz fwcfg_read_be32_byte
    mov eax, r11d
    pop rcx
    ret
