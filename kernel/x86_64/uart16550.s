; COM1, a 16550 UART, polled; a staying guest sleeps on its receive interrupt
; while the line is idle.
.code64

; uart_init: 115200 baud 8N1, FIFOs enabled and cleared, no interrupts.
; Inputs: none.  Clobbers: AL, DX.
uart_init:
    mov dx, UART_IER
    mov al, UART_IER_NONE
    out dx, al
    mov dx, UART_LCR
    mov al, UART_LCR_DLAB                   ; DLL/DLM replace THR/IER while DLAB is set
    out dx, al
    mov dx, UART_DLL
    mov al, UART_DIVISOR_LOW
    out dx, al
    mov dx, UART_DLM
    mov al, UART_DIVISOR_HIGH
    out dx, al
    mov dx, UART_LCR
    mov al, UART_LCR_8N1
    out dx, al
    mov dx, UART_FCR
    mov al, UART_FCR_INIT
    out dx, al
    mov dx, UART_MCR
    mov al, UART_MCR_INIT
    out dx, al
    ret

; uart_write: sends bytes, waiting for an empty transmit FIFO (LSR.THRE)
; before each burst of up to UART_FIFO_DEPTH bytes.
; Inputs: RSI = bytes, RCX = count.  Clobbers: AL, RCX, DX, RSI, R8.
uart_write:
    test rcx, rcx
    jz uart_write_done
uart_write_burst:
    mov dx, UART_LSR
uart_write_wait:
    in al, dx
    test al, UART_LSR_THRE
    jz uart_write_wait
    mov r8d, UART_FIFO_DEPTH
    mov dx, UART_THR
uart_write_byte:
    lodsb
    out dx, al
    dec rcx
    jz uart_write_done
    dec r8d
    jnz uart_write_byte
    jmp uart_write_burst
uart_write_done:
    ret

; uart_wake_init: received data (or the FIFO's character timeout) raises
; COM1's interrupt line (IRQ4, through the 8259, masked but while
; uart_read_byte sleeps; OUT2 gates the line and uart_init set it).
; Inputs: none.  Clobbers: AL, DX.
uart_wake_init:
    mov dx, UART_IER
    mov al, UART_IER_RX_DATA
    out dx, al                              ; why: a received byte can end uart_read_byte's hlt
    ret

; uart_read_byte: waits for a received byte (LSR.DR) and returns it.  QEMU
; holds input back while the FIFO is full, so polling loses nothing.  Polls
; for ENV_IDLE_SPIN_TSC after the call (back-to-back frames never wait for an
; interrupt), then sleeps in hlt with only COM1's IRQ unmasked; any other
; wake-up (a stale watchdog tick, a spurious IRQ7) just checks LSR again.
; Runs with IF clear, only while staying (after probe_env_setup), and leaves
; COM1 masked: probes run with IF set.
; Inputs: none.  Outputs: AL.  Clobbers: RAX, RDX, R9.
uart_read_byte:
    mov dx, UART_LSR
    in al, dx
    test al, UART_LSR_DR
    jnz uart_read_ready
    rdtsc
    shl rdx, 32
    or rax, rdx
    add rax, qword ptr [rip + ENV_IDLE_SPIN_TSC]
    mov r9, rax                             ; R9: when polling gives way to sleeping
uart_read_poll:
    mov dx, UART_LSR
    in al, dx
    test al, UART_LSR_DR
    jnz uart_read_ready
    rdtsc
    shl rdx, 32
    or rax, rdx
    cmp rax, r9
    jb uart_read_poll
    mov al, PIC_MASK_ALL_BUT_COM1
    out PIC_MASTER_DATA, al                 ; why: COM1's interrupt may end hlt (IF is still clear)
uart_read_sleep:
    mov dx, UART_LSR
    in al, dx                               ; a byte that came before the unmask is seen here
    test al, UART_LSR_DR
    jnz uart_read_woken
    sti
    hlt                                     ; sti's shadow: an interrupt pending now still wakes it
    cli
    jmp uart_read_sleep
uart_read_woken:
    mov al, PIC_MASK_ALL
    out PIC_MASTER_DATA, al                 ; why: no COM1 interrupt while a probe runs
uart_read_ready:
    mov dx, UART_RBR
    in al, dx
    ret
