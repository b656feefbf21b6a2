; The probe line on a virtio console (contract/virtio.py): a legacy virtio-serial
; device on PCI bus 0, its port 0 without MULTIPORT (receive queue 0, transmit
; queue 1).  Discovery streams on COM1; a staying guest that found the console
; says so in FINAL, and from then on every probe frame goes over the console.
.code64

; console_init: finds a transitional virtio console at function 0 of a device
; on bus 0 (where QEMU puts -device virtio-serial-pci) and sets it up: both
; queues, every receive buffer posted.  It is the probe line only once
; console_activate ran.
; Outputs: EAX = the probe line FINAL names (PROBE_LINE_*).
; Clobbers: RCX, RDX, RSI, RDI, R8.
console_init:
    push rbx
    mov ebx, PCI_ADDR_ENABLE                ; EBX: config address of bus 0, device 0
console_init_find:
    mov edi, ebx
    call pci_config_read
    cmp eax, VIRTIO_PCI_CONSOLE_ID
    je console_init_found
    add ebx, 1 << PCI_ADDR_DEVICE_SHIFT
    cmp ebx, PCI_BUS0_END
    jb console_init_find
console_init_none:
    mov word ptr [rip + CONSOLE_PORT], 0    ; no console: console_activate leaves COM1 the line
    mov eax, PROBE_LINE_SERIAL
    pop rbx
    ret
console_init_found:
    lea edi, [rbx + PCI_BAR0]
    call pci_config_read
    test eax, PCI_BAR_IO
    jz console_init_none                    ; no legacy I/O registers (a modern-only device)
    and eax, PCI_BAR_IO_ADDRESS
    mov word ptr [rip + CONSOLE_PORT], ax
    lea edi, [rbx + PCI_INTERRUPT_LINE]
    call pci_config_read
    mov byte ptr [rip + CONSOLE_IRQ], al
    lea edi, [rbx + PCI_COMMAND]
    call pci_config_read
    or eax, PCI_COMMAND_IO | PCI_COMMAND_BUS_MASTER
    movzx esi, ax                           ; the status half written as 0: no status bit cleared
    lea edi, [rbx + PCI_COMMAND]
    call pci_config_write                   ; why: registers in I/O space, the queues reached by DMA
    movzx ebx, word ptr [rip + CONSOLE_PORT] ; EBX: the legacy registers
    lea edx, [rbx + VIRTIO_PCI_STATUS]
    xor eax, eax
    out dx, al                              ; why: reset: the device forgets any earlier driver
    mov al, VIRTIO_STATUS_ACKNOWLEDGE
    out dx, al                              ; why: a driver noticed it
    or al, VIRTIO_STATUS_DRIVER
    out dx, al                              ; why: and knows how to drive it
    lea edx, [rbx + VIRTIO_PCI_GUEST_FEATURES]
    xor eax, eax
    out dx, eax                             ; why: no MULTIPORT (port 0 on queues 0/1), no event index
    mov rdi, CONSOLE_BASE
    mov ecx, CONSOLE_BYTES / 8
    rep stosq                               ; empty rings, nothing in flight
    mov esi, VIRTIO_RECEIVEQ
    mov r8, CONSOLE_BASE + CONSOLE_RX_QUEUE
    call console_queue_setup
    test eax, eax
    jz console_init_fail
    mov esi, VIRTIO_TRANSMITQ
    mov r8, CONSOLE_BASE + CONSOLE_TX_QUEUE
    call console_queue_setup
    test eax, eax
    jz console_init_fail
    mov rdi, CONSOLE_BASE + CONSOLE_RX_QUEUE
    mov rsi, CONSOLE_BASE + CONSOLE_RX_BUFFERS
    xor ecx, ecx
