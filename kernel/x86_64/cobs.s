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

; cobs_decode: the inverse of cobs_encode; may decode in place (RDI = RSI),
; since the output never overtakes the input.
; Inputs: RSI = encoded bytes (no delimiter), RCX = length, RDI = output.
; Outputs: RAX = decoded length, or -1 when the input is not valid COBS (a zero
; byte, or a block running past the end).  Clobbers: RCX, RDX, RSI, RDI, R8-R10.
cobs_decode:
    mov r10, rdi
    lea r8, [rsi + rcx]                     ; end of input
cobs_decode_block:
    cmp rsi, r8
    je cobs_decode_done
    movzx edx, byte ptr [rsi]
    inc rsi
    cmp edx, 1
    je cobs_decode_empty                    ; most blocks of a probe's data: a lone zero
    test edx, edx
    jz cobs_decode_bad
    lea ecx, [rdx - 1]                      ; data bytes in this block
    mov r9, r8
    sub r9, rsi
    cmp rcx, r9
    ja cobs_decode_bad
cobs_decode_copy:
    test ecx, ecx
    jz cobs_decode_block_end
    mov al, byte ptr [rsi]
    test al, al
    jz cobs_decode_bad
    mov byte ptr [rdi], al
    inc rsi
    inc rdi
    dec ecx
    jmp cobs_decode_copy
cobs_decode_block_end:
    cmp edx, 0xFF                           ; a full block implies no zero
    je cobs_decode_block
    cmp rsi, r8                             ; nor does the last block
    je cobs_decode_done
    mov byte ptr [rdi], 0
    inc rdi
    jmp cobs_decode_block
cobs_decode_empty:
    cmp rsi, r8                             ; the last block implies no zero
    je cobs_decode_done
    mov byte ptr [rdi], 0
    inc rdi
    jmp cobs_decode_block
cobs_decode_done:
    mov rax, rdi
    sub rax, r10
    ret
cobs_decode_bad:
    mov rax, -1
    ret
