; Real mode -> 32-bit protected mode, with the boot GDT (generated gdt.s).
.code16

; protected_mode_enter: loads the GDT, sets CR0.PE and far-jumps into 32-bit
; code, which builds the page tables and continues into long mode.
; Inputs: none.  Does not return.
protected_mode_enter:
    cli                                     ; BIOS handlers are real-mode code: no interrupts from here on
    lgdt [gdt_pointer]
    mov eax, cr0
    or eax, CR0_PE
    mov cr0, eax                            ; why: enter protected mode; segments now come from the GDT
    ljmp SELECTOR_CODE32:protected_mode_entry

.code32
protected_mode_entry:
    mov ax, SELECTOR_DATA
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov esp, REAL_MODE_STACK_TOP
    call page_tables_build
    jmp long_mode_enter
