# commands.s: the probe command loop a staying guest runs after FINAL (host
# -> guest PROBE_* messages of contract/protocol.py; testing/fake_guest.py is the
# reference behaviour).  Runs on the driver hart only.

# probe_loop: serve probe commands for good.
probe_loop:
    call probe_setup
    call line_open              # probes on the console if there is one; an idle guest
                                # sleeps instead of spinning on its line
1:  call frame_receive          # a0 = body length, a1 = type
    li t0, MSG_PROBE_LOAD
    beq a1, t0, 2f
    li t0, MSG_PROBE_RUN
    beq a1, t0, 3f
    li t0, MSG_PROBE_LOAD_RUN
    beq a1, t0, 6f
    li t0, MSG_PROBE_RUN_BATCH
    beq a1, t0, 4f
    li t0, MSG_PROBE_STATUS_REQUEST
    beq a1, t0, 5f
    j 1b                        # not a command: ignored
2:  call cmd_load
    j 1b
3:  call cmd_run
    j 1b
4:  call cmd_run_batch
    j 1b
5:  call cmd_status
    j 1b
6:  call cmd_load_run
    j 1b

# cmd_load: PROBE_LOAD (body at RX_BODY, a0 bytes) -> PROBE_LOADED.
cmd_load:
    addi sp, sp, -16
    sd ra, 0(sp)
    li a1, RX_BODY
    call load_slot
    ld ra, 0(sp)
    addi sp, sp, 16
    li a1, RX_BODY
    j loaded_reply

# cmd_load_run: PROBE_LOAD_RUN (body at RX_BODY, a0 bytes) -> PROBE_RESULT, or
# PROBE_LOADED with the reason when the load is refused.
cmd_load_run:
    li t0, PROBE_LOAD_RUN_SIZE
    bltu a0, t0, 1f             # malformed: ignored, the host resends
    addi sp, sp, -16
    sd ra, 0(sp)
    li t2, RX_BODY
    lhu t0, PROBE_LOAD_RUN_FLAGS(t2)
    la t1, run_state
    sd t0, RUN_STATE_FLAGS(t1)
    addi a0, a0, -PROBE_LOAD_RUN_SIZE
    li a1, RX_BODY + PROBE_LOAD_RUN_SIZE    # the PROBE_LOAD inside
    call load_slot
    ld ra, 0(sp)
    addi sp, sp, 16
    li a1, RX_BODY + PROBE_LOAD_RUN_SIZE
    bnez a0, loaded_reply       # refused (or too short: no answer)
    li t2, RX_BODY
    lwu a0, PROBE_LOAD_RUN_RUN_ID(t2)
    lwu a2, PROBE_LOAD_TAG(a1)
    lhu a1, PROBE_LOAD_SLOT(a1)
    li a3, 1                    # the tag must match the slot's (it does: just loaded)
    j run_command
1:  ret

# loaded_reply: PROBE_LOADED with status a0 for the PROBE_LOAD body at a1;
# nothing when a0 = -1 (too short to answer).  Clobbers as send_frame.
loaded_reply:
    bltz a0, 1f
    li t2, FRAME_BODY
    lhu t0, PROBE_LOAD_SLOT(a1)
    sh t0, PROBE_LOADED_SLOT(t2)
    sh a0, PROBE_LOADED_STATUS(t2)
    lw t0, PROBE_LOAD_TAG(a1)
    sw t0, PROBE_LOADED_TAG(t2)
    li a0, MSG_PROBE_LOADED
    li a1, PROBE_LOADED_SIZE
    j send_frame
1:  ret