console_init_buffer:
    mov qword ptr [rdi + VIRTIO_DESC_ADDR], rsi
    mov dword ptr [rdi + VIRTIO_DESC_LEN], VIRTIO_RX_BUFFER_SIZE
    mov word ptr [rdi + VIRTIO_DESC_FLAGS], VIRTIO_DESC_F_WRITE
    mov rdx, CONSOLE_BASE + CONSOLE_RX_QUEUE + VIRTIO_AVAIL_OFFSET + VIRTIO_RING_ENTRIES
    mov word ptr [rdx + rcx * VIRTIO_AVAIL_ENTRY_SIZE], cx ; avail entry i: descriptor i
    add rsi, VIRTIO_RX_BUFFER_SIZE
    add rdi, VIRTIO_DESC_SIZE
    inc ecx
    cmp ecx, VIRTIO_RX_BUFFERS
    jb console_init_buffer
    mov rdi, CONSOLE_BASE + CONSOLE_RX_QUEUE + VIRTIO_AVAIL_OFFSET
    mov word ptr [rdi + VIRTIO_RING_IDX], VIRTIO_RX_BUFFERS
    mov word ptr [rdi + VIRTIO_RING_FLAGS], VIRTIO_AVAIL_F_NO_INTERRUPT
    mov rdi, CONSOLE_BASE + CONSOLE_TX_QUEUE + VIRTIO_AVAIL_OFFSET
    mov word ptr [rdi + VIRTIO_RING_FLAGS], VIRTIO_AVAIL_F_NO_INTERRUPT
    mov word ptr [rip + CONSOLE_RX_AVAIL], VIRTIO_RX_BUFFERS
    mov word ptr [rip + CONSOLE_RX_USED], 0
    mov word ptr [rip + CONSOLE_TX_AVAIL], 0
    mov dword ptr [rip + CONSOLE_RX_LEFT], 0
    lea edx, [rbx + VIRTIO_PCI_STATUS]
    mov al, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK
    out dx, al                              ; why: the queues are ready: the device may use them
    lea edx, [rbx + VIRTIO_PCI_QUEUE_NOTIFY]
    mov eax, VIRTIO_RECEIVEQ
    out dx, ax                              ; why: receive buffers are waiting
    mov eax, PROBE_LINE_VIRTIO_CONSOLE
    pop rbx
    ret
console_init_fail:
    lea edx, [rbx + VIRTIO_PCI_STATUS]
    mov al, VIRTIO_STATUS_FAILED
    out dx, al                              ; why: tell the device this driver gave up on it
    jmp console_init_none

; console_queue_setup: selects queue ESI, checks its size is VIRTIO_QUEUE_SIZE
; (the legacy layout is computed for it) and places it at R8 (page-aligned).
; Inputs: EBX = register base.  Outputs: EAX = 1, or 0 for another size.
; Clobbers: RDX.
console_queue_setup:
    lea edx, [rbx + VIRTIO_PCI_QUEUE_SELECT]
    mov eax, esi
    out dx, ax                              ; why: the queue registers now address this queue
    lea edx, [rbx + VIRTIO_PCI_QUEUE_SIZE]
    in ax, dx
    cmp ax, VIRTIO_QUEUE_SIZE
    jne console_queue_other_size
    lea edx, [rbx + VIRTIO_PCI_QUEUE_PFN]
    mov rax, r8
    shr rax, VIRTIO_PFN_SHIFT
    out dx, eax                             ; why: the queue lives there (legacy: a page number)
    mov eax, 1
    ret
console_queue_other_size:
    xor eax, eax
    ret

; console_activate: makes the console the probe line when console_init found
; one, and opens its stream with a lone delimiter.  Its interrupt gets a gate
; here (after probe_traps_install): it only wakes console_rx_wait's hlt.
; Clobbers: as frame_send.
console_activate:
    cmp word ptr [rip + CONSOLE_PORT], 0
    je console_activate_done
    movzx ecx, byte ptr [rip + CONSOLE_IRQ]
    mov byte ptr [rip + CONSOLE_MASTER_MASK], 0 ; 0: no line to sleep on (console_rx_wait polls)
    cmp ecx, PIC_LINES * 2
    jae console_activate_line
    cmp ecx, PIC_CASCADE_LINE
    je console_activate_line
    test ecx, ecx
    jz console_activate_line
    mov edi, ecx
    add edi, PIC_MASTER_VECTOR
    mov al, PIC_MASK_ALL & ~(1 << PIC_CASCADE_LINE) ; a slave line passes the master's cascade line
    mov dl, PIC_MASK_ALL
    cmp ecx, PIC_LINES
    jb console_activate_master
    sub ecx, PIC_LINES
    mov edi, ecx
    add edi, PIC_SLAVE_VECTOR
    btr edx, ecx
    jmp console_activate_masks
