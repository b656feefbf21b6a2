; The probe environment, set up once after FINAL when the host asked the guest
; to stay: the probe region's pages, TSS and trap gates, syscall, x87/SSE
; state, and the watchdog (LAPIC timer calibrated against PIT channel 2).
.code64

; probe_env_setup: everything probe_run needs.  Inputs: none.
; Clobbers: RAX, RCX, RDX, RSI, RDI, R8-R11.
probe_env_setup:
    push rbx
    mov rdi, PROBE_STATE
    mov ecx, PROBE_STATE_SIZE / 8
    xor eax, eax
    rep stosq
    mov dword ptr [rip + ENV_CODE_SLOT], -1 ; no slot's code is in the code area yet
    mov rdi, SLOT_TABLE
    mov ecx, PROBE_SLOTS * SLOT_SIZE / 8
    rep stosq                               ; every slot empty
    mov rdi, RESULT_CACHE + CACHE_VALID
    mov ecx, PROBE_RESULT_CACHE
probe_env_cache_entry:
    mov dword ptr [rdi], 0                  ; no result cached
    add rdi, RESULT_CACHE_STRIDE
    dec ecx
    jnz probe_env_cache_entry
    call privileged_requested
    test eax, eax
    setnz byte ptr [rip + ENV_PRIVILEGED_ALLOWED]
    call probe_pages_build
    call probe_traps_install
    call probe_cpu_setup
    call watchdog_setup
    call uart_wake_init
    pop rbx
    ret

; probe_pages_build: zeroes the probe areas and their backing frames, writes
; the exit stub, fills the page tables from probe_page_runs and hooks them into
; the boot page directory (U bit on the upper levels, so only these pages are
; user-accessible).  Clobbers: RAX, RBX, RCX, RDX, RSI, RDI, R8.
probe_pages_build:
    mov rax, -1
    mov qword ptr [rip + ENV_PAGE_ENTRY_MASK], rax
    mov eax, CPUID_EXTENDED_BASE + 1
    cpuid
    test edx, CPUID_80000001_EDX_NX
    jz probe_pages_without_nx
    mov ecx, EFER_MSR
    rdmsr
    or eax, EFER_NXE
    wrmsr                                   ; why: bit 63 of a page entry now forbids fetches
    jmp probe_pages_zero
probe_pages_without_nx:
    mov rax, PTE_NO_EXECUTE - 1             ; without NX, bit 63 is reserved: leave it clear
    mov qword ptr [rip + ENV_PAGE_ENTRY_MASK], rax
probe_pages_zero:
    xor eax, eax
    mov rdi, PROBE_PAGE_TABLES
    mov ecx, PROBE_PAGE_TABLES_USED_SIZE / 8
    rep stosq
    mov rdi, PROBE_BACKING
    mov ecx, PROBE_BACKING_SIZE / 8
    rep stosq
    mov rdi, PROBE_CODE_BACKING
    mov ecx, PROBE_CODE_SIZE
    mov al, PROBE_CODE_FILL
    rep stosb                               ; past a probe's end: a trap at every byte (abi.CODE_FILL)
    mov word ptr [rip + PROBE_EXIT_BACKING], PROBE_EXIT_STUB_WORD
    mov rbx, probe_page_runs
    mov r8d, PROBE_PAGE_RUNS
probe_pages_run:
    mov rdx, qword ptr [rbx + PROBE_PAGE_RUN_FIRST_ENTRY]
    and rdx, qword ptr [rip + ENV_PAGE_ENTRY_MASK]
    test edx, PTE_WRITABLE                  ; writable areas map identity: zero them now
    jz probe_pages_fill
    mov rdi, qword ptr [rbx]                ; PROBE_PAGE_RUN_VIRTUAL
    mov rcx, qword ptr [rbx + PROBE_PAGE_RUN_COUNT]
    shl rcx, 9                              ; pages -> qwords
    xor eax, eax
    rep stosq
probe_pages_fill:
    mov rdi, qword ptr [rbx + PROBE_PAGE_RUN_ENTRY_ADDRESS]
    mov rcx, qword ptr [rbx + PROBE_PAGE_RUN_COUNT]
