; The frames that open and close a run, and free-text LOG frames.
.code64

; hello_send: HELLO (protocol version, architecture).  Clobbers: as frame_send.
hello_send:
    mov ecx, HELLO_SIZE
    call frame_body_clear
    mov rdi, FRAME_BODY
    mov word ptr [rdi + HELLO_VERSION], PROTOCOL_VERSION
    mov word ptr [rdi + HELLO_ARCH], ARCH_X86_64
    mov edi, MSG_HELLO
    mov esi, HELLO_SIZE
    jmp frame_send

; log_send: a LOG frame with the given ASCII text.
; Inputs: RSI = text, ECX = length.  Clobbers: as frame_send.
log_send:
    mov rdi, FRAME_BODY + LOG_SIZE
    mov edx, ecx
    rep movsb
    mov edi, MSG_LOG
    lea esi, [rdx + LOG_SIZE]
    jmp frame_send

; final_send: FINAL with the number of frames before it, status 0 (complete)
; and the line a staying kernel serves probes on.
; Inputs: EDI = that line (PROBE_LINE_*).  Clobbers: as frame_send.
final_send:
    mov edx, edi
    mov ecx, FINAL_SIZE
    call frame_body_clear
    mov rax, frames_sent
    mov eax, dword ptr [rax]
    mov rdi, FRAME_BODY
    mov dword ptr [rdi + FINAL_FRAMES], eax
    mov word ptr [rdi + FINAL_STATUS], 0
    mov byte ptr [rdi + FINAL_PROBE_LINE], dl
    mov edi, MSG_FINAL
    mov esi, FINAL_SIZE
    jmp frame_send
