# exit.s: leave QEMU through sifive_test (32-bit stores only).

# exit_pass: QEMU exits with status 0.
exit_pass:
    li t0, TEST_BASE
    li t1, SIFIVE_TEST_PASS
    sw t1, 0(t0)
    j park

# exit_fail: QEMU exits with status a0 (a GuestExit code).
exit_fail:
    li t0, TEST_BASE
    slli a0, a0, SIFIVE_TEST_CODE_SHIFT
    li t1, SIFIVE_TEST_FAIL
    or a0, a0, t1
    sw a0, 0(t0)
    j park
