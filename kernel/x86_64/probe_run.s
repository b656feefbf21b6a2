; Running one probe: place it, enter it (iretq to ring 3, or ring 0 for a
; privileged probe), and come back through exactly one of the exits in
; probe_trap.s, which fill the RUN record and resume here via probe_exit.
.code64

; probe_run: runs the probe in a loaded slot once, as contract/probe_abi.py says, and
; fills the RUN record.  Inputs: EDI = slot, ESI = run flags.
; Clobbers: RAX, RCX, RDX, RSI, RDI, R8-R11.
probe_run:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    mov r12d, edi
    mov r13d, esi
    imul ebx, edi, SLOT_SIZE
    add rbx, SLOT_TABLE
    mov rdi, RUN_STATUS
    mov ecx, RUN_SIZE / 8
    xor eax, eax
    rep stosq
    cmp dword ptr [rip + ENV_CODE_SLOT], r12d
    je probe_run_placed
    call probe_place
probe_run_placed:
    mov rax, PROBE_EXIT_BASE
    mov qword ptr [rip + PROBE_STACK_TOP - 8], rax  ; the ABI's return address
    call fpu_reset
    mov edi, dword ptr [rbx + SLOT_BUDGET]
    call watchdog_ticks
    mov r14d, eax                           ; R14: watchdog count
    mov r15d, PROBE_RFLAGS
    test r13d, PROBE_RUN_FLAG_MEASURE_LENGTH
    jz probe_run_frame
    or r15d, RFLAGS_TF                      ; #DB after the first instruction: its length
    mov byte ptr [rip + ENV_MEASURING], 1
probe_run_frame:
    mov qword ptr [rip + ENV_KERNEL_RSP], rsp   ; probe_exit resumes from here
    cmp byte ptr [rbx + SLOT_PRIVILEGE], PROBE_PRIV_PRIVILEGED
    je probe_run_ring0
    push SELECTOR_USER_DATA_RING3
    push PROBE_STACK_TOP - 8
    push r15
    push SELECTOR_USER_CODE64_RING3
    jmp probe_run_enter
probe_run_ring0:
    push SELECTOR_DATA64
    push PROBE_STACK_TOP - 8
    push r15
    push SELECTOR_CODE64
probe_run_enter:
    push PROBE_CODE_BASE
    cmp byte ptr [rip + ENV_PMU_PRESENT], 0
    je probe_run_no_pmu
    mov ecx, FIXED_CTR0_MSR
    rdmsr
    shl rdx, 32
    or rax, rdx
    mov qword ptr [rip + ENV_INSTRET_START], rax
probe_run_no_pmu:
    movzx ecx, word ptr [rbx + SLOT_INPUT_LENGTH]
    mov rax, LAPIC_BASE
    mov dword ptr [rax + LAPIC_TIMER_INITIAL], r14d  ; the watchdog runs from here
    mov byte ptr [rip + ENV_ACTIVE], 1
    mov r8, rcx
    rdtsc
    shl rdx, 32
    or rax, rdx
    mov qword ptr [rip + ENV_TSC_START], rax
    mov rcx, r8
    mov rdi, PROBE_INPUT_BASE
    mov rsi, PROBE_OUTPUT_BASE
    mov rdx, PROBE_SCRATCH_BASE
    xor eax, eax
    xor ebx, ebx
    xor ebp, ebp
    xor r8d, r8d
    xor r9d, r9d
    xor r10d, r10d
    xor r11d, r11d
    xor r12d, r12d
    xor r13d, r13d
    xor r14d, r14d
    xor r15d, r15d
    iretq

; probe_exit: every exit ends here, on the trap stack or the probe's: back on
; the kernel stack with the cycle and instruction counts taken and the
; watchdog disarmed, returning from probe_run.  Inputs: EAX = outcome.
probe_exit:
    mov rsp, qword ptr [rip + ENV_KERNEL_RSP]
    mov r8d, eax
    rdtsc
    shl rdx, 32
    or rax, rdx
    sub rax, qword ptr [rip + ENV_TSC_START]
    mov qword ptr [rip + RUN_CYCLES], rax
    mov dword ptr [rip + RUN_OUTCOME], r8d
    push RFLAGS_RESERVED_ONE
    popfq                                   ; the probe may have left DF or AC set
    mov rax, LAPIC_BASE
    mov dword ptr [rax + LAPIC_TIMER_INITIAL], 0    ; disarm (a late tick is recognised as stale)
    mov byte ptr [rip + ENV_MEASURING], 0
    cmp byte ptr [rip + ENV_PMU_PRESENT], 0
    je probe_exit_return
    mov ecx, FIXED_CTR0_MSR
    rdmsr
    shl rdx, 32
    or rax, rdx
    sub rax, qword ptr [rip + ENV_INSTRET_START]
    mov qword ptr [rip + RUN_INSTRET], rax
