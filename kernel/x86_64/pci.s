; PCI by configuration mechanism #1 (ports 0xCF8/0xCFC): bus 0, then, depth
; first, the secondary bus of every PCI-to-PCI bridge as the firmware numbered it.
.code64

; pci_send_all: one PCI_FUNCTION frame per function found.  Clobbers: as frame_send.
pci_send_all:
    xor edi, edi
    jmp pci_scan_bus

; pci_scan_bus: function 0 of every device, and functions 1..7 of the devices
; whose function 0 sets the multi-function bit.
; Inputs: EDI = bus.  Clobbers: as frame_send.
pci_scan_bus:
    push rbx
    push r12
    push r13
    mov r12d, edi
    shl r12d, PCI_ADDR_BUS_SHIFT
    or r12d, PCI_ADDR_ENABLE                ; R12D: config address of the bus
    xor r13d, r13d                          ; R13D: device
pci_scan_device:
    mov edi, r13d
    shl edi, PCI_ADDR_DEVICE_SHIFT
    or edi, r12d
    call pci_function_visit
    test eax, eax
    js pci_scan_next_device                 ; function 0 absent: no device
    test al, PCI_HEADER_TYPE_MULTI_FUNCTION
    jz pci_scan_next_device
    mov ebx, 1                              ; EBX: function
pci_scan_function:
    mov edi, r13d
    shl edi, PCI_ADDR_DEVICE_SHIFT
    or edi, r12d
    mov eax, ebx
    shl eax, PCI_ADDR_FUNCTION_SHIFT
    or edi, eax
    call pci_function_visit
    inc ebx
    cmp ebx, PCI_FUNCTIONS
    jb pci_scan_function
pci_scan_next_device:
    inc r13d
    cmp r13d, PCI_DEVICES
    jb pci_scan_device
    pop r13
    pop r12
    pop rbx
    ret

; pci_function_visit: when a function answers at the address, sends its frame
; and, for a PCI-to-PCI bridge, scans the bridge's secondary bus.
; Inputs: EDI = config address of the function (register 0).
; Outputs: EAX = its header-type byte, or -1 when nothing answers.
; Clobbers: as frame_send.
pci_function_visit:
    push rbx
    push r12
    mov ebx, edi
    call pci_config_read
    cmp ax, PCI_NO_DEVICE_VENDOR
    je pci_function_absent
    mov edi, ebx
    call pci_function_send
    mov rax, FRAME_BODY + PCI_FUNCTION_SIZE ; the config space just sent
    movzx r12d, byte ptr [rax + PCI_HEADER_TYPE]
    mov ecx, r12d
    and ecx, PCI_HEADER_TYPE_LAYOUT
    cmp ecx, PCI_LAYOUT_BRIDGE
    jne pci_function_visited
    movzx edi, byte ptr [rax + PCI_BRIDGE_SECONDARY_BUS]
    mov ecx, ebx
    shr ecx, PCI_ADDR_BUS_SHIFT
    and ecx, PCI_ADDR_BUS_MAX
    cmp edi, ecx                            ; 0 (unassigned) or not below us: no bus to scan
    jbe pci_function_visited
    call pci_scan_bus
pci_function_visited:
    mov eax, r12d
    pop r12
    pop rbx
    ret
pci_function_absent:
    mov eax, -1
    pop r12
    pop rbx
    ret

; pci_function_send: size-probes the BARs (6 for a device, 2 for a bridge)
; with decoding off, restores them and the command register, then sends
; PCI_FUNCTION with the readbacks and the 256-byte config space read afterwards
; (its trailing run of equal dwords sent once).
; Inputs: EDI = config address of the function (register 0).  Clobbers: as frame_send.
pci_function_send:
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov ebx, edi                            ; EBX: function address
    mov ecx, PCI_FUNCTION_SIZE
    call frame_body_clear                   ; segment 0, padding 0, readbacks 0
    mov rdi, FRAME_BODY
    mov eax, ebx
    shr eax, PCI_ADDR_BUS_SHIFT
    and eax, PCI_ADDR_BUS_MAX
    mov byte ptr [rdi + PCI_FUNCTION_BUS], al
    mov eax, ebx
    shr eax, PCI_ADDR_DEVICE_SHIFT
    and eax, PCI_ADDR_DEVICE_MAX
    mov byte ptr [rdi + PCI_FUNCTION_DEVICE], al
    mov eax, ebx
    shr eax, PCI_ADDR_FUNCTION_SHIFT
    and eax, PCI_ADDR_FUNCTION_MAX
    mov byte ptr [rdi + PCI_FUNCTION_FUNCTION], al
    mov byte ptr [rdi + PCI_FUNCTION_CONFIG_SOURCE], CONFIG_SOURCE_PORT_IO

    lea edi, [rbx + PCI_HEADER_TYPE_DWORD]
    call pci_config_read
    shr eax, PCI_HEADER_TYPE_SHIFT
    and eax, PCI_HEADER_TYPE_LAYOUT
    xor r13d, r13d                          ; R13D: BARs to probe
    cmp eax, PCI_LAYOUT_DEVICE
    jne pci_bars_not_device
    mov r13d, PCI_DEVICE_BARS
