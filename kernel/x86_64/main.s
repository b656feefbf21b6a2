; What the kernel does, in order: one discovery run streamed as frames.
.code64

; kernel_main: HELLO, MEMORY*, CPUID*, PCI_FUNCTION*, ACPI_*, FINAL, then exit
; (or serve probe commands, when the host asked the kernel to stay: see fwcfg.s;
; on the virtio console when the board has one, virtio_console.s).
; Inputs: RDI = boot-info block.  Does not return.
kernel_main:
    mov rbx, rdi
    mov byte ptr [rip + ENV_ACTIVE], 0      ; no probe runs: a fault now is the kernel's own
    mov byte ptr [rip + CONSOLE_ACTIVE], 0  ; frames go to COM1 (the firmware may have used this RAM)
    call idt_install
    call uart_init
    call frame_stream_start
    call hello_send
    mov rdi, rbx
    call memory_send
    call cpuid_send_all
    call pci_send_all
    call acpi_send_all
    call stay_requested
    mov ebx, eax                            ; EBX: nonzero when asked to stay
    mov eax, PROBE_LINE_SERIAL
    test ebx, ebx
    jz kernel_final
    call console_init                       ; EAX: the line probes will use
kernel_final:
    mov edi, eax
    call final_send
    test ebx, ebx
    jnz probe_serve                         ; the host sends probe commands, then quits QEMU
    mov edi, DEBUG_EXIT_PASS
    jmp exit_qemu
