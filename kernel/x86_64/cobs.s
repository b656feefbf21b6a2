; Consistent Overhead Byte Stuffing: the encoded frame holds no 0x00, so the
; delimiter after it always marks a frame end.  Output equals cobs.encode().
.code64

; cobs_encode: each block is a code byte (data bytes + 1) then up to 254
; non-zero bytes; a code below 0xFF stands for a zero that followed the block.
; Inputs: RSI = data, RCX = length, RDI = output (length + length/254 + 1 bytes).
; Outputs: RAX = encoded length.  Clobbers: RCX, RDX, RSI, RDI, R8-R10.
cobs_encode:
    mov r10, rdi
    lea r8, [rsi + rcx]                     ; end of input
cobs_block:
    mov r9, rdi                             ; the block's code byte goes here
    inc rdi
    mov edx, 1
cobs_scan:
    cmp rsi, r8
    je cobs_last_block
    lodsb
    test al, al
    jz cobs_close_block
    stosb
    inc edx
    cmp edx, 0xFF
    jne cobs_scan
    mov byte ptr [r9], dl                   ; 254 data bytes: a full block, no zero implied
    cmp rsi, r8
    je cobs_done
    jmp cobs_block
cobs_close_block:
    mov byte ptr [r9], dl
    jmp cobs_block
cobs_last_block:
    mov byte ptr [r9], dl
cobs_done:
    mov rax, rdi
    sub rax, r10
    ret