console_activate_master:
    mov al, PIC_MASK_ALL
    btr eax, ecx
console_activate_masks:
    mov byte ptr [rip + CONSOLE_MASTER_MASK], al
    mov byte ptr [rip + CONSOLE_SLAVE_MASK], dl
    mov rsi, console_irq_entry
    mov edx, IDT_INTERRUPT_GATE_FLAGS | TRAP_IST
    call idt_gate_set
console_activate_line:
    mov byte ptr [rip + CONSOLE_ACTIVE], 1
    jmp frame_stream_start
console_activate_done:
    ret

; line_write: bytes out on the probe line (the console once active, else COM1).
; Inputs: RSI = bytes, RCX = count.  Clobbers: RAX, RCX, RDX, RSI, RDI, R8.
line_write:
    cmp byte ptr [rip + CONSOLE_ACTIVE], 0
    je uart_write
    jmp console_write

; line_read_byte: the next byte in from the probe line.
; Outputs: AL.  Clobbers: RAX, RDX, R9.
line_read_byte:
    cmp byte ptr [rip + CONSOLE_ACTIVE], 0
    je uart_read_byte
    jmp console_read_byte

; console_write: one transmit buffer, the bytes where they are (identity
; mapped); returns once the device has used it, so the caller may reuse them.
; Every avail entry of the transmit ring names descriptor 0 (the ring was
; zeroed): publishing is bumping the index.
; Inputs: RSI = bytes, RCX = count.  Clobbers: RAX, RCX, RDX, RDI, R8.
console_write:
    mov rdi, CONSOLE_BASE + CONSOLE_TX_QUEUE ; descriptor 0, the only one in use
    mov qword ptr [rdi + VIRTIO_DESC_ADDR], rsi
    mov dword ptr [rdi + VIRTIO_DESC_LEN], ecx
    movzx eax, word ptr [rip + CONSOLE_TX_AVAIL]
    inc eax
    mov word ptr [rip + CONSOLE_TX_AVAIL], ax
    mov word ptr [rdi + VIRTIO_AVAIL_OFFSET + VIRTIO_RING_IDX], ax ; after the entry: x86 keeps stores in order
    mov r8d, eax
    movzx edx, word ptr [rip + CONSOLE_PORT]
    add edx, VIRTIO_PCI_QUEUE_NOTIFY
    mov eax, VIRTIO_TRANSMITQ
    out dx, ax                              ; why: the device sends the buffer now
console_write_wait:
    cmp word ptr [rdi + VIRTIO_USED_OFFSET + VIRTIO_RING_IDX], r8w
    je console_write_done
    pause
    jmp console_write_wait
console_write_done:
    ret

; console_read_byte: the next byte of the receive buffer being read; a buffer
; goes back to the device as soon as its last byte is taken.
; Outputs: AL.  Clobbers: RAX, RDX, R9.
console_read_byte:
    mov eax, dword ptr [rip + CONSOLE_RX_LEFT]
    test eax, eax
    jz console_read_next
    dec eax
    mov dword ptr [rip + CONSOLE_RX_LEFT], eax
    mov rdx, qword ptr [rip + CONSOLE_RX_CURSOR]
    movzx r9d, byte ptr [rdx]               ; R9: the byte
    inc rdx
    mov qword ptr [rip + CONSOLE_RX_CURSOR], rdx
    test eax, eax
    jnz console_read_done
    call console_rx_return
console_read_done:
    mov eax, r9d
    ret