probe_pages_entry:
    mov qword ptr [rdi], rdx
    add rdx, PAGE_SIZE
    add rdi, 8
    dec rcx
    jnz probe_pages_entry
    add rbx, PROBE_PAGE_RUN_SIZE
    dec r8d
    jnz probe_pages_run
    mov rbx, probe_directory
    mov ecx, PROBE_DIRECTORY_ENTRIES
probe_pages_directory:
    mov rdi, qword ptr [rbx]                ; PROBE_DIRECTORY_ADDRESS
    mov rax, qword ptr [rbx + PROBE_DIRECTORY_VALUE]
    mov qword ptr [rdi], rax
    add rbx, PROBE_DIRECTORY_SIZE
    dec ecx
    jnz probe_pages_directory
    or qword ptr [rip + PML4], PTE_USER
    or qword ptr [rip + PDPT], PTE_USER
    or qword ptr [rip + LAPIC_DIRECTORY_ENTRY], PTE_CACHE_DISABLE | PTE_WRITE_THROUGH
    mov rax, cr3
    mov cr3, rax                            ; why: drop translations of the boot map
    ret

; probe_traps_install: a TSS whose RSP0 and IST1 are the trap stack, and every
; gate switching to it (IST), so a fault lands on a good stack whatever the
; probe did to RSP; the single-step, page-fault, watchdog, COM1 and spurious gates.
; Clobbers: RAX, RCX, RDX, RSI, RDI, RBX.
probe_traps_install:
    mov rdi, TSS
    mov ecx, TSS_SIZE
    xor eax, eax
    rep stosb
    mov rax, TRAP_STACK_TOP
    mov qword ptr [rip + TSS + TSS_RSP0], rax
    mov qword ptr [rip + TSS + TSS_IST1], rax
    mov word ptr [rip + TSS + TSS_IOPB], TSS_SIZE
    mov ax, SELECTOR_TSS
    ltr ax
    mov rsi, fault_stubs
    xor ebx, ebx
probe_traps_exception:
    mov edi, ebx
    mov edx, IDT_INTERRUPT_GATE_FLAGS | TRAP_IST
    cmp ebx, BREAKPOINT_VECTOR
    je probe_traps_ring3
    cmp ebx, OVERFLOW_VECTOR
    jne probe_traps_set
probe_traps_ring3:
    or edx, IDT_GATE_DPL_RING3              ; int3 / int 4 from ring 3 raise #BP / #OF, not #GP
probe_traps_set:
    call idt_gate_set
    add rsi, fault_stub_1 - fault_stubs
    inc ebx
    cmp ebx, EXCEPTION_VECTORS
    jb probe_traps_exception
    mov edx, IDT_INTERRUPT_GATE_FLAGS | TRAP_IST
    mov edi, DEBUG_VECTOR
    mov rsi, probe_debug_entry
    call idt_gate_set
    mov edi, PAGE_FAULT_VECTOR
    mov rsi, probe_page_fault_entry
    call idt_gate_set
    mov edi, WATCHDOG_VECTOR
    mov rsi, watchdog_entry
    call idt_gate_set
    mov edi, COM1_VECTOR
    mov rsi, com1_entry
    call idt_gate_set
    mov rsi, spurious_entry
    mov edi, SPURIOUS_VECTOR
    call idt_gate_set
    mov edi, PIC_MASTER_SPURIOUS_VECTOR
    call idt_gate_set
    mov rsi, slave_spurious_entry
    mov edi, PIC_SLAVE_SPURIOUS_VECTOR
    call idt_gate_set
    ret

