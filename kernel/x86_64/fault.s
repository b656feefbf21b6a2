; CPU exceptions in the kernel: each one sends a FAULT frame (vector, error
; code, RIP, CR2) and leaves QEMU with DEBUG_EXIT_FAIL.
.code64

; idt_install: gates 0..EXCEPTION_VECTORS-1, each to its stub, then LIDT.
; Inputs: none.  Clobbers: RAX, RCX, RDX, RDI.
idt_install:
    mov rdi, IDT
    mov rax, fault_stubs
    xor ecx, ecx
idt_gate:
    mov rdx, rax
    mov word ptr [rdi], dx                  ; offset 15:0
    mov word ptr [rdi + 2], SELECTOR_CODE64
    mov word ptr [rdi + 4], IDT_INTERRUPT_GATE_FLAGS
    shr rdx, 16
    mov word ptr [rdi + 6], dx              ; offset 31:16
    shr rdx, 16
    mov dword ptr [rdi + 8], edx            ; offset 63:32
    mov dword ptr [rdi + 12], 0
    add rax, fault_stub_1 - fault_stubs
    add rdi, IDT_GATE_SIZE
    inc ecx
    cmp ecx, EXCEPTION_VECTORS
    jb idt_gate
    mov rax, idt_pointer
    lidt [rax]
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

; fault_report: sends FAULT and exits failing.  A fault while reporting one
; exits at once.  Entered by a stub's call: [RSP] = stub return address, then
; the error code (only for EXCEPTIONS_WITH_ERROR_CODE), then RIP.  Does not return.
fault_report:
    mov rax, fault_reporting
    cmp byte ptr [rax], 0
    jne fault_exit
    mov byte ptr [rax], 1
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