console_read_next:
    call console_rx_wait
    push rcx
    movzx eax, word ptr [rip + CONSOLE_RX_USED]
    mov ecx, eax
    and ecx, VIRTIO_QUEUE_SIZE - 1
    inc eax
    mov word ptr [rip + CONSOLE_RX_USED], ax
    mov r9, CONSOLE_BASE + CONSOLE_RX_QUEUE + VIRTIO_USED_OFFSET + VIRTIO_RING_ENTRIES
    lea r9, [r9 + rcx * VIRTIO_USED_SIZE]
    mov eax, dword ptr [r9 + VIRTIO_USED_ID]
    and eax, VIRTIO_RX_BUFFERS - 1          ; one of our buffers, whatever the device says
    mov dword ptr [rip + CONSOLE_RX_ID], eax
    mov edx, dword ptr [r9 + VIRTIO_USED_LEN]
    mov ecx, VIRTIO_RX_BUFFER_SIZE
    cmp edx, ecx
    cmova edx, ecx                          ; never past the buffer
    mov dword ptr [rip + CONSOLE_RX_LEFT], edx
    imul eax, eax, VIRTIO_RX_BUFFER_SIZE    ; descriptor i is receive buffer i
    mov r9, CONSOLE_BASE + CONSOLE_RX_BUFFERS
    add rax, r9
    mov qword ptr [rip + CONSOLE_RX_CURSOR], rax
    pop rcx
    test edx, edx
    jnz console_read_byte
    call console_rx_return                  ; an empty buffer goes straight back
    jmp console_read_byte

; console_read_run: copies the bytes of the receive buffer being read up to the
; next zero byte, short of the buffer's last byte (console_read_byte takes that
; one and gives the buffer back) and of RDX bytes, to RDI: eight bytes a step,
; where a frame read a byte at a time cost some 25 instructions a byte.
; Inputs: RDI = to, RDX = room.  Outputs: RAX = bytes copied.
; Clobbers: RCX, RDX, RSI, RDI, R9, R10.
console_read_run:
    mov ecx, dword ptr [rip + CONSOLE_RX_LEFT]
    sub ecx, 1
    jbe console_run_none                    ; none left, or only the last
    cmp rcx, rdx
    cmova rcx, rdx                          ; RCX: at most this many
    mov rsi, qword ptr [rip + CONSOLE_RX_CURSOR]
    mov r9, 0x0101010101010101
    mov r10, 0x8080808080808080
console_run_qword:
    cmp rcx, 8
    jb console_run_byte
    mov rax, qword ptr [rsi]
    mov qword ptr [rdi], rax                ; stored before the test: bytes past a zero are not counted
    mov rdx, rax
    sub rdx, r9
    not rax
    and rdx, rax
    test rdx, r10                           ; nonzero exactly when one of the eight bytes is zero
    jnz console_run_byte
    add rsi, 8
    add rdi, 8
    sub rcx, 8
    jmp console_run_qword
console_run_byte:
    test rcx, rcx
    jz console_run_done
    mov al, byte ptr [rsi]
    test al, al
    jz console_run_done
    mov byte ptr [rdi], al
    inc rsi
    inc rdi
    dec rcx
    jmp console_run_byte
console_run_done:
    mov rax, rsi
    sub rax, qword ptr [rip + CONSOLE_RX_CURSOR]
    mov qword ptr [rip + CONSOLE_RX_CURSOR], rsi
    sub dword ptr [rip + CONSOLE_RX_LEFT], eax
    ret
console_run_none:
    xor eax, eax
    ret

; console_rx_return: hands the buffer just read (CONSOLE_RX_ID) back, and
; notifies the device when it may be holding input back for want of one: it
; had used every buffer published before this one.  Clobbers: RAX, RDX.
console_rx_return:
    push rcx
    push rbx
    mov rbx, CONSOLE_BASE + CONSOLE_RX_QUEUE
    movzx eax, word ptr [rip + CONSOLE_RX_AVAIL]
    mov edx, eax
    and edx, VIRTIO_QUEUE_SIZE - 1
    mov ecx, dword ptr [rip + CONSOLE_RX_ID]
    mov word ptr [rbx + VIRTIO_AVAIL_OFFSET + VIRTIO_RING_ENTRIES + rdx * VIRTIO_AVAIL_ENTRY_SIZE], cx
    lea ecx, [rax + 1]
    mov word ptr [rip + CONSOLE_RX_AVAIL], cx
    mov word ptr [rbx + VIRTIO_AVAIL_OFFSET + VIRTIO_RING_IDX], cx ; after the entry: stores stay in order
    mfence                                  ; the device's used index is read after our store is seen
    cmp word ptr [rbx + VIRTIO_USED_OFFSET + VIRTIO_RING_IDX], ax
    jne console_rx_return_done
    movzx edx, word ptr [rip + CONSOLE_PORT]
    add edx, VIRTIO_PCI_QUEUE_NOTIFY
    mov eax, VIRTIO_RECEIVEQ
    out dx, ax                              ; why: it ran out of buffers: here is one
