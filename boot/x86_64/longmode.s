; 32-bit protected mode -> 64-bit long mode, then the kernel.
.code32

; long_mode_enter: turns on PAE, loads CR3, sets EFER.LME and CR0.PG, and
; reaches 64-bit code with a far return (keystone mis-encodes `ljmp` in 32-bit code).
; Inputs: page tables built.  Does not return.
long_mode_enter:
    mov eax, cr4
    or eax, CR4_PAE
    mov cr4, eax                            ; why: long mode requires PAE-format page tables
    mov eax, PML4
    mov cr3, eax                            ; why: point the MMU at the identity map
    mov ecx, EFER_MSR
    rdmsr
    or eax, EFER_LME
    wrmsr                                   ; why: ask for long mode; it activates with paging
    mov eax, cr0
    or eax, CR0_PG
    mov cr0, eax                            ; why: paging on -> long mode active (compatibility mode until CS changes)
    push SELECTOR_CODE64
    push long_mode_entry
    retf

.code64
long_mode_entry:
    mov ax, SELECTOR_DATA
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov rsp, KERNEL_STACK_TOP
    mov edi, BOOT_INFO
    call kernel_entry
    mov al, DEBUG_EXIT_FAIL                 ; the kernel never returns; if it does, fail loudly
    out DEBUG_EXIT_PORT, al
long_mode_halt:
    cli
    hlt
    jmp long_mode_halt
