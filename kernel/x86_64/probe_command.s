; The probe command loop: host frames in (PROBE_LOAD, PROBE_RUN, PROBE_LOAD_RUN,
; PROBE_RUN_BATCH, PROBE_STATUS_REQUEST), answers out, exactly as
; testing/fake_guest.py behaves.
; Bad frames are dropped (counted in ENV_BAD_FRAMES): the host retransmits.
.code64

.equ RX_BODY, RX_BUFFER + FRAME_HEADER_SIZE

; probe_serve: sets the probe environment up and serves commands for good.
probe_serve:
    call probe_env_setup
    call console_activate
probe_serve_next:
    call frame_receive
    mov rdi, RX_BUFFER
    movzx eax, byte ptr [rdi + FRAME_HEADER_TYPE]
    lea esi, [rsi - FRAME_HEADER_SIZE - FRAME_CRC_SIZE]   ; ESI: body length
    cmp eax, MSG_PROBE_LOAD
    je probe_serve_load
    cmp eax, MSG_PROBE_RUN
    je probe_serve_run
    cmp eax, MSG_PROBE_LOAD_RUN
    je probe_serve_load_run
    cmp eax, MSG_PROBE_RUN_BATCH
    je probe_serve_batch
    cmp eax, MSG_PROBE_STATUS_REQUEST
    jne probe_serve_next                    ; anything else: ignored
    call command_status
    jmp probe_serve_next
probe_serve_load:
    call command_load
    jmp probe_serve_next
probe_serve_run:
    call command_run
    jmp probe_serve_next
probe_serve_load_run:
    call command_load_run
    jmp probe_serve_next
probe_serve_batch:
    call command_batch
    jmp probe_serve_next

; frame_receive: the next intact frame from the host, decoded at RX_BUFFER.
; Outputs: ESI = decoded length (header + body + CRC).
; Clobbers: RAX, RCX, RDX, RDI, R8-R10.
frame_receive:
    push rbx
frame_receive_start:
    mov rbx, RX_BUFFER
    xor r8d, r8d                            ; R8: 1 once the frame overflowed the buffer
frame_receive_byte:
    cmp byte ptr [rip + CONSOLE_ACTIVE], 0
    je frame_receive_read
    test r8d, r8d
    jnz frame_receive_read                  ; overflowed: the rest is dropped a byte at a time
    mov rdi, rbx
    mov rdx, RX_BUFFER + RX_BUFFER_SIZE
    sub rdx, rbx
    call console_read_run
    add rbx, rax
frame_receive_read:
    call line_read_byte
    test al, al
    jz frame_receive_end
    mov rcx, RX_BUFFER + RX_BUFFER_SIZE
    cmp rbx, rcx
    jae frame_receive_overflow
    mov byte ptr [rbx], al
    inc rbx
    jmp frame_receive_byte
frame_receive_overflow:
    mov r8d, 1
    jmp frame_receive_byte
frame_receive_end:
    mov rcx, rbx
    mov rsi, RX_BUFFER
    sub rcx, rsi
    jz frame_receive_start                  ; a lone delimiter: resynchronisation
    test r8d, r8d
    jnz frame_receive_bad
    mov rdi, rsi
    call cobs_decode
    cmp rax, FRAME_HEADER_SIZE + FRAME_CRC_SIZE
    jl frame_receive_bad                    ; also -1: not COBS
    mov rbx, rax
    mov rsi, RX_BUFFER
    lea rcx, [rbx - FRAME_CRC_SIZE]
    call crc32_compute
    mov rsi, RX_BUFFER
    cmp eax, dword ptr [rsi + rbx - FRAME_CRC_SIZE]
    jne frame_receive_bad
    mov esi, ebx
    pop rbx
    ret
frame_receive_bad:
    inc dword ptr [rip + ENV_BAD_FRAMES]
    jmp frame_receive_start

; command_load: PROBE_LOAD -> PROBE_LOADED, refusing as ProbeRefusal says.
; Inputs: ESI = body length.  Clobbers: as frame_send, and RBX is preserved.
command_load:
    mov r8, RX_BODY
    call load_slot
    jmp loaded_reply

; command_load_run: PROBE_LOAD_RUN -> PROBE_RESULT, or PROBE_LOADED with the
; reason when the load is refused.  Inputs: ESI = body length.
command_load_run:
    cmp esi, PROBE_LOAD_RUN_SIZE
    jb command_done
    sub esi, PROBE_LOAD_RUN_SIZE
    mov r8, RX_BODY + PROBE_LOAD_RUN_SIZE   ; the PROBE_LOAD inside
    call load_slot
    test eax, eax
    jnz loaded_reply
    mov rax, RX_BODY
    mov edi, dword ptr [rax + PROBE_LOAD_RUN_RUN_ID]
    movzx edx, word ptr [rax + PROBE_LOAD_RUN_FLAGS]
    movzx esi, word ptr [r8 + PROBE_LOAD_SLOT]
    mov ecx, dword ptr [r8 + PROBE_LOAD_TAG]
    mov r8d, 1
    jmp run_and_answer

