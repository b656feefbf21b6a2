; MetaOS boot sector.  The BIOS loads it at BOOT_SECTOR_BASE and jumps here in
; real mode with DL = boot drive.  It loads stage 2 and the kernel (LOAD_SECTORS
; sectors from LBA 1) to STAGE2_BASE with INT 13h extended reads, then runs stage 2.
.code16

boot_start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, REAL_MODE_STACK_TOP
    sti                                     ; the BIOS disk service may need interrupts
    ljmp 0:boot_with_cs_zero                ; CS = 0 whether the BIOS used 07C0:0000 or 0000:7C00

boot_with_cs_zero:
    movzx eax, dl
    mov dword ptr [BOOT_INFO + BOOT_INFO_BOOT_DRIVE], eax
    call disk_check_extensions
    call disk_load
    jmp stage2_start

; disk_check_extensions: fails the boot unless the BIOS offers packet reads.
; Inputs: DL = drive.  Outputs: none.  Clobbers: AX, BX, CX, SI.
disk_check_extensions:
    mov ah, INT13_CHECK_EXTENSIONS
    mov bx, INT13_EXTENSIONS_MAGIC
    int 0x13
    jc disk_no_extensions
    cmp bx, BOOT_SIGNATURE                  ; the magic comes back byte-swapped
    jne disk_no_extensions
    test cl, INT13_FEATURE_PACKET_ACCESS
    jz disk_no_extensions
    ret
disk_no_extensions:
    mov si, message_no_extensions
    jmp boot_fail

; disk_load: reads LOAD_SECTORS sectors from LBA 1 into STAGE2_BASE onwards,
; DISK_READ_CHUNK_SECTORS per call, each chunk at the next real-mode segment.
; Inputs: DL = drive.  Outputs: none (fails the boot on a read error).
; Clobbers: AX, BX, CX, SI.
disk_load:
    mov cx, LOAD_SECTORS
disk_load_chunk:
    mov bx, DISK_READ_CHUNK_SECTORS
    cmp cx, bx
    jae disk_load_count_ready
    mov bx, cx
disk_load_count_ready:
    mov word ptr [disk_packet_count], bx
    mov si, disk_packet
    mov ah, INT13_EXTENDED_READ
    int 0x13
    jc disk_read_failed
    add word ptr [disk_packet_lba], bx
    add word ptr [disk_packet_segment], DISK_READ_CHUNK_PARAGRAPHS
    sub cx, bx
    jnz disk_load_chunk
    ret
disk_read_failed:
    mov si, message_disk_read
    jmp boot_fail

; The INT 13h AH=42h disk address packet (EDD 3.0).
disk_packet:
    .byte DISK_ADDRESS_PACKET_SIZE, 0
disk_packet_count:
    .word 0
disk_packet_offset:
    .word 0
disk_packet_segment:
    .word STAGE2_SEGMENT
disk_packet_lba:
    .quad 1

message_no_extensions:
    .asciz "no INT 13h extensions (packet reads)\r\n"
message_disk_read:
    .asciz "disk read error\r\n"