# load_slot: check the PROBE_LOAD body at a1 (a0 bytes) and keep it in its
# slot.  out a0 = PROBE_REFUSE_* (OK: kept), -1 when too short to answer.
#   Clobbers a1-a3, t0-t3.
load_slot:
    li t0, PROBE_LOAD_SIZE
    bltu a0, t0, 9f
    addi sp, sp, -32
    sd ra, 0(sp)
    sd s0, 8(sp)
    sd s1, 16(sp)
    mv s1, a1                   # s1 = the body
    addi s0, a0, -PROBE_LOAD_SIZE   # s0 = tail bytes
    lhu t1, PROBE_LOAD_SLOT(s1)
    li a0, PROBE_REFUSE_BAD_SLOT
    li t0, PROBE_SLOTS
    bgeu t1, t0, 8f
    lbu t2, PROBE_LOAD_PRIVILEGE(s1)
    li t0, PROBE_PRIV_PRIVILEGED
    bne t2, t0, 1f
    la t0, privileged_allowed
    ld t0, 0(t0)
    li a0, PROBE_REFUSE_PRIVILEGED_NOT_ALLOWED
    beqz t0, 8f
1:  li a0, PROBE_REFUSE_TOO_BIG     # ... or otherwise not a probe (probes/probe.py)
    li t0, PROBE_PRIV_PRIVILEGED
    bgtu t2, t0, 8f
    lhu t2, PROBE_LOAD_CODE_LENGTH(s1)
    beqz t2, 8f
    li t0, PROBE_CODE_SIZE
    bgtu t2, t0, 8f
    lhu t3, PROBE_LOAD_INPUT_LENGTH(s1)
    li t0, PROBE_INPUT_SIZE
    bgtu t3, t0, 8f
    add t0, t2, t3
    bgtu t0, s0, 8f             # the frame holds less than it declares
    lwu t0, PROBE_LOAD_BUDGET(s1)
    beqz t0, 8f
    li t3, PROBE_MAX_BUDGET
    bgtu t0, t3, 8f
    lhu t0, PROBE_LOAD_OUTPUT_SIZE(s1)
    li t3, PROBE_OUTPUT_SIZE
    bgtu t0, t3, 8f
    mv a0, t1
    mv a1, s1
    call slot_store
    li a0, PROBE_REFUSE_OK
8:  ld ra, 0(sp)
    ld s0, 8(sp)
    ld s1, 16(sp)
    addi sp, sp, 32
    ret
9:  li a0, -1
    ret

# slot_store: keep the (checked) PROBE_LOAD body at a1 in slot a0.  Code and
# input are zero-padded to 8 bytes so runs can copy whole dwords.
#   Clobbers a0-a3, t0-t2.
slot_store:
    addi sp, sp, -16
    sd ra, 0(sp)
    sd s0, 8(sp)
    slli a0, a0, SLOT_STRIDE_LOG2
    li s0, PROBE_SLOTS_BASE
    add s0, s0, a0              # s0 = the slot record
    mv t2, a1
    lwu t0, SLOT_VALID(s0)
    bnez t0, 1f
    la t0, slots_loaded
    lw t1, 0(t0)
    addi t1, t1, 1
    sw t1, 0(t0)
1:  lbu t0, PROBE_LOAD_PRIVILEGE(t2)
    sw t0, SLOT_PRIVILEGE(s0)
    lw t0, PROBE_LOAD_BUDGET(t2)
    sw t0, SLOT_BUDGET(s0)
    lw t0, PROBE_LOAD_TAG(t2)
    sw t0, SLOT_TAG(s0)
    lhu t0, PROBE_LOAD_CODE_LENGTH(t2)
    sw t0, SLOT_CODE_LENGTH(s0)
    lhu t0, PROBE_LOAD_INPUT_LENGTH(t2)
    sw t0, SLOT_INPUT_LENGTH(s0)
    lhu t0, PROBE_LOAD_OUTPUT_SIZE(t2)
    sw t0, SLOT_OUTPUT_SIZE(s0)
    addi a0, s0, SLOT_CODE
    addi a1, t2, PROBE_LOAD_SIZE
    lwu a2, SLOT_CODE_LENGTH(s0)
    call copy_bytes_padded      # a1 advances past the code: the input follows
    li a0, SLOT_INPUT
    add a0, s0, a0
    lwu a2, SLOT_INPUT_LENGTH(s0)
    call copy_bytes_padded
    li t0, 1
    sw t0, SLOT_VALID(s0)
    ld ra, 0(sp)
    ld s0, 8(sp)
    addi sp, sp, 16
    ret