; probe_cpu_setup: x87/SSE (and AVX when there is XSAVE), the clean FPU image
; each run starts from, syscall for the exit stub, and the instruction counter.
; Clobbers: RAX, RBX, RCX, RDX, R8.
probe_cpu_setup:
    mov rax, cr0
    and rax, ~(CR0_EM | CR0_TS)
    or rax, CR0_MP | CR0_NE | CR0_WP | CR0_AM
    mov cr0, rax                            ; why: x87/SSE on, #MF, WP, #AC
    mov rax, cr4
    or rax, CR4_OSFXSR | CR4_OSXMMEXCPT
    mov cr4, rax                            ; why: SSE runs, its faults are #XM
    mov word ptr [rip + FPU_CLEAN + FXSAVE_FCW], FCW_DEFAULT
    mov dword ptr [rip + FPU_CLEAN + FXSAVE_MXCSR], MXCSR_DEFAULT
    mov eax, 1
    cpuid
    test ecx, CPUID_1_ECX_XSAVE
    jz probe_cpu_syscall
    mov r8d, XCR0_X87 | XCR0_SSE
    test ecx, CPUID_1_ECX_AVX
    jz probe_cpu_xsave
    or r8d, XCR0_AVX
probe_cpu_xsave:
    mov rax, cr4
    or rax, CR4_OSXSAVE
    mov cr4, rax                            ; why: xsetbv, xrstor and AVX need it
    xor ecx, ecx
    mov eax, r8d
    xor edx, edx
    xsetbv                                  ; why: XCR0 enables the x87/SSE(/AVX) state components
    mov qword ptr [rip + ENV_XCR0], r8
probe_cpu_syscall:
    mov rax, cr4
    test eax, CR4_OSXSAVE                   ; ours, or the host's under KVM-PVM (qemu64 too):
    setnz byte ptr [rip + ENV_XSAVE_ENABLED]    ; then ring 3 has XSAVE state to reset
    mov ecx, EFER_MSR
    rdmsr
    or eax, EFER_SCE
    wrmsr                                   ; why: the exit stub's syscall must not #UD
    mov ecx, STAR_MSR
    xor eax, eax
    mov edx, SELECTOR_CODE64                ; STAR[47:32]: syscall's CS (and SS = CS + 8)
    wrmsr                                   ; why: syscall enters the kernel's own segments
    mov ecx, LSTAR_MSR
    mov eax, syscall_entry
    xor edx, edx
    wrmsr                                   ; why: where syscall goes
    mov ecx, FMASK_MSR
    mov eax, RFLAGS_TF | RFLAGS_IF | RFLAGS_DF | RFLAGS_NT | RFLAGS_AC
    xor edx, edx
    wrmsr                                   ; why: no IF, TF, DF, AC in the handler
    xor eax, eax
    cpuid
    cmp eax, CPUID_PMU_LEAF
    jb probe_cpu_done
    mov eax, CPUID_PMU_LEAF
    cpuid
    and eax, PMU_VERSION_MASK
    cmp eax, 2
    jb probe_cpu_done
    test edx, PMU_FIXED_COUNTERS_MASK
    jz probe_cpu_done
    mov ecx, FIXED_CTR_CTRL_MSR
    mov eax, FIXED_CTR0_COUNT_ALL_RINGS
    xor edx, edx
    wrmsr                                   ; why: count retired insns, all rings
    mov ecx, PERF_GLOBAL_CTRL_MSR
    xor eax, eax
    mov edx, PERF_GLOBAL_CTRL_FIXED0_HIGH
    wrmsr                                   ; why: and is switched on
    mov byte ptr [rip + ENV_PMU_PRESENT], 1
probe_cpu_done:
    ret