probe_exit_return:
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret

; probe_place: copies a slot's code and input into the backing frames of the
; code and input areas, refilling what a longer earlier probe left behind (the
; code area with PROBE_CODE_FILL, the input with zeros).  Code the area already
; holds (the same length and bytes, from another slot: each batch probe of a
; task) is left as it is: under TCG a write to the code page drops what was
; translated there, and translating it again cost ~200,000 cycles a probe.
; Inputs: RBX = slot record, R12D = slot.  Clobbers: RAX, RCX, RDX, RSI, RDI.
probe_place:
    mov dword ptr [rip + ENV_CODE_SLOT], r12d
    imul rsi, r12, SLOT_STRIDE
    add rsi, SLOT_STORE
    push rsi
    movzx ecx, word ptr [rbx + SLOT_CODE_LENGTH]
    mov edx, dword ptr [rip + ENV_PLACED_CODE_LENGTH]
    cmp ecx, edx
    jne probe_place_code                    ; another length: other code
    mov rdi, PROBE_CODE_BACKING
    repe cmpsb                              ; ZF stays set from the cmp when the length is 0
    je probe_place_input                    ; every byte the same: nothing to write
    mov rsi, qword ptr [rsp]
    movzx ecx, word ptr [rbx + SLOT_CODE_LENGTH]
probe_place_code:
    mov dword ptr [rip + ENV_PLACED_CODE_LENGTH], ecx
    mov rdi, PROBE_CODE_BACKING
    mov al, PROBE_CODE_FILL
    call copy_over
probe_place_input:
    pop rsi
    add rsi, PROBE_CODE_SIZE
    movzx ecx, word ptr [rbx + SLOT_INPUT_LENGTH]
    mov edx, dword ptr [rip + ENV_PLACED_INPUT_LENGTH]
    mov dword ptr [rip + ENV_PLACED_INPUT_LENGTH], ecx
    mov rdi, PROBE_INPUT_BACKING
    xor eax, eax
    jmp copy_over

; copy_over: copies ECX bytes and fills up to EDX bytes (what was there before).
; Inputs: RSI = from, RDI = to, ECX = length, EDX = previous length, AL = fill.
; Clobbers: RCX, RDX, RSI, RDI.
copy_over:
    sub edx, ecx                            ; EDX: the old bytes beyond the new length
    call move_bytes
    test edx, edx
    jle copy_over_done                      ; none
    mov ecx, edx
    rep stosb
copy_over_done:
    ret

; move_bytes: RCX bytes from RSI to RDI, forwards, leaving RSI and RDI past them as
; rep movsb does; a quadword an iteration, since under TCG each iteration of a rep
; string instruction is a pass through its translated block whatever its width.
; Clobbers: RCX, RSI, RDI, flags.
move_bytes:
    push rcx
    shr rcx, 3
    rep movsq
    pop rcx
    and ecx, 7
    rep movsb
    ret

