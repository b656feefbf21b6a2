; The 64-bit kernel.  Stage 2 calls kernel_entry in long mode with the first
; IDENTITY_MAP_GIB GiB identity-mapped and interrupts off.
;
; Calling convention in every kernel routine (System V style): arguments in
; RDI, RSI, RDX, RCX; result in RAX; RBX, RBP, R12-R15 preserved; all others
; may be clobbered (each header says which).
.code64

; kernel_entry: gives the kernel its own stack and runs discovery.
; Inputs: RDI = boot-info block.  Does not return.
kernel_entry:
    mov rsp, KERNEL_STACK_TOP
    jmp kernel_main