# copy_bytes_padded: a2 bytes from a1 to a0, then zeros up to a multiple of
# 8 bytes.  out a1 = just past the source bytes.  Clobbers a0, a2, t0.
copy_bytes_padded:
1:  beqz a2, 2f
    lbu t0, 0(a1)
    sb t0, 0(a0)
    addi a0, a0, 1
    addi a1, a1, 1
    addi a2, a2, -1
    j 1b
2:  andi t0, a0, 7
    beqz t0, 3f
    sb zero, 0(a0)
    addi a0, a0, 1
    j 2b
3:  ret

# cmd_run: PROBE_RUN (body at RX_BODY, a0 bytes) -> PROBE_RESULT.
cmd_run:
    li t0, PROBE_RUN_SIZE
    bltu a0, t0, 1f
    li t2, RX_BODY
    lhu t0, PROBE_RUN_FLAGS(t2)
    la t1, run_state
    sd t0, RUN_STATE_FLAGS(t1)
    lwu a0, PROBE_RUN_RUN_ID(t2)
    lhu a1, PROBE_RUN_SLOT(t2)
    lwu a2, PROBE_RUN_TAG(t2)
    li a3, 1                    # the tag must match the slot's
    j run_command
1:  ret

# cmd_run_batch: PROBE_RUN_BATCH -> one PROBE_RESULT per listed slot, run as
# first_run_id + i, without a tag check (the host knows what it loaded).
cmd_run_batch:
    li t0, PROBE_RUN_BATCH_SIZE
    bltu a0, t0, 3f
    addi sp, sp, -48
    sd ra, 0(sp)
    sd s0, 8(sp)
    sd s1, 16(sp)
    sd s2, 24(sp)
    li t2, RX_BODY
    lhu t0, PROBE_RUN_BATCH_FLAGS(t2)
    la t1, run_state
    sd t0, RUN_STATE_FLAGS(t1)
    lwu s0, PROBE_RUN_BATCH_FIRST_RUN_ID(t2)
    lhu s1, PROBE_RUN_BATCH_COUNT(t2)
    addi t0, a0, -PROBE_RUN_BATCH_SIZE
    srli t0, t0, 1              # slots the body really holds
    bleu s1, t0, 1f
    mv s1, t0
1:  addi s2, t2, PROBE_RUN_BATCH_SIZE
2:  beqz s1, 4f
    mv a0, s0
    lhu a1, 0(s2)
    li a2, 0
    li a3, 0
    call run_command
    addi s0, s0, 1
    slli s0, s0, 32             # run ids wrap at 2**32
    srli s0, s0, 32
    addi s2, s2, 2
    addi s1, s1, -1
    j 2b
4:  ld ra, 0(sp)
    ld s0, 8(sp)
    ld s1, 16(sp)
    ld s2, 24(sp)
    addi sp, sp, 48
3:  ret

# run_command: answer run a0 of slot a1: the cached result when this run id
# already ran, REFUSED when the slot is empty or (a3 != 0) its tag is not a2,
# else run it, cache and send the result.  Clobbers a0-a3, t0-t3.
run_command:
    addi sp, sp, -48
    sd ra, 0(sp)
    sd s0, 8(sp)
    sd s1, 16(sp)
    sd s2, 24(sp)
    sd s3, 32(sp)
    sd s4, 40(sp)
    mv s0, a0                   # s0 = run id
    mv s1, a1                   # s1 = slot
    mv s2, a2                   # s2 = tag (0 when unchecked)
    andi t0, s0, PROBE_RESULT_CACHE - 1
    slli t0, t0, CACHE_STRIDE_LOG2
    li s4, RESULT_CACHE_BASE
    add s4, s4, t0              # s4 = this run id's cache entry
    lwu t0, CACHE_VALID(s4)
    beqz t0, 1f
    lwu t0, CACHE_RUN_ID(s4)
    bne t0, s0, 1f
    li a0, FRAME_BODY           # a retransmitted RUN: the same answer, not a rerun
    addi a1, s4, CACHE_BODY
    lwu a2, CACHE_LENGTH(s4)
    call copy_dwords
    lwu a1, CACHE_LENGTH(s4)
    j 3f