; fpu_reset: x87/SSE registers as after reset, every exception masked, so no
; probe sees what the previous one left; with XSAVE state in ring 3 (AVX), all
; of it.  Clobbers: RAX, RCX, RDX, R11 (the ring-3 trip comes back by syscall).
fpu_reset:
    clts                                    ; why: a privileged probe may have set CR0.TS (#NM here)
    fxrstor [rip + FPU_CLEAN]               ; x87 and SSE as after reset
    cmp byte ptr [rip + ENV_XSAVE_ENABLED], 0
    jne fpu_reset_in_ring3
    ret

; fpu_reset_in_ring3: the XSAVE state (AVX upper halves...) as after reset too.
; Not xrstor here: KVM-PVM (nested KVM) emulates ring 0 instruction by
; instruction and its emulator has neither xrstor nor any VEX instruction, so
; the vCPU stops with an internal error.  Ring 3 runs natively there, so the
; reset is a trip to ring 3: fpu_reset_page, mapped user-executable at
; FPU_RESET_VIRTUAL (a guard page of the probe region) only for the trip, runs
; xrstor from its init image and comes back by syscall (fpu_reset_return).
; EDX:EAX: the components a probe can change that XCR0 enables, whoever set it
; (under KVM-PVM the host's XCR0 rules ring 3, even with a CPU model without XSAVE).
fpu_reset_in_ring3:
    mov rax, fpu_reset_page + FPU_RESET_PAGE_FLAGS
    mov qword ptr [rip + FPU_RESET_ENTRY], rax  ; not present before: nothing to invalidate
    mov qword ptr [rip + ENV_KERNEL_RSP], rsp
    push SELECTOR_USER_DATA_RING3
    push PROBE_STACK_TOP - 8                ; not used by the trip
    push PROBE_RFLAGS
    push SELECTOR_USER_CODE64_RING3
    push FPU_RESET_VIRTUAL
    mov eax, XSAVE_RESET_COMPONENTS
    xor edx, edx
    iretq

; fpu_reset_return: from syscall_entry, at the end of the trip; returns from
; fpu_reset with the page unmapped again, before any probe runs.
fpu_reset_return:
    mov rsp, qword ptr [rip + ENV_KERNEL_RSP]
    mov qword ptr [rip + FPU_RESET_ENTRY], 0
    mov rax, FPU_RESET_VIRTUAL
    invlpg [rax]                            ; why: the probe must not reach the page
    ret

; probe_pages_clean: zeroes every page a probe wrote (dirty bit), so output,
; stack and scratch are zero for the next run without clearing 8 MiB each time;
; a page table whose directory entry was not even accessed is skipped.
; Clobbers: RAX, RCX, RDX, RDI, R8-R11.
probe_pages_clean:
    push rbx
    mov rbx, probe_page_runs
    mov r11d, PROBE_PAGE_RUNS
probe_clean_run:
    test qword ptr [rbx + PROBE_PAGE_RUN_FIRST_ENTRY], PTE_WRITABLE
    jz probe_clean_next_run
    mov rdx, qword ptr [rbx + PROBE_PAGE_RUN_DIRECTORY_ENTRY]
    test qword ptr [rdx], PTE_ACCESSED
    jz probe_clean_next_run
    mov r8, qword ptr [rbx]                 ; page (PROBE_PAGE_RUN_VIRTUAL)
    mov r9, qword ptr [rbx + PROBE_PAGE_RUN_COUNT]          ; pages left
    mov r10, qword ptr [rbx + PROBE_PAGE_RUN_ENTRY_ADDRESS] ; its entry
probe_clean_page:
    test qword ptr [r10], PTE_DIRTY
    jz probe_clean_next_page
    mov rdi, r8
    mov ecx, PAGE_SIZE / 8
    xor eax, eax
    rep stosq
    and qword ptr [r10], ~(PTE_DIRTY | PTE_ACCESSED)
    invlpg [r8]                             ; the next write must set the dirty bit again
probe_clean_next_page:
    add r8, PAGE_SIZE
    add r10, 8
    dec r9
    jnz probe_clean_page
probe_clean_next_run:
    add rbx, PROBE_PAGE_RUN_SIZE
    dec r11d
    jnz probe_clean_run
    mov rbx, probe_directory
    mov ecx, PROBE_DIRECTORY_ENTRIES
probe_clean_directory:
    mov rdi, qword ptr [rbx]
    and qword ptr [rdi], ~PTE_ACCESSED
    add rbx, PROBE_DIRECTORY_SIZE
    dec ecx
    jnz probe_clean_directory
    mov rax, PROBE_REGION_BASE
    invlpg [rax]                            ; also drops cached directory entries with the old bit
    pop rbx
    ret

; The page of the ring-3 FPU reset trip (fpu_reset_in_ring3), alone in its page
; because that whole page becomes user-visible during the trip.
.align PAGE_SIZE
fpu_reset_page:
    xrstor [rip + fpu_reset_image]          ; components whose XSTATE_BV bit is 0: init
    syscall
fpu_reset_page_syscall_end:
.align 64
fpu_reset_image:                            ; an XSAVE image (standard form)
    .word FCW_DEFAULT
    .space FXSAVE_MXCSR - 2, 0
    .long MXCSR_DEFAULT                     ; xrstor loads MXCSR whatever XSTATE_BV says
    .space FXSAVE_SIZE + XSAVE_HEADER_SIZE - FXSAVE_MXCSR - 4, 0    ; header: XSTATE_BV = 0
    .space XSAVE_RESET_AREA_END - FXSAVE_SIZE - XSAVE_HEADER_SIZE, 0  ; what xrstor may touch
.align PAGE_SIZE
