# probedata.s: the probe command loop's variables (kernel/riscv64/probing.py
# describes the records; slots and cached results live in KERNEL_RAM).

.balign 8, 0
run_state:       .space RUN_STATE_SIZE, 0   # the kernel context a probe's trap unwinds to
probe_last_lengths: .word 0, 0  # code / input bytes the previous run placed
slots_loaded:    .word 0        # slots that hold a probe (PROBE_STATUS loaded)
last_run_id:     .word 0        # PROBE_STATUS counters
runs:            .word 0
faults:          .word 0
timeouts:        .word 0
