; COM1, a 16550 UART, polled.
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

; uart_read_byte: waits for a received byte (LSR.DR) and returns it.  QEMU
; holds input back while the FIFO is full, so polling loses nothing.
; Inputs: none.  Outputs: AL.  Clobbers: DX.
uart_read_byte:
    mov dx, UART_LSR
uart_read_wait:
    in al, dx
    test al, UART_LSR_DR
    jz uart_read_wait
    mov dx, UART_RBR
    in al, dx
    ret
