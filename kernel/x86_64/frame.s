; Frames: COBS(header + body + CRC-32) then FRAME_DELIMITER, as contract/protocol.py
; defines them.  A message body is built in place at FRAME_BODY, then sent.
.code64

.equ FRAME_BODY, FRAME_BUFFER + FRAME_HEADER_SIZE

; frame_stream_start: a lone delimiter on the line, cutting off anything sent
; before (by the firmware, or on the console before it was ours).
; Inputs: none.  Clobbers: as line_write.
frame_stream_start:
    mov rsi, frame_lone_delimiter
    mov ecx, 1
    jmp line_write

; frame_body_clear: zeroes the start of the body (fixed fields and padding).
; Inputs: ECX = bytes.  Clobbers: RAX, RCX, RDI.
frame_body_clear:
    mov rdi, FRAME_BODY
    xor eax, eax
    rep stosb
    ret

; frame_send: wraps the body at FRAME_BODY in a header (type, flags 0, next
; seq) and its CRC-32, COBS-encodes it and sends it with its delimiter.
; Inputs: EDI = message type, ESI = body length (<= FRAME_MAX_BODY).
; Clobbers: RAX, RCX, RDX, RSI, RDI, R8-R11.  The body is left intact.
frame_send:
    push rbx
    mov ebx, esi
    mov r8, FRAME_BUFFER
    mov byte ptr [r8 + FRAME_HEADER_TYPE], dil
    mov byte ptr [r8 + FRAME_HEADER_FLAGS], 0
    mov r9, frame_sequence
    mov ax, word ptr [r9]
    mov word ptr [r8 + FRAME_HEADER_SEQ], ax
    inc ax                                  ; wraps at 2**16, as the protocol says
    mov word ptr [r9], ax
    mov r9, frames_sent
    inc dword ptr [r9]
    mov rsi, r8
    lea ecx, [rbx + FRAME_HEADER_SIZE]
    call crc32_compute
    mov r8, FRAME_BUFFER
    mov dword ptr [r8 + rbx + FRAME_HEADER_SIZE], eax
    mov rsi, r8
    lea ecx, [rbx + FRAME_HEADER_SIZE + FRAME_CRC_SIZE]
    mov rdi, COBS_BUFFER
    call cobs_encode
    mov rsi, COBS_BUFFER
    mov byte ptr [rsi + rax], FRAME_DELIMITER
    lea rcx, [rax + 1]
    call line_write
    pop rbx
    ret

frame_lone_delimiter:
    .byte FRAME_DELIMITER
.align 4
frames_sent:
    .long 0
frame_sequence:
    .word 0