; loaded_reply: PROBE_LOADED for the PROBE_LOAD body at R8.
; Inputs: EAX = PROBE_REFUSE_* (-1: the body was too short to answer).
; Clobbers: as frame_send.
loaded_reply:
    cmp eax, -1
    je command_done
    push rax
    mov ecx, PROBE_LOADED_SIZE
    call frame_body_clear
    pop rax
    mov rdi, FRAME_BODY
    movzx ecx, word ptr [r8 + PROBE_LOAD_SLOT]
    mov word ptr [rdi + PROBE_LOADED_SLOT], cx
    mov word ptr [rdi + PROBE_LOADED_STATUS], ax
    mov eax, dword ptr [r8 + PROBE_LOAD_TAG]
    mov dword ptr [rdi + PROBE_LOADED_TAG], eax
    mov edi, MSG_PROBE_LOADED
    mov esi, PROBE_LOADED_SIZE
    jmp frame_send

; load_slot: puts the PROBE_LOAD body at R8 (ESI bytes) into its slot.
; Outputs: EAX = PROBE_REFUSE_* (0: loaded; -1: too short to answer).
; R8 preserved.  Clobbers: RCX, RDX, RSI, RDI, R9-R11.
load_slot:
    mov eax, -1
    cmp esi, PROBE_LOAD_SIZE
    jb command_done
    push rbx
    push r12
    push r13
    movzx r12d, word ptr [r8 + PROBE_LOAD_SLOT]
    mov r13d, PROBE_REFUSE_BAD_SLOT
    cmp r12d, PROBE_SLOTS
    jae load_slot_done
    movzx eax, byte ptr [r8 + PROBE_LOAD_PRIVILEGE]
    mov r13d, PROBE_REFUSE_PRIVILEGED_NOT_ALLOWED
    cmp eax, PROBE_PRIV_PRIVILEGED
    jne load_slot_sizes
    cmp byte ptr [rip + ENV_PRIVILEGED_ALLOWED], 0
    je load_slot_done
load_slot_sizes:                            ; what probes.probe.Probe would not accept
    mov r13d, PROBE_REFUSE_TOO_BIG
    cmp eax, PROBE_PRIV_PRIVILEGED
    ja load_slot_done
    movzx ecx, word ptr [r8 + PROBE_LOAD_CODE_LENGTH]
    test ecx, ecx
    jz load_slot_done
    cmp ecx, PROBE_CODE_SIZE
    ja load_slot_done
    movzx edx, word ptr [r8 + PROBE_LOAD_INPUT_LENGTH]
    cmp edx, PROBE_INPUT_SIZE
    ja load_slot_done
    mov r9d, dword ptr [r8 + PROBE_LOAD_BUDGET]
    test r9d, r9d
    jz load_slot_done
    cmp r9d, PROBE_MAX_BUDGET
    ja load_slot_done
    movzx r10d, word ptr [r8 + PROBE_LOAD_OUTPUT_SIZE]
    cmp r10d, PROBE_OUTPUT_SIZE
    ja load_slot_done
    lea r11d, [rcx + rdx + PROBE_LOAD_SIZE]
    cmp esi, r11d
    jb load_slot_done                       ; the tail is shorter than it says
    cmp dword ptr [rip + ENV_CODE_SLOT], r12d
    jne load_slot_copy
    mov dword ptr [rip + ENV_CODE_SLOT], -1 ; the code area holds this slot's old probe
load_slot_copy:
    imul ebx, r12d, SLOT_SIZE
    add rbx, SLOT_TABLE
    mov dword ptr [rbx + SLOT_BUDGET], r9d
    mov word ptr [rbx + SLOT_CODE_LENGTH], cx
    mov word ptr [rbx + SLOT_INPUT_LENGTH], dx
    mov word ptr [rbx + SLOT_OUTPUT_SIZE], r10w
    mov byte ptr [rbx + SLOT_PRIVILEGE], al
    mov eax, dword ptr [r8 + PROBE_LOAD_TAG]
    mov dword ptr [rbx + SLOT_TAG], eax
    mov byte ptr [rbx + SLOT_LOADED], 1
    imul rdi, r12, SLOT_STRIDE
    add rdi, SLOT_STORE
    lea rsi, [r8 + PROBE_LOAD_SIZE]
    call move_bytes                         ; code
    imul rdi, r12, SLOT_STRIDE
    add rdi, SLOT_STORE + PROBE_CODE_SIZE
    mov ecx, edx
    call move_bytes                         ; input
    xor r13d, r13d                          ; PROBE_REFUSE_OK
