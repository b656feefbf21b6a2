; How a probe run ends: the exit stub's syscall (RETURNED), an exception
; (FAULT, from fault_report), the watchdog (TIMEOUT).  Each records what it
; knows in the RUN record and continues at probe_exit.  Two interrupts resume
; the probe instead: the single-step #DB of a length measurement, and a stale
; watchdog tick left pending by an earlier run.
.code64

; syscall_entry: LSTAR.  RCX = address after the syscall, RAX = the probe's
; status; RSP is still the probe's (nothing is pushed before probe_exit).
syscall_entry:
    cmp rcx, FPU_RESET_VIRTUAL + (fpu_reset_page_syscall_end - fpu_reset_page)
    je fpu_reset_return
    mov byte ptr [rip + ENV_ACTIVE], 0
    cmp rcx, PROBE_EXIT_BASE + PROBE_EXIT_STUB_SIZE
    jne syscall_not_the_stub
    mov qword ptr [rip + RUN_STATUS], rax
    mov eax, PROBE_OUTCOME_RETURNED
    jmp probe_exit
syscall_not_the_stub:                       ; the probe's own syscall: reported as a pseudo-fault
    lea r9, [rcx - PROBE_EXIT_STUB_SIZE]    ; the stub is one syscall: the same length
    mov r10d, PROBE_SYSCALL_PSEUDO_VECTOR
    xor r11d, r11d
    xor eax, eax
    jmp probe_fault_record

; probe_fault: from fault_report while a probe runs.
; Inputs: R10 = vector, R11 = error code, R9 = faulting RIP.
probe_fault:
    mov byte ptr [rip + ENV_ACTIVE], 0
    xor eax, eax
    cmp r10d, PAGE_FAULT_VECTOR
    jne probe_fault_record
    mov rax, cr2
probe_fault_record:                         ; RAX = faulting data address (0 when none)
    mov qword ptr [rip + RUN_FAULT_ADDRESS], rax
    mov qword ptr [rip + RUN_FAULT_VECTOR], r10
    mov qword ptr [rip + RUN_FAULT_ERROR], r11
    mov qword ptr [rip + RUN_FAULT_IP], r9
    mov eax, PROBE_OUTCOME_FAULT
    jmp probe_exit

; watchdog_entry: the LAPIC timer.  A one-shot timer reads 0 once it has
; expired; any other count means this tick was left pending by an earlier run
; (it fired as that run ended) and the current probe simply continues.  A tick
; taken at the exit stub, before its syscall, came as the probe returned (a busy
; host kept the vCPU off a core past the deadline): the stub goes on to report
; RETURNED, with the probe's status and output whole.  Frame: RIP, CS, RFLAGS,
; RSP, SS.
watchdog_entry:
    push rax
    mov rax, LAPIC_BASE
    cmp dword ptr [rax + LAPIC_TIMER_CURRENT], 0
    mov dword ptr [rax + LAPIC_EOI], 0
    pop rax
    jne watchdog_resume
    cmp byte ptr [rip + ENV_ACTIVE], 0
    je watchdog_resume
    cmp qword ptr [rsp], PROBE_EXIT_BASE
    je watchdog_resume
    mov byte ptr [rip + ENV_ACTIVE], 0
    mov eax, PROBE_OUTCOME_TIMEOUT
    jmp probe_exit
watchdog_resume:
    iretq

; probe_page_fault_entry: #PF.  A hypervisor that runs ring 3 natively and emulates
; the kernel (KVM-PVM, the pagetable-based KVM of nested clouds) carries out a
; ring-3 syscall without its privilege switch: RIP = LSTAR and RFLAGS masked by
; FMASK, but CS stays the user's, so fetching syscall_entry through its
; supervisor page faults at CPL 3.  Such a #PF is that syscall (RAX and RCX
; still hold what it left) and continues as one.  It cannot be anything else: a
; ring-3 context never has IF clear (the probe cannot clear it at IOPL 0, and the
; kernel enters ring 3 with IF set; FMASK cleared it).  Every other #PF is a
; fault.  Frame: error code, RIP, CS, RFLAGS, RSP, SS.
probe_page_fault_entry:
    cmp qword ptr [rsp + 8], syscall_entry
    jne fault_stub_14
    test byte ptr [rsp + 16], SELECTOR_RPL_MASK ; CS.RPL: from ring 3
    jz fault_stub_14
    test dword ptr [rsp + 24], RFLAGS_IF
    jnz fault_stub_14
    jmp syscall_entry

; probe_debug_entry: #DB.  During a length measurement the first single-step
; trap gives the address after the first instruction; TF is then cleared and
; the probe goes on.  Any other #DB is an ordinary fault (vector 1).
probe_debug_entry:
    cmp byte ptr [rip + ENV_MEASURING], 0
    je fault_stub_1
    mov byte ptr [rip + ENV_MEASURING], 0
    push rax
    mov rax, qword ptr [rsp + 8]            ; interrupted RIP
    sub rax, PROBE_CODE_BASE
    mov dword ptr [rip + RUN_LENGTH], eax
    and qword ptr [rsp + 24], ~RFLAGS_TF    ; the saved RFLAGS: no more single steps
    pop rax
    iretq

; com1_entry: COM1's receive interrupt, unmasked only while uart_read_byte
; sleeps in hlt: waking it is all it is for.
com1_entry:
    push rax
    mov al, PIC_EOI
    out PIC_MASTER_COMMAND, al              ; why: the master passes COM1's next request
    pop rax
    iretq

; spurious_entry: the APIC's spurious vector, and the master 8259's IRQ7 when
; the request vanished before it was acknowledged: neither wants an EOI.
spurious_entry:
    iretq

; slave_spurious_entry: the slave 8259's IRQ7.  The slave wants no EOI, but the
; master acknowledged its cascade line for it and keeps that line in service.
slave_spurious_entry:
    push rax
    mov al, PIC_EOI
    out PIC_MASTER_COMMAND, al              ; why: else the master holds back IRQ2-7 (COM1 too)
    pop rax
    iretq