pci_bars_not_device:
    cmp eax, PCI_LAYOUT_BRIDGE
    jne pci_bars_counted
    mov r13d, PCI_BRIDGE_BARS
pci_bars_counted:
    lea edi, [rbx + PCI_COMMAND]
    call pci_config_read
    movzx r12d, ax                          ; R12D: command; status (upper half) written as 0: its bits clear on 1
    lea edi, [rbx + PCI_COMMAND]
    mov esi, r12d
    and esi, PCI_COMMAND_DECODE_OFF
    call pci_config_write                   ; no decoding while a BAR holds all-ones
    xor r14d, r14d                          ; R14D: BAR index
pci_bar_probe:
    cmp r14d, r13d
    jae pci_bars_probed
    lea edi, [rbx + r14*4 + PCI_BAR0]
    call pci_config_read
    mov r15d, eax                           ; R15D: the BAR as the firmware set it
    lea edi, [rbx + r14*4 + PCI_BAR0]
    mov esi, PCI_BAR_PROBE
    call pci_config_write
    lea edi, [rbx + r14*4 + PCI_BAR0]
    call pci_config_read
    mov rdx, FRAME_BODY
    mov dword ptr [rdx + r14*4 + PCI_FUNCTION_BAR0_READBACK], eax
    lea edi, [rbx + r14*4 + PCI_BAR0]
    mov esi, r15d
    call pci_config_write
    inc r14d
    jmp pci_bar_probe
pci_bars_probed:
    lea edi, [rbx + PCI_COMMAND]
    mov esi, r12d
    call pci_config_write                   ; decoding back as the firmware left it

    mov rdx, FRAME_BODY
    mov word ptr [rdx + PCI_FUNCTION_CONFIG_SIZE], PCI_CONFIG_SPACE_LEGACY
    mov edi, ebx
    call pci_config_read
    not eax
    mov r13d, eax                           ; R13D: the dword before (first: unlike dword 0)
    xor r14d, r14d
    xor r15d, r15d                          ; R15D: dwords up to the last one unlike the one before
pci_config_copy:
    lea edi, [rbx + r14*4]
    call pci_config_read
    mov rdx, FRAME_BODY + PCI_FUNCTION_SIZE
    mov dword ptr [rdx + r14*4], eax
    inc r14d
    cmp eax, r13d
    je pci_config_same
    mov r15d, r14d
    mov r13d, eax
pci_config_same:
    cmp r14d, PCI_CONFIG_DWORDS
    jb pci_config_copy
    mov edi, MSG_PCI_FUNCTION
    lea esi, [r15*4 + PCI_FUNCTION_SIZE]    ; a trailing run of equal dwords is sent once
    call frame_send
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    ret

; pci_config_read: Inputs: EDI = config address (dword aligned).
; Outputs: EAX = the dword.  Clobbers: DX.
pci_config_read:
    mov eax, edi
    mov dx, PCI_CONFIG_ADDRESS_PORT
    out dx, eax
    mov dx, PCI_CONFIG_DATA_PORT
    in eax, dx
    ret

; pci_config_write: Inputs: EDI = config address (dword aligned), ESI = value.
; Clobbers: EAX, DX.
pci_config_write:
    mov eax, edi
    mov dx, PCI_CONFIG_ADDRESS_PORT
    out dx, eax
    mov eax, esi
    mov dx, PCI_CONFIG_DATA_PORT
    out dx, eax
    ret
