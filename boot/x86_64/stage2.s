; Stage 2, entered from the boot sector in real mode (CS = DS = ES = SS = 0).
; Checks the CPU, records the BIOS memory map, enables A20, then goes through
; protected mode into long mode and calls the kernel with the boot-info block.
.code16

stage2_start:
    call long_mode_check
    call e820_collect
    call a20_enable
    mov dword ptr [BOOT_INFO + BOOT_INFO_MAGIC], BOOT_INFO_MAGIC_VALUE
    jmp protected_mode_enter