1:  li t0, PROBE_SLOTS
    bgeu s1, t0, 2f
    slli t0, s1, SLOT_STRIDE_LOG2
    li s3, PROBE_SLOTS_BASE
    add s3, s3, t0              # s3 = the slot record
    lwu t0, SLOT_VALID(s3)
    beqz t0, 2f
    beqz a3, 4f
    lwu t0, SLOT_TAG(s3)
    bne t0, s2, 2f
4:  lwu s2, SLOT_TAG(s3)
    call result_header
    mv a0, s3
    call run_slot               # a0 = result body length
    sw s0, CACHE_RUN_ID(s4)
    sw a0, CACHE_LENGTH(s4)
    li t0, 1
    sw t0, CACHE_VALID(s4)
    la t0, last_run_id
    sw s0, 0(t0)
    mv a2, a0
    addi a0, s4, CACHE_BODY
    li a1, FRAME_BODY
    call copy_dwords
    lwu a1, CACHE_LENGTH(s4)
    j 3f
2:  call result_header          # refused: not cached, a later LOAD may fix it
    li t2, FRAME_BODY
    li t0, PROBE_OUTCOME_REFUSED
    sb t0, PROBE_RESULT_OUTCOME(t2)
    li a1, PROBE_RESULT_SIZE
3:  li a0, MSG_PROBE_RESULT
    call send_frame
    ld ra, 0(sp)
    ld s0, 8(sp)
    ld s1, 16(sp)
    ld s2, 24(sp)
    ld s3, 32(sp)
    ld s4, 40(sp)
    addi sp, sp, 48
    ret

# result_header: a PROBE_RESULT body at FRAME_BODY for run s0, slot s1, tag
# s2, every other field zero.  Clobbers t0, t1.
result_header:
    li t0, FRAME_BODY
    addi t1, t0, PROBE_RESULT_SIZE
1:  sd zero, 0(t0)
    addi t0, t0, 8
    bltu t0, t1, 1b
    li t0, FRAME_BODY
    sw s0, PROBE_RESULT_RUN_ID(t0)
    sh s1, PROBE_RESULT_SLOT(t0)
    sw s2, PROBE_RESULT_TAG(t0)
    ret

# cmd_status: PROBE_STATUS_REQUEST -> PROBE_STATUS.
cmd_status:
    addi sp, sp, -16
    sd ra, 0(sp)
    li t2, FRAME_BODY
    li t0, PROBE_SLOTS
    sh t0, PROBE_STATUS_SLOTS(t2)
    la t1, slots_loaded
    lw t0, 0(t1)
    sh t0, PROBE_STATUS_LOADED(t2)
    la t1, last_run_id
    lw t0, 0(t1)
    sw t0, PROBE_STATUS_LAST_RUN_ID(t2)
    la t1, runs
    lw t0, 0(t1)
    sw t0, PROBE_STATUS_RUNS(t2)
    la t1, faults
    lw t0, 0(t1)
    sw t0, PROBE_STATUS_FAULTS(t2)
    la t1, timeouts
    lw t0, 0(t1)
    sw t0, PROBE_STATUS_TIMEOUTS(t2)
    li a0, MSG_PROBE_STATUS
    li a1, PROBE_STATUS_SIZE
    call send_frame
    ld ra, 0(sp)
    addi sp, sp, 16
    ret
