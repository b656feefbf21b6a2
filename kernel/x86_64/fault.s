; CPU exceptions in the kernel: each one sends a FAULT frame (vector, error
; code, RIP, CR2) and leaves QEMU with DEBUG_EXIT_FAIL.
.code64

; idt_install: clears every gate, points vectors 0..EXCEPTION_VECTORS-1 at
; their stubs (no IST: there is no TSS during discovery), then LIDT.
; Inputs: none.  Clobbers: RAX, RCX, RDX, RSI, RDI.
idt_install:
    mov rdi, IDT
    mov ecx, IDT_GATES * IDT_GATE_SIZE / 8
    xor eax, eax
    rep stosq
    mov rsi, fault_stubs
    xor edi, edi
idt_exception_gate:
    mov edx, IDT_INTERRUPT_GATE_FLAGS
    push rdi
    call idt_gate_set
    pop rdi
    add rsi, fault_stub_1 - fault_stubs
    inc edi
    cmp edi, EXCEPTION_VECTORS
    jb idt_exception_gate
    mov rax, idt_pointer
    lidt [rax]
    ret

; idt_gate_set: points one gate at a handler (64-bit interrupt gate, kernel CS).
; Inputs: EDI = vector, RSI = handler, EDX = gate flags (type, present, IST).
; Clobbers: RAX, RDI.
idt_gate_set:
    shl edi, 4
    add rdi, IDT
    mov rax, rsi
    mov word ptr [rdi], ax                  ; offset 15:0
    mov word ptr [rdi + 2], SELECTOR_CODE64
    mov word ptr [rdi + 4], dx
    shr rax, 16
    mov word ptr [rdi + 6], ax              ; offset 31:16
    shr rax, 16
    mov dword ptr [rdi + 8], eax            ; offset 63:32
    mov dword ptr [rdi + 12], 0
    ret

.align 8
idt_pointer:
    .word IDT_LIMIT
    .quad IDT

; One stub per vector, all alike: the return address the call pushes tells
; fault_report which stub (so which vector) ran.
fault_stubs:
    call fault_report                       ; vector 0
fault_stub_1:
    call fault_report                       ; vector 1
    call fault_report                       ; vector 2
    call fault_report                       ; vector 3
    call fault_report                       ; vector 4
    call fault_report                       ; vector 5
    call fault_report                       ; vector 6
    call fault_report                       ; vector 7
    call fault_report                       ; vector 8
    call fault_report                       ; vector 9
    call fault_report                       ; vector 10
    call fault_report                       ; vector 11
    call fault_report                       ; vector 12
    call fault_report                       ; vector 13
fault_stub_14:
    call fault_report                       ; vector 14
    call fault_report                       ; vector 15
    call fault_report                       ; vector 16
    call fault_report                       ; vector 17
    call fault_report                       ; vector 18
    call fault_report                       ; vector 19
    call fault_report                       ; vector 20
    call fault_report                       ; vector 21
    call fault_report                       ; vector 22
    call fault_report                       ; vector 23
    call fault_report                       ; vector 24
    call fault_report                       ; vector 25
    call fault_report                       ; vector 26
    call fault_report                       ; vector 27
    call fault_report                       ; vector 28
    call fault_report                       ; vector 29
    call fault_report                       ; vector 30
    call fault_report                       ; vector 31

; fault_report: a fault during a probe run ends the run (probe_fault); any
; other sends FAULT and exits failing.  A fault while reporting one exits at
; once.  Entered by a stub's call: [RSP] = stub return address, then the error
; code (only for EXCEPTIONS_WITH_ERROR_CODE), then RIP.  Does not return.
fault_report:
    pop rax
    sub rax, fault_stubs
    xor edx, edx
    mov ecx, fault_stub_1 - fault_stubs
    div rcx
    lea r10, [rax - 1]                      ; R10: vector
    xor r11d, r11d                          ; R11: error code (0 when the CPU pushes none)
    mov edx, EXCEPTIONS_WITH_ERROR_CODE
    bt edx, r10d
    jnc fault_no_error_code
    pop r11
fault_no_error_code:
    pop r9                                  ; R9: RIP of the faulting instruction
    cmp byte ptr [rip + ENV_ACTIVE], 0
    jne probe_fault
    mov rax, fault_reporting
    cmp byte ptr [rax], 0
    jne fault_exit
    mov byte ptr [rax], 1
    mov rsp, KERNEL_STACK_TOP               ; a fresh stack: the old one may be the fault
    mov rdi, FRAME_BODY
    mov qword ptr [rdi + FAULT_VECTOR], r10
    mov qword ptr [rdi + FAULT_ERROR_CODE], r11
    mov qword ptr [rdi + FAULT_IP], r9
    mov rax, cr2
    mov qword ptr [rdi + FAULT_ADDRESS], rax
    mov edi, MSG_FAULT
    mov esi, FAULT_SIZE
    call frame_send
fault_exit:
    mov edi, DEBUG_EXIT_FAIL
    jmp exit_qemu

fault_reporting:
    .byte 0