load_slot_done:
    mov eax, r13d
    pop r13
    pop r12
    pop rbx
command_done:
    ret

; command_run: PROBE_RUN -> PROBE_RESULT.  Inputs: ESI = body length.
command_run:
    cmp esi, PROBE_RUN_SIZE
    jb command_done
    mov rax, RX_BODY
    mov edi, dword ptr [rax + PROBE_RUN_RUN_ID]
    movzx esi, word ptr [rax + PROBE_RUN_SLOT]
    movzx edx, word ptr [rax + PROBE_RUN_FLAGS]
    mov ecx, dword ptr [rax + PROBE_RUN_TAG]
    mov r8d, 1
    jmp run_and_answer

; command_batch: PROBE_RUN_BATCH -> one PROBE_RESULT per slot listed, run ids
; first_run_id + i, no tag check (as the fake guest).  Inputs: ESI = body length.
command_batch:
    cmp esi, PROBE_RUN_BATCH_SIZE
    jb command_done
    mov rax, RX_BODY
    movzx ecx, word ptr [rax + PROBE_RUN_BATCH_COUNT]
    lea ecx, [rcx * 2 + PROBE_RUN_BATCH_SIZE]
    cmp esi, ecx
    jb command_done                         ; fewer slots than it says
    push rbx
    push r12
    push r13
    push r14
    mov r12d, dword ptr [rax + PROBE_RUN_BATCH_FIRST_RUN_ID]
    movzx r13d, word ptr [rax + PROBE_RUN_BATCH_COUNT]
    movzx r14d, word ptr [rax + PROBE_RUN_BATCH_FLAGS]
    mov rbx, RX_BODY + PROBE_RUN_BATCH_SIZE
command_batch_next:
    test r13d, r13d
    jz command_batch_done
    mov edi, r12d
    movzx esi, word ptr [rbx]
    mov edx, r14d
    xor ecx, ecx
    xor r8d, r8d
    call run_and_answer
    inc r12d
    add rbx, 2
    dec r13d
    jmp command_batch_next
command_batch_done:
    pop r14
    pop r13
    pop r12
    pop rbx
    ret

; run_and_answer: one run id: the cached result if it already ran (never a
; rerun), REFUSED if the slot is empty or holds another tag, else a fresh run.
; Inputs: EDI = run id, ESI = slot, EDX = flags, ECX = tag, R8D = 1 to check it.
; Clobbers: as frame_send.
run_and_answer:
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov r12d, edi
    mov r13d, esi
    mov r14d, edx
    mov r15d, ecx
    mov eax, edi
    and eax, PROBE_RESULT_CACHE - 1
    imul rbx, rax, RESULT_CACHE_STRIDE
    add rbx, RESULT_CACHE                   ; RBX: this run id's cache entry
    cmp dword ptr [rbx + CACHE_VALID], 0
    je run_fresh
    cmp dword ptr [rbx + CACHE_RUN_ID], r12d
    jne run_fresh
    lea rsi, [rbx + CACHE_SIZE]
    mov rdi, FRAME_BODY
    mov ecx, dword ptr [rbx + CACHE_LENGTH]
    call move_bytes
    mov esi, dword ptr [rbx + CACHE_LENGTH]
    jmp run_send
run_fresh:
    cmp r13d, PROBE_SLOTS
    jae run_refused
    imul eax, r13d, SLOT_SIZE
    add rax, SLOT_TABLE
    cmp byte ptr [rax + SLOT_LOADED], 0
    je run_refused
    mov ecx, dword ptr [rax + SLOT_TAG]
    test r8d, r8d
    jz run_tag_ok
    cmp ecx, r15d
    jne run_refused
run_tag_ok:
    mov r15d, ecx                           ; the answer carries the slot's tag
    mov edi, r13d
    mov esi, r14d
    call probe_run
    call run_count
    call result_body
    mov dword ptr [rbx + CACHE_RUN_ID], r12d
    mov dword ptr [rbx + CACHE_LENGTH], eax
    mov dword ptr [rbx + CACHE_VALID], 1
    lea rdi, [rbx + CACHE_SIZE]
    mov rsi, FRAME_BODY
    mov ecx, eax
    call move_bytes
    call probe_pages_clean                  ; the output is copied: now zero what the probe wrote
    mov esi, dword ptr [rbx + CACHE_LENGTH]
    jmp run_send