console_rx_return_done:
    pop rbx
    pop rcx
    ret

; console_rx_wait: returns once the device has used a receive buffer not yet
; taken.  Polls for ENV_IDLE_SPIN_TSC (back-to-back frames never wait for an
; interrupt), then sleeps in hlt with only the console's 8259 line unmasked
; (when the firmware routed one) and the device's interrupt on; reading its
; ISR before each check acknowledges the level line, so none is lost.  The
; notify before sleeping covers the one race console_rx_return's rule leaves
; (QEMU reads our avail index after storing its used index, unfenced).
; Clobbers: RAX, RDX, R9.
console_rx_wait:
    push rcx
    mov r9, CONSOLE_BASE + CONSOLE_RX_QUEUE + VIRTIO_USED_OFFSET
    movzx ecx, word ptr [rip + CONSOLE_RX_USED]
    cmp cx, word ptr [r9 + VIRTIO_RING_IDX]
    jne console_rx_ready
    rdtsc
    shl rdx, 32
    or rax, rdx
    add rax, qword ptr [rip + ENV_IDLE_SPIN_TSC]
    push rax                                ; [rsp]: when polling gives way to sleeping
console_rx_poll:
    pause
    cmp cx, word ptr [r9 + VIRTIO_RING_IDX]
    jne console_rx_polled
    rdtsc
    shl rdx, 32
    or rax, rdx
    cmp rax, qword ptr [rsp]
    jb console_rx_poll
    cmp byte ptr [rip + CONSOLE_MASTER_MASK], 0
    je console_rx_poll                      ; no interrupt line: keep polling
    mov rax, CONSOLE_BASE + CONSOLE_RX_QUEUE + VIRTIO_AVAIL_OFFSET
    mov word ptr [rax + VIRTIO_RING_FLAGS], 0 ; the next used buffer raises the interrupt
    movzx edx, word ptr [rip + CONSOLE_PORT]
    add edx, VIRTIO_PCI_QUEUE_NOTIFY
    mov eax, VIRTIO_RECEIVEQ
    out dx, ax                              ; why: before sleeping, the device surely knows every buffer
console_rx_sleep:
    movzx edx, word ptr [rip + CONSOLE_PORT]
    add edx, VIRTIO_PCI_ISR
    in al, dx                               ; why: reading ISR acknowledges: the line drops
    mfence                                  ; the used index is read after the flags store is seen
    cmp cx, word ptr [r9 + VIRTIO_RING_IDX]
    jne console_rx_woken
    mov al, byte ptr [rip + CONSOLE_SLAVE_MASK]
    out PIC_SLAVE_DATA, al                  ; why: only the console's line may end hlt
    mov al, byte ptr [rip + CONSOLE_MASTER_MASK]
    out PIC_MASTER_DATA, al
    sti
    hlt                                     ; sti's shadow: an interrupt pending now still wakes it
    cli
    mov al, PIC_MASK_ALL
    out PIC_MASTER_DATA, al                 ; why: no device interrupt while a probe runs
    out PIC_SLAVE_DATA, al
    jmp console_rx_sleep
console_rx_woken:
    mov rax, CONSOLE_BASE + CONSOLE_RX_QUEUE + VIRTIO_AVAIL_OFFSET
    mov word ptr [rax + VIRTIO_RING_FLAGS], VIRTIO_AVAIL_F_NO_INTERRUPT ; polling again
console_rx_polled:
    pop rax
console_rx_ready:
    pop rcx
    ret

; console_irq_entry: the console's interrupt, unmasked only while
; console_rx_wait sleeps.  Its line is level-triggered and stays up until the
; ISR is read, so both 8259s are masked again before the EOI.
console_irq_entry:
    push rax
    mov al, PIC_MASK_ALL
    out PIC_MASTER_DATA, al                 ; why: no second interrupt from the same request
    out PIC_SLAVE_DATA, al
    mov al, PIC_EOI
    out PIC_SLAVE_COMMAND, al               ; why: both in service when the line is the slave's
    out PIC_MASTER_COMMAND, al
    pop rax
    iretq