; watchdog_setup: moves the 8259s' vectors clear of the exceptions and masks
; every line, enables the local APIC and measures its timer (and the TSC, for
; uart_read_byte's idle polling) against PIT channel 2 over CALIBRATION_NS; the
; timer is then a one-shot on WATCHDOG_VECTOR, armed for each run.
; Clobbers: RAX, RCX, RDX, RBX, R8.
watchdog_setup:
    mov al, PIC_ICW1
    out PIC_MASTER_COMMAND, al              ; why: reprogram both PICs: the BIOS left them on exception vectors
    out PIC_SLAVE_COMMAND, al
    mov al, PIC_MASTER_VECTOR
    out PIC_MASTER_DATA, al                 ; ICW2: the master's IRQ0..7 vectors
    mov al, PIC_SLAVE_VECTOR
    out PIC_SLAVE_DATA, al                  ; ICW2: the slave's IRQ8..15 vectors
    mov al, PIC_ICW3_MASTER
    out PIC_MASTER_DATA, al                 ; ICW3: where the slave hangs
    mov al, PIC_ICW3_SLAVE
    out PIC_SLAVE_DATA, al
    mov al, PIC_ICW4
    out PIC_MASTER_DATA, al                 ; ICW4: 8086 mode, EOI by the handler
    out PIC_SLAVE_DATA, al
    mov al, PIC_MASK_ALL
    out PIC_MASTER_DATA, al                 ; PICs silent: probes run with IF set
    out PIC_SLAVE_DATA, al                  ; (uart_read_byte unmasks COM1 only while it sleeps)
    mov ecx, APIC_BASE_MSR
    rdmsr
    or eax, APIC_BASE_MSR_ENABLE
    wrmsr                                   ; why: the local APIC must be on for its timer
    mov rbx, LAPIC_BASE
    mov dword ptr [rbx + LAPIC_SVR], LAPIC_SVR_ENABLE | SPURIOUS_VECTOR
    mov dword ptr [rbx + LAPIC_TPR], 0
    mov dword ptr [rbx + LAPIC_TIMER_DIVIDE], LAPIC_TIMER_DIVIDE_BY_16
    mov dword ptr [rbx + LAPIC_LVT_TIMER], LAPIC_LVT_MASKED | WATCHDOG_VECTOR
    in al, PC_SPEAKER_PORT
    and al, ~PC_SPEAKER_SPEAKER
    or al, PC_SPEAKER_GATE2
    out PC_SPEAKER_PORT, al
    mov al, PIT_CHANNEL2_MODE0
    out PIT_COMMAND, al
    mov al, CALIBRATION_PIT_TICKS & 0xFF
    out PIT_CHANNEL2_DATA, al
    mov dword ptr [rbx + LAPIC_TIMER_INITIAL], LAPIC_TIMER_MAX_COUNT
    mov al, CALIBRATION_PIT_TICKS >> 8
    out PIT_CHANNEL2_DATA, al               ; the PIT counts from here
    rdtsc
    shl rdx, 32
    or rax, rdx
    mov r8, rax                             ; R8: TSC at the window's start
watchdog_calibrate_wait:
    in al, PC_SPEAKER_PORT
    test al, PC_SPEAKER_OUT2
    jz watchdog_calibrate_wait
    mov eax, dword ptr [rbx + LAPIC_TIMER_CURRENT]
    mov ecx, LAPIC_TIMER_MAX_COUNT
    sub ecx, eax
    mov qword ptr [rip + ENV_TICKS_PER_WINDOW], rcx
    rdtsc
    shl rdx, 32
    or rax, rdx
    sub rax, r8                             ; TSC ticks per window
    mov ecx, IDLE_SPIN_NS
    mul rcx
    mov ecx, CALIBRATION_NS
    div rcx
    mov qword ptr [rip + ENV_IDLE_SPIN_TSC], rax
    mov dword ptr [rbx + LAPIC_TIMER_INITIAL], 0
    mov dword ptr [rbx + LAPIC_LVT_TIMER], WATCHDOG_VECTOR
    ret

; watchdog_ticks: the timer count for a budget (probes.abi.watchdog_ns).
; Inputs: EDI = budget (instructions).  Outputs: EAX = count (1..max).
; Clobbers: RCX, RDX.
watchdog_ticks:
    mov eax, edi
    imul rax, rax, PROBE_WATCHDOG_NS_PER_INSN
    mov ecx, PROBE_WATCHDOG_MIN_NS
    cmp rax, rcx
    cmovb rax, rcx
    mul qword ptr [rip + ENV_TICKS_PER_WINDOW]
    mov ecx, CALIBRATION_NS
    div rcx
    mov ecx, LAPIC_TIMER_MAX_COUNT
    cmp rax, rcx
    cmova rax, rcx
    mov ecx, 1
    test eax, eax
    cmovz eax, ecx
    ret