run_refused:                                ; not cached: once loaded, the run may succeed
    mov ecx, PROBE_RESULT_SIZE
    call frame_body_clear
    mov rdi, FRAME_BODY
    mov dword ptr [rdi + PROBE_RESULT_RUN_ID], r12d
    mov word ptr [rdi + PROBE_RESULT_SLOT], r13w
    mov byte ptr [rdi + PROBE_RESULT_OUTCOME], PROBE_OUTCOME_REFUSED
    mov dword ptr [rdi + PROBE_RESULT_TAG], r15d
    mov esi, PROBE_RESULT_SIZE
run_send:
    mov edi, MSG_PROBE_RESULT
    call frame_send
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    ret

; run_count: the counters PROBE_STATUS reports.  Inputs: R12D = run id.
; Clobbers: RAX.
run_count:
    mov dword ptr [rip + ENV_LAST_RUN_ID], r12d
    inc dword ptr [rip + ENV_RUNS]
    mov eax, dword ptr [rip + RUN_OUTCOME]
    cmp eax, PROBE_OUTCOME_FAULT
    jne run_count_timeout
    inc dword ptr [rip + ENV_FAULTS]
run_count_timeout:
    cmp eax, PROBE_OUTCOME_TIMEOUT
    jne run_count_done
    inc dword ptr [rip + ENV_TIMEOUTS]
run_count_done:
    ret

; result_body: the PROBE_RESULT body of the run just made, at FRAME_BODY; the
; output bytes follow only when the probe returned (as the fake guest).
; Inputs: R12D = run id, R13D = slot, R15D = tag.  Outputs: EAX = body length.
; Clobbers: RCX, RDX, RSI, RDI.
result_body:
    mov ecx, PROBE_RESULT_SIZE
    call frame_body_clear
    mov rdx, FRAME_BODY
    mov dword ptr [rdx + PROBE_RESULT_RUN_ID], r12d
    mov word ptr [rdx + PROBE_RESULT_SLOT], r13w
    mov eax, dword ptr [rip + RUN_OUTCOME]
    mov byte ptr [rdx + PROBE_RESULT_OUTCOME], al
    mov dword ptr [rdx + PROBE_RESULT_TAG], r15d
    mov eax, dword ptr [rip + RUN_LENGTH]
    mov dword ptr [rdx + PROBE_RESULT_LENGTH], eax
    mov rsi, RUN_STATUS
    lea rdi, [rdx + PROBE_RESULT_STATUS]
    mov ecx, RUN_COPIED_QWORDS
    rep movsq
    mov eax, PROBE_RESULT_SIZE
    cmp dword ptr [rip + RUN_OUTCOME], PROBE_OUTCOME_RETURNED
    jne result_body_done
    imul ecx, r13d, SLOT_SIZE
    add rcx, SLOT_TABLE
    movzx ecx, word ptr [rcx + SLOT_OUTPUT_SIZE]
    mov rsi, PROBE_OUTPUT_BASE
    lea rdi, [rdx + PROBE_RESULT_SIZE]
    add eax, ecx
    call move_bytes
result_body_done:
    ret

; command_status: PROBE_STATUS with the counters.  Clobbers: as frame_send.
command_status:
    mov ecx, PROBE_STATUS_SIZE
    call frame_body_clear
    mov rdi, FRAME_BODY
    mov word ptr [rdi + PROBE_STATUS_SLOTS], PROBE_SLOTS
    mov rsi, SLOT_TABLE + SLOT_LOADED
    mov ecx, PROBE_SLOTS
    xor eax, eax
command_status_slot:
    movzx edx, byte ptr [rsi]
    add eax, edx
    add rsi, SLOT_SIZE
    dec ecx
    jnz command_status_slot
    mov word ptr [rdi + PROBE_STATUS_LOADED], ax
    mov eax, dword ptr [rip + ENV_LAST_RUN_ID]
    mov dword ptr [rdi + PROBE_STATUS_LAST_RUN_ID], eax
    mov eax, dword ptr [rip + ENV_RUNS]
    mov dword ptr [rdi + PROBE_STATUS_RUNS], eax
    mov eax, dword ptr [rip + ENV_FAULTS]
    mov dword ptr [rdi + PROBE_STATUS_FAULTS], eax
    mov eax, dword ptr [rip + ENV_TIMEOUTS]
    mov dword ptr [rdi + PROBE_STATUS_TIMEOUTS], eax
    mov edi, MSG_PROBE_STATUS
    mov esi, PROBE_STATUS_SIZE
    jmp frame_